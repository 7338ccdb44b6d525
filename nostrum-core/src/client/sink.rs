//! `EventSink`: where a gateway process sends dispatches besides (or instead of) its own consumers.

use std::fmt;

use serde_json::value::RawValue;
use twilight_model::gateway::Intents;

use crate::gateway::ShardId;
use crate::{Event, EventSet};

/// Receives every dispatch it wants, from every shard of the client, after the cache saw it.
///
/// This is how a gateway process hands events to other processes (a Redis Stream, a message
/// queue): set it with [`ClientBuilder::sink`](super::ClientBuilder::sink). It is called from the
/// shard's task in gateway order (one shard's calls never overlap), so it must not block: queue the
/// event and return. A dispatch the client would otherwise skip is still parsed only when the
/// cache or a local consumer needs it; the sink gets the raw payload either way, and the typed
/// event (with its cached old value, [`Event::cached_json`]) when there is one.
pub trait EventSink: fmt::Debug + Send + Sync + 'static {
    /// The dispatches to receive.
    fn wants(&self) -> EventSet;

    /// The intents the receivers need; added to the client's (default: those of [`wants`](Self::wants)).
    fn intents(&self) -> Intents {
        self.wants().intents()
    }

    /// One dispatch: its shard, sequence, name and raw `d`, and the typed event when the client
    /// parsed it (the cache or a local consumer wanted it).
    fn send(&self, shard: ShardId, seq: u64, name: &str, data: &RawValue, event: Option<&Event>);
}
