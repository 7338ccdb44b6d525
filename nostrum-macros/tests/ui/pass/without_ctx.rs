// A handler without the context.
use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_message_create(&self, msg: Message) {
        let _ = msg;
    }
}

fn main() {
    assert!(<Bot as Consumer>::EVENTS.contains(EventKind::MessageCreate));
    assert_eq!(<Bot as Consumer>::EVENTS.len(), 1);
}
