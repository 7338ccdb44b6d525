use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_mesage_create(&self, msg: Message) {
        let _ = msg;
    }
}

fn main() {}
