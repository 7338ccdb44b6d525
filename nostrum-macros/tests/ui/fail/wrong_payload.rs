use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_message_create(&self, ch: Channel) {
        let _ = ch;
    }
}

fn main() {}
