//! The gateway: shards, compression, heartbeats, resume, identify queue and command limits.
//!
//! A [`Shard`] owns one WebSocket connection to Discord and drives its whole life inside
//! [`Shard::next_event`]: it connects, identifies through the shared [`IdentifyQueue`] (or
//! resumes), heartbeats, decompresses ([`Compression`]), answers the server's requests,
//! reconnects with backoff and yields raw dispatches as [`ShardEvent`]s. Other tasks queue
//! commands through a [`ShardSender`] and read the [`ShardState`]. The gateway knows nothing of
//! consumers or the cache.
//!
//! ```no_run
//! use std::sync::Arc;
//! use nostrum_core::gateway::{GatewayConfig, Shard, ShardEvent, ShardId};
//! use twilight_model::gateway::Intents;
//!
//! # async fn run() -> Result<(), nostrum_core::gateway::GatewayError> {
//! let config = Arc::new(GatewayConfig::new("token".into(), Intents::GUILDS));
//! let mut shard = Shard::new(ShardId::ONE, config);
//! let sender = shard.sender();
//! loop {
//!     match shard.next_event().await? {
//!         ShardEvent::Dispatch { name: "READY", .. } => {
//!             sender.update_presence(serde_json::json!({
//!                 "since": null, "activities": [], "status": "online", "afk": false
//!             }))?;
//!         }
//!         ShardEvent::Dispatch { seq, name, data } => println!("#{seq} {name} {}", data.get()),
//!         other => println!("{other:?}"),
//!     }
//! }
//! # }
//! ```

mod command;
mod compression;
mod config;
mod connection;
/// The WebSocket connect the gateway uses (TCP without Nagle, TLS for `wss://`, the handshake),
/// for nostrum-voice's voice gateway: one implementation for both.
#[doc(hidden)]
pub use connection::{Socket as WsSocket, connect as ws_connect};
mod error;
mod event;
mod protocol;
mod queue;
mod ratelimiter;
mod shard;
mod state;

#[cfg(test)]
mod tests;

pub use command::{MAX_PAYLOAD, ShardSender};
pub use compression::Compression;
pub use config::{API_VERSION, DEFAULT_GATEWAY_URL, GatewayConfig, IdentifyProperties};
pub use error::{GatewayError, GatewayErrorKind};
pub(crate) use event::Next;
pub use event::ShardEvent;
pub(crate) use protocol::{DispatchSpan, checked_span, null, validated_raw};
pub use queue::{IDENTIFY_INTERVAL, IdentifyLimiter, IdentifyQueue};
pub use shard::Shard;
pub use state::{SessionInfo, ShardId, ShardState, ShardStatus};
