// A runtime event: made by the SDK, not parsed from a dispatch; needs no intent. Dispatched for real.
use std::time::Duration;

use nostrum_core::dispatch::{ConsumerGroup, EventKeys};
use nostrum_core::http::Http;
use nostrum_core::prelude::*;
use tokio::sync::mpsc;

struct Bot {
    seen: mpsc::UnboundedSender<u32>,
}

#[consumer]
impl Bot {
    async fn on_shard_connected(&self, e: ShardConnected) {
        self.seen.send(e.shard_id).unwrap();
    }
}

#[tokio::main]
async fn main() {
    assert!(<Bot as Consumer>::EVENTS.contains(EventKind::ShardConnected));
    assert_eq!(<Bot as Consumer>::EVENTS.len(), 1);
    assert_eq!(<Bot as Consumer>::INTENTS, Intents::empty());

    let (seen, mut rx) = mpsc::unbounded_channel();
    let group = ConsumerGroup::new();
    group.join(Bot { seen });
    let ctx = Context::detached(Http::new("token"));
    let event = Event::ShardConnected(ShardConnected { shard_id: 3 });
    group.dispatch(&ctx, event, EventKeys::default()).await;
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(got, Ok(Some(3)));
}
