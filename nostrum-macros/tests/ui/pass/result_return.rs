// Handlers returning `Result<(), E>` with `E: Display`.
use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_message_create(&self, msg: Message) -> Result<(), String> {
        if msg.content.is_empty() { Err("empty".to_owned()) } else { Ok(()) }
    }

    async fn on_typing_start(&self, _ctx: Context, _typing: TypingStart) -> Result<(), BoxError> {
        Ok(())
    }

    async fn on_ready(&self, _ready: Ready) -> Result<(), std::fmt::Error> {
        Ok(())
    }
}

fn main() {
    let events = <Bot as Consumer>::EVENTS;
    assert!(events.contains(EventKind::MessageCreate));
    assert!(events.contains(EventKind::TypingStart));
    assert!(events.contains(EventKind::Ready));
    assert_eq!(events.len(), 3);
}
