use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    #[on(MESSAGE_CREATE)]
    #[on(MESSAGE_CREATE)]
    async fn log(&self, msg: Message) {
        let _ = msg;
    }

    async fn on_typing_start(&self, _typing: TypingStart) {}

    async fn on_typing_start(&self, _typing: TypingStart) {}
}

fn main() {}
