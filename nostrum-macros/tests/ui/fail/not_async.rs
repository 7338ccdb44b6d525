use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    fn on_message_create(&self, msg: Message) {
        let _ = msg;
    }
}

fn main() {}
