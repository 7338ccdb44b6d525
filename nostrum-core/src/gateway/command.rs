//! `ShardSender`: queues gateway commands (op 3, 4, 8, 31, 43, ...) from any task.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{GatewayError, GatewayErrorKind, ShardState};

/// The largest payload Discord accepts from a client.
pub const MAX_PAYLOAD: usize = 4096;

/// A serialized command waiting for the shard.
#[derive(Debug)]
pub(crate) struct Command {
    /// The whole `{"op":..,"d":..}` text.
    pub(crate) json: String,
}

/// A cheap, cloneable handle that queues commands for one shard.
///
/// Commands are sent by the shard while [`Shard::next_event`](super::Shard::next_event) runs,
/// once the session is ready (after READY or RESUMED), under Discord's limit of 120 sends per
/// minute (110 for commands; the rest is kept for heartbeats). A command that finds no permit
/// waits; none is dropped, and commands queued while disconnected go out after the reconnect.
///
/// ```no_run
/// use std::sync::Arc;
/// use nostrum_core::gateway::{GatewayConfig, Shard, ShardId};
/// use twilight_model::gateway::Intents;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Arc::new(GatewayConfig::new("token".into(), Intents::GUILDS));
/// let shard = Shard::new(ShardId::ONE, config);
/// let sender = shard.sender();
/// sender.update_presence(serde_json::json!({
///     "since": null, "activities": [], "status": "idle", "afk": false
/// }))?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ShardSender {
    tx: mpsc::UnboundedSender<Command>,
    state: Arc<ShardState>,
}

impl ShardSender {
    pub(crate) fn new(tx: mpsc::UnboundedSender<Command>, state: Arc<ShardState>) -> Self {
        Self { tx, state }
    }

    /// Queues a raw gateway command `{"op": op, "d": d}`.
    ///
    /// # Errors
    ///
    /// [`InvalidCommand`](GatewayErrorKind::InvalidCommand) for IDENTIFY (2) and RESUME (6),
    /// which the shard sends itself, and for payloads over 4096 bytes;
    /// [`Closed`](GatewayErrorKind::Closed) after [`close`](Self::close);
    /// [`SendingCommand`](GatewayErrorKind::SendingCommand) if the shard was dropped.
    pub fn command(&self, op: u8, d: Value) -> Result<(), GatewayError> {
        if matches!(op, 2 | 6) {
            return Err(GatewayError::new(GatewayErrorKind::InvalidCommand));
        }
        let json = serde_json::to_string(&json!({ "op": op, "d": d }))
            .map_err(|e| GatewayError::with_source(GatewayErrorKind::SendingCommand, e))?;
        if json.len() > MAX_PAYLOAD {
            return Err(GatewayError::new(GatewayErrorKind::InvalidCommand));
        }
        if self.state.is_close_requested() {
            return Err(GatewayError::new(GatewayErrorKind::Closed));
        }
        self.tx
            .send(Command { json })
            .map_err(|_| GatewayError::new(GatewayErrorKind::SendingCommand))
    }

    /// Op 3, Update Presence: `presence` is the `d` object (`since`, `activities`, `status`,
    /// `afk`).
    ///
    /// # Errors
    ///
    /// As [`command`](Self::command).
    pub fn update_presence(&self, presence: Value) -> Result<(), GatewayError> {
        self.command(3, presence)
    }

    /// Op 4, Update Voice State: join (`Some(channel)`), move, or leave (`None`) a voice channel.
    ///
    /// # Errors
    ///
    /// As [`command`](Self::command).
    pub fn update_voice_state(
        &self,
        guild_id: u64,
        channel_id: Option<u64>,
        self_mute: bool,
        self_deaf: bool,
    ) -> Result<(), GatewayError> {
        self.command(
            4,
            json!({
                "guild_id": guild_id.to_string(),
                "channel_id": channel_id.map(|id| id.to_string()),
                "self_mute": self_mute,
                "self_deaf": self_deaf,
            }),
        )
    }

    /// Op 8, Request Guild Members: `d` as Discord documents it (`guild_id`, `query` or
    /// `user_ids`, `limit`, `presences`, `nonce`). The chunks arrive as `GUILD_MEMBERS_CHUNK`
    /// dispatches; the runtime gathers them by nonce.
    ///
    /// # Errors
    ///
    /// As [`command`](Self::command).
    pub fn request_guild_members(&self, d: Value) -> Result<(), GatewayError> {
        self.command(8, d)
    }

    /// Op 31, Request Soundboard Sounds for these guilds; answered by `SOUNDBOARD_SOUNDS`.
    ///
    /// # Errors
    ///
    /// As [`command`](Self::command).
    pub fn request_soundboard_sounds(&self, guild_ids: &[u64]) -> Result<(), GatewayError> {
        let ids: Vec<String> = guild_ids.iter().map(u64::to_string).collect();
        self.command(31, json!({ "guild_ids": ids }))
    }

    /// Op 43, Request Channel Info: these `fields` (for example `"status"`, `"voice_start_time"`)
    /// of the guild's channels; answered by `CHANNEL_INFO`.
    ///
    /// # Errors
    ///
    /// As [`command`](Self::command).
    pub fn request_channel_info(&self, guild_id: u64, fields: &[&str]) -> Result<(), GatewayError> {
        self.command(
            43,
            json!({ "guild_id": guild_id.to_string(), "fields": fields }),
        )
    }

    /// Closes the shard gracefully: close code 1000 (which ends the session), then
    /// [`Shard::next_event`](super::Shard::next_event) returns an error of kind
    /// [`Closed`](GatewayErrorKind::Closed). Queued commands not yet sent are dropped.
    ///
    /// # Errors
    ///
    /// [`Closed`](GatewayErrorKind::Closed) if the shard was already asked to close.
    pub fn close(&self) -> Result<(), GatewayError> {
        if self.state.is_close_requested() {
            return Err(GatewayError::new(GatewayErrorKind::Closed));
        }
        self.state.request_close();
        Ok(())
    }

    /// Closes the connection with a resumable code (4000) and stops the shard, keeping the session
    /// so another process can resume it ([`ShardState::session`], shard handover). Like
    /// [`close`](Self::close), [`Shard::next_event`](super::Shard::next_event) then returns
    /// [`Closed`](GatewayErrorKind::Closed).
    ///
    /// # Errors
    ///
    /// [`Closed`](GatewayErrorKind::Closed) if the shard was already asked to close.
    pub fn close_resumable(&self) -> Result<(), GatewayError> {
        if self.state.is_close_requested() {
            return Err(GatewayError::new(GatewayErrorKind::Closed));
        }
        self.state.request_resumable_close();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_PAYLOAD, ShardSender};
    use crate::gateway::{GatewayErrorKind, ShardId, ShardState};
    use serde_json::{Value, json};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    fn sender() -> (ShardSender, mpsc::UnboundedReceiver<super::Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            ShardSender::new(tx, Arc::new(ShardState::new(ShardId::ONE))),
            rx,
        )
    }

    fn next(rx: &mut mpsc::UnboundedReceiver<super::Command>) -> Value {
        serde_json::from_str(&rx.try_recv().unwrap().json).unwrap()
    }

    #[test]
    fn payloads_have_discord_shapes() {
        let (sender, mut rx) = sender();
        sender.update_voice_state(1, Some(2), false, true).unwrap();
        assert_eq!(
            next(&mut rx),
            json!({"op": 4, "d": {"guild_id": "1", "channel_id": "2", "self_mute": false, "self_deaf": true}})
        );
        sender.update_voice_state(1, None, false, false).unwrap();
        assert_eq!(next(&mut rx)["d"]["channel_id"], Value::Null);
        sender.request_soundboard_sounds(&[7, 8]).unwrap();
        assert_eq!(
            next(&mut rx),
            json!({"op": 31, "d": {"guild_ids": ["7", "8"]}})
        );
        sender.request_channel_info(9, &["status"]).unwrap();
        assert_eq!(
            next(&mut rx),
            json!({"op": 43, "d": {"guild_id": "9", "fields": ["status"]}})
        );
        sender
            .request_guild_members(json!({"guild_id": "1", "query": "", "limit": 0}))
            .unwrap();
        assert_eq!(next(&mut rx)["op"], 8);
        sender.update_presence(json!({"status": "idle"})).unwrap();
        assert_eq!(next(&mut rx)["op"], 3);
    }

    #[test]
    fn refuses_reserved_ops_big_payloads_and_after_close() {
        let (sender, _rx) = sender();
        for op in [2, 6] {
            let error = sender.command(op, json!({})).unwrap_err();
            assert_eq!(*error.kind(), GatewayErrorKind::InvalidCommand);
        }
        let big = "x".repeat(MAX_PAYLOAD);
        assert_eq!(
            *sender.command(3, json!(big)).unwrap_err().kind(),
            GatewayErrorKind::InvalidCommand
        );
        sender.close().unwrap();
        assert_eq!(
            *sender.close().unwrap_err().kind(),
            GatewayErrorKind::Closed
        );
        assert_eq!(
            *sender.command(3, json!({})).unwrap_err().kind(),
            GatewayErrorKind::Closed
        );
    }

    #[test]
    fn dropped_shard_is_an_error() {
        let (sender, rx) = sender();
        drop(rx);
        assert_eq!(
            *sender.command(3, json!({})).unwrap_err().kind(),
            GatewayErrorKind::SendingCommand
        );
    }
}
