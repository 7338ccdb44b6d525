// `#[on(EVENT)]` on an arbitrary name, two handlers of one event, and one method for two events.
use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    #[on(MESSAGE_CREATE)]
    async fn log(&self, msg: Message) {
        let _ = msg;
    }

    async fn on_message_create(&self, _ctx: Context, _msg: Message) {}

    #[on(THREAD_CREATE)]
    #[on(channel_create)]
    async fn created(&self, _channel: Channel) {}
}

fn main() {
    let events = <Bot as Consumer>::EVENTS;
    assert!(events.contains(EventKind::MessageCreate));
    assert!(events.contains(EventKind::ThreadCreate));
    assert!(events.contains(EventKind::ChannelCreate));
    assert_eq!(events.len(), 3);
}
