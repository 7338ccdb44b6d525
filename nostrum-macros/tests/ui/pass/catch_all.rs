// `on_event` takes every event no specific handler takes; `on_unknown` takes unknown dispatches.
use nostrum_core::prelude::*;
use nostrum_core::UnknownEvent;

struct All;

#[consumer]
impl All {
    async fn on_event(&self, ctx: Context, event: Event) {
        let _ = (ctx, event.kind());
    }
}

struct Unknowns;

#[consumer]
impl Unknowns {
    async fn on_unknown(&self, ev: UnknownEvent) {
        let _ = (ev.name, ev.raw);
    }
}

struct Both;

#[consumer]
impl Both {
    async fn on_message_create(&self, _msg: Message) {}
    async fn on_event(&self, _event: Event) {}
}

fn main() {
    assert_eq!(<All as Consumer>::EVENTS, EventSet::ALL);
    assert_eq!(<Both as Consumer>::EVENTS, EventSet::ALL);
    assert!(<Unknowns as Consumer>::EVENTS.contains(EventKind::Unknown));
    assert_eq!(<Unknowns as Consumer>::EVENTS.len(), 1);
}
