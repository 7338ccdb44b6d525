//! The local Discord: a fake gateway and REST server on loopback, speaking Discord's wire protocol, for testing bots.
//!
//! It shares no code with the client side of the SDK (nothing outside `crate::local` is used), so a
//! bug in one cannot hide in the other. Payloads are built as plain JSON.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use nostrum_core::local::{LocalConfig, LocalDiscord};
//! let discord = LocalDiscord::start(LocalConfig::default()).await?;
//! // point the bot at discord.gateway_url() and discord.api_base(), with discord.token()
//! let channel = discord.channel_ids(discord.guild_ids()[0])[0];
//! discord.user_message(channel, "alice", "!ping").await;
//! # Ok(()) }
//! ```

mod compress;
mod gateway;
mod rest;
mod rest_body;
mod rest_example;
mod rest_limits;
mod rest_spec;
mod script;
mod state;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use self::rest_limits::{BucketPlan, BucketRule, RateLimitScope, RestFault, RestStats, Upload};
use self::state::{ConnCmd, Shared, State};

/// Configuration of a [`LocalDiscord`]. Build it with `LocalConfig { shards: 2, ..Default::default() }`.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// The bot token the server accepts (default `"local-discord-token"`). IDENTIFY or RESUME with
    /// another closes with 4004; REST with another `Authorization` than `Bot <token>` answers 401.
    pub token: String,
    /// The recommended shard count served by `GET /gateway/bot` (default 1).
    pub shards: u32,
    /// `session_start_limit.max_concurrency` (default 1).
    pub max_concurrency: u32,
    /// `session_start_limit.remaining` at start (default 1000); each accepted IDENTIFY takes one.
    /// At 0, IDENTIFY is answered with op 9 (invalid session, not resumable).
    pub session_start_remaining: u32,
    /// The `heartbeat_interval` sent in HELLO (default 41.25 s).
    pub heartbeat_interval: Duration,
    /// Number of scripted guilds (default 1), each with one text channel and a few members.
    pub guilds: u32,
    /// Whether the application may use privileged intents (default true). If false, IDENTIFY asking
    /// GUILD_MEMBERS, GUILD_PRESENCES or MESSAGE_CONTENT closes with 4014.
    pub privileged_intents: bool,
    /// Whether scripted messages obey the session's intents as Discord does (default true):
    /// MESSAGE_CREATE needs GUILD_MESSAGES, and without MESSAGE_CONTENT the content of a user's
    /// message is empty unless it mentions the bot.
    pub enforce_intents: bool,
    /// Whether REST enforces its per-route rate limits (by default 5 requests per 5 s per route and
    /// major parameter; see [`LocalDiscord::set_bucket_plan`]) with 429 answers as Discord does
    /// (default true). The headers are always sent.
    pub rest_rate_limit: bool,
    /// The voice server a join (gateway op 4) is sent to: the `endpoint` of the VOICE_SERVER_UPDATE
    /// answer, e.g. a `nostrum_voice::local::LocalVoiceServer`'s `ws://127.0.0.1:PORT` (default
    /// `None`: the endpoint is `null`, as Discord sends while it allocates a server).
    pub voice_endpoint: Option<String>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            token: "local-discord-token".to_owned(),
            shards: 1,
            max_concurrency: 1,
            session_start_remaining: 1000,
            heartbeat_interval: Duration::from_millis(41_250),
            guilds: 1,
            privileged_intents: true,
            enforce_intents: true,
            rest_rate_limit: true,
            voice_endpoint: None,
        }
    }
}

/// One REST call the bot made.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `"POST"`.
    pub method: String,
    /// Path without the query, e.g. `"/api/v10/channels/1/messages"`.
    pub path: String,
    /// The query string, if any (without `?`).
    pub query: Option<String>,
    /// Request headers (lowercase names) in order; the `authorization` value is `"<redacted>"`.
    pub headers: Vec<(String, String)>,
    /// The JSON body (for multipart requests, the `payload_json` part), if it parsed.
    pub body: Option<Value>,
    /// When the request arrived.
    pub at: Instant,
}

/// A message in a scripted channel, by a scripted user or by the bot.
#[derive(Clone, Debug)]
pub struct ConversationLine {
    /// The channel the message was posted in.
    pub channel_id: u64,
    /// The author's username.
    pub author: String,
    /// True for the bot's messages (created through REST).
    pub from_bot: bool,
    /// The message content.
    pub content: String,
    /// The message id.
    pub message_id: u64,
}

/// An IDENTIFY the gateway received.
#[derive(Clone, Debug)]
pub struct IdentifyRecord {
    /// `[shard_id, num_shards]` (`[0, 1]` when absent).
    pub shard: [u32; 2],
    /// The intents asked for.
    pub intents: u64,
    /// The `compress` query parameter of the connection URL.
    pub compress: Option<String>,
    /// `large_threshold`, if sent.
    pub large_threshold: Option<u64>,
    /// When it arrived.
    pub at: Instant,
}

/// A RESUME the gateway received.
#[derive(Clone, Debug)]
pub struct ResumeRecord {
    /// `[shard_id, num_shards]` of the resumed session (`[0, 0]` if the session was unknown).
    pub shard: [u32; 2],
    /// The session id sent.
    pub session_id: String,
    /// The sequence number sent.
    pub seq: u64,
    /// When it arrived.
    pub at: Instant,
}

/// A HEARTBEAT (op 1) the gateway received.
#[derive(Clone, Debug)]
pub struct HeartbeatRecord {
    /// The shard of the connection, if it had identified or resumed.
    pub shard: Option<[u32; 2]>,
    /// The `d` of the heartbeat (last sequence number seen by the client).
    pub seq: Option<u64>,
    /// When it arrived.
    pub at: Instant,
}

/// A fault to inject on the live connection of a shard.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Fault {
    /// Close the TCP connection without a close frame.
    DropSocket,
    /// Keep the socket but never ACK heartbeats again on this connection (a zombie connection).
    StopHeartbeatAck,
    /// Send op 7 RECONNECT.
    Reconnect,
    /// Send op 9 INVALID SESSION with `d = resumable`; if false, the session is forgotten.
    InvalidSession {
        /// Whether the session may be resumed.
        resumable: bool,
    },
    /// Send a close frame with that code; 4007 and 4009 forget the session.
    Close(u16),
    /// Delay every later frame on this connection by that much.
    SlowFrames(Duration),
    /// Send op 1 HEARTBEAT; the client must answer with a heartbeat at once.
    ServerHeartbeat,
    /// Send this text as one message, as it is (compressed like any other): for frames no real
    /// session would send. It is not a dispatch of the session: no sequence is given, nothing is
    /// kept for replay.
    RawText(String),
}

/// A running local Discord: gateway and REST servers on 127.0.0.1. Dropping it stops them.
pub struct LocalDiscord {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for LocalDiscord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalDiscord")
            .field("gateway_url", &self.shared.gateway_url)
            .field("api_base", &self.shared.api_base)
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl Drop for LocalDiscord {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl LocalDiscord {
    /// Binds the gateway and REST listeners on 127.0.0.1 (ephemeral ports) and starts serving.
    pub async fn start(config: LocalConfig) -> std::io::Result<LocalDiscord> {
        let ws = TcpListener::bind(("127.0.0.1", 0)).await?;
        let http = TcpListener::bind(("127.0.0.1", 0)).await?;
        let gateway_url = format!("ws://{}", ws.local_addr()?);
        let api_base = format!("http://{}", http.local_addr()?);
        let shared = Arc::new(Shared::new(config, gateway_url, api_base));
        let tasks = vec![
            tokio::spawn(gateway::serve(ws, shared.clone())),
            tokio::spawn(rest::serve(http, shared.clone())),
        ];
        Ok(LocalDiscord { shared, tasks })
    }

    /// The gateway URL, `ws://127.0.0.1:PORT` (clients append `/?v=10&encoding=json...`).
    pub fn gateway_url(&self) -> String {
        self.shared.gateway_url.clone()
    }

    /// The REST base, `http://127.0.0.1:PORT`; routes are under `/api/v10`.
    pub fn api_base(&self) -> String {
        self.shared.api_base.clone()
    }

    /// The token the server accepts.
    pub fn token(&self) -> String {
        self.shared.config.token.clone()
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &LocalConfig {
        &self.shared.config
    }

    /// The scripted guild ids, in order.
    pub fn guild_ids(&self) -> Vec<u64> {
        self.shared.world.guilds.iter().map(|g| g.id).collect()
    }

    /// The channel ids of a scripted guild (empty for an unknown guild).
    pub fn channel_ids(&self, guild_id: u64) -> Vec<u64> {
        self.shared
            .world
            .guild(guild_id)
            .map(|g| g.channel_ids.clone())
            .unwrap_or_default()
    }

    /// The bot user's id (also the application id).
    pub fn bot_user_id(&self) -> u64 {
        self.shared.world.bot.id
    }

    /// The shard that owns `guild_id` for the shard count the bot identified with
    /// (`(guild_id >> 22) % total`; the configured count before any IDENTIFY).
    pub fn shard_of(&self, guild_id: u64) -> u32 {
        let total = self
            .shared
            .lock()
            .identified_total
            .unwrap_or(self.shared.config.shards);
        script::guild_shard(guild_id, total)
    }

    /// A scripted user (not the bot) posts `content` in `channel_id`: the owning shard's session gets a
    /// full MESSAGE_CREATE (with guild_id, member and author), a [`ConversationLine`] is recorded, and the
    /// message id is returned. Authors are matched by username; a new name becomes a new user.
    pub async fn user_message(&self, channel_id: u64, author_name: &str, content: &str) -> u64 {
        let line = {
            let mut state = self.shared.lock();
            script::post_user_message(&self.shared, &mut state, channel_id, author_name, content)
        };
        let id = line.message_id;
        self.shared.publish(line);
        id
    }

    /// Sends dispatch `t` with payload `d` to the session of shard `shard_id` and returns its sequence
    /// number. Without a live connection the dispatch is buffered and delivered on resume; `None` if the
    /// shard has no session at all.
    pub async fn dispatch(&self, shard_id: u32, t: &str, d: Value) -> Option<u64> {
        let seq = self.shared.lock().push_to_shard(shard_id, t, &d);
        self.shared.notify();
        seq
    }

    /// Every REST call the bot made, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The first recorded REST call (already made or to come) matching `pred`, or `None` on timeout.
    pub async fn wait_for_request(
        &self,
        pred: impl Fn(&RecordedRequest) -> bool,
        timeout: Duration,
    ) -> Option<RecordedRequest> {
        self.wait_until(timeout, |s| s.requests.iter().find(|r| pred(r)).cloned())
            .await
    }

    /// A receiver of user and bot messages as they happen.
    pub fn conversation(&self) -> broadcast::Receiver<ConversationLine> {
        self.shared.conversation.subscribe()
    }

    /// Every IDENTIFY received, in order.
    pub fn identifies(&self) -> Vec<IdentifyRecord> {
        self.shared.lock().identifies.clone()
    }

    /// Every RESUME received, in order.
    pub fn resumes(&self) -> Vec<ResumeRecord> {
        self.shared.lock().resumes.clone()
    }

    /// Every HEARTBEAT received, in order.
    pub fn heartbeats(&self) -> Vec<HeartbeatRecord> {
        self.shared.lock().heartbeats.clone()
    }

    /// True once `count` READY have been sent to shard `shard_id`; false on timeout.
    pub async fn wait_for_ready(&self, shard_id: u32, count: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| {
            (s.ready_sent.get(&shard_id).copied().unwrap_or(0) >= count).then_some(())
        })
        .await
        .is_some()
    }

    /// True once `count` RESUMED have been sent to shard `shard_id`; false on timeout.
    pub async fn wait_for_resumed(&self, shard_id: u32, count: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| {
            (s.resumed_sent.get(&shard_id).copied().unwrap_or(0) >= count).then_some(())
        })
        .await
        .is_some()
    }

    /// True once at least `count` IDENTIFY have been received; false on timeout.
    pub async fn wait_for_identifies(&self, count: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |s| (s.identifies.len() >= count).then_some(()))
            .await
            .is_some()
    }

    /// True once exactly `count` websocket connections are live; false on timeout.
    pub async fn wait_for_connections(&self, count: usize, timeout: Duration) -> bool {
        let shared = &self.shared;
        self.wait_until(timeout, |_| {
            (shared.connections.load(Ordering::SeqCst) == count).then_some(())
        })
        .await
        .is_some()
    }

    /// The number of live websocket connections.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Injects `fault` on the live connection of shard `shard_id` and waits (up to 5 s) until it has
    /// been applied. Does nothing if the shard has no live connection.
    pub async fn inject(&self, shard_id: u32, fault: Fault) {
        let (ack, done) = oneshot::channel();
        let sent = {
            let state = self.shared.lock();
            state
                .session_for_shard(shard_id)
                .and_then(|s| s.live.as_ref())
                .is_some_and(|live| live.tx.send(ConnCmd::Fault(fault, ack)).is_ok())
        };
        if sent {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        } else {
            tracing::debug!(
                shard_id,
                "local discord: no live connection to inject a fault into"
            );
        }
    }

    /// Waits until `f` returns `Some` on the state, re-checking on every change.
    async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut f: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let mut changes = self.shared.changed.subscribe();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = f(&self.shared.lock()) {
                return Some(found);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                _ => return f(&self.shared.lock()),
            }
        }
    }
}
