// A handler taking the context, returning `()`.
use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_message_create(&self, ctx: Context, msg: Message) {
        let _ = (ctx, msg);
    }
}

fn main() {
    assert!(<Bot as Consumer>::EVENTS.contains(EventKind::MessageCreate));
    assert_eq!(<Bot as Consumer>::EVENTS.len(), 1);
    assert!(<Bot as Consumer>::INTENTS.contains(Intents::GUILD_MESSAGES));
}
