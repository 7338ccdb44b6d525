// A runtime event: made by the SDK, not parsed from a dispatch; needs no intent.
use nostrum_core::prelude::*;

struct Bot;

#[consumer]
impl Bot {
    async fn on_shard_connected(&self, e: ShardConnected) {
        let _ = e;
    }
}

fn main() {
    assert!(<Bot as Consumer>::EVENTS.contains(EventKind::ShardConnected));
    assert_eq!(<Bot as Consumer>::INTENTS, Intents::empty());
}
