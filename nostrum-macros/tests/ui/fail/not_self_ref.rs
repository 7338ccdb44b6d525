use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_message_create(&mut self, msg: Message) {
        let _ = msg;
    }

    async fn on_typing_start(typing: TypingStart) {
        let _ = typing;
    }
}

fn main() {}
