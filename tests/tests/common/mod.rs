//! Helpers of the end-to-end tests: a recording consumer, a bot running in a task, and payloads.

#![allow(dead_code, unreachable_pub)] // Each test binary uses a part of it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nostrum_core::local::LocalDiscord;
use nostrum_core::prelude::*;
use nostrum_core::{ClientBuilder, ClientError};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

/// The user the scripted TYPING_START dispatches name.
pub const TYPIST: u64 = 1_234_567_890_123_456_789;

/// Logs to the test's output (`RUST_LOG=nostrum_core=debug` to see the shards at work).
pub fn trace() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .try_init();
}

/// One event a [`Recorder`] saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `ctx.shard().id().number`.
    pub shard: u32,
    /// The event's name (`READY`, `SHARD_RESUMED`, ...).
    pub name: &'static str,
    /// A number that tells it apart: the guild id, the TYPING_START timestamp, the message id,
    /// the close code.
    pub id: u64,
    /// Some text: the session id, the message content, `will_resume`.
    pub text: String,
}

/// A consumer that records what it sees, in the order it sees it (join it with
/// [`Tasking::Inline`], see [`client`]).
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    fn push(&self, ctx: &Context, name: &'static str, id: u64, text: String) {
        let shard = ctx.shard().id().number;
        self.lock().push(Seen {
            shard,
            name,
            id,
            text,
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Everything seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().clone()
    }

    /// The events named `name` seen so far.
    pub fn named(&self, name: &str) -> Vec<Seen> {
        self.lock()
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }

    /// How many events named `name` were seen.
    pub fn count(&self, name: &str) -> usize {
        self.lock().iter().filter(|s| s.name == name).count()
    }

    /// The ids (timestamps) of the TYPING_STARTs seen, in order.
    pub fn typing(&self) -> Vec<u64> {
        self.named("TYPING_START").iter().map(|s| s.id).collect()
    }

    /// Waits until `pred` holds on what was seen; false on timeout.
    pub async fn wait_for(&self, timeout: Duration, pred: impl Fn(&[Seen]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.lock()) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `count` events named `name` were seen; false on timeout.
    pub async fn wait_count(&self, name: &str, count: usize, timeout: Duration) -> bool {
        self.wait_for(timeout, |seen| {
            seen.iter().filter(|s| s.name == name).count() >= count
        })
        .await
    }
}

#[consumer]
impl Recorder {
    async fn on_ready(&self, ctx: Context, ready: Ready) {
        self.push(
            &ctx,
            "READY",
            ready.guilds.len() as u64,
            ready.session_id.clone(),
        );
    }

    async fn on_guild_create(&self, ctx: Context, guild: GuildCreate) {
        self.push(&ctx, "GUILD_CREATE", guild.id().get(), String::new());
    }

    async fn on_typing_start(&self, ctx: Context, typing: TypingStart) {
        self.push(&ctx, "TYPING_START", typing.timestamp, String::new());
    }

    async fn on_message_create(&self, ctx: Context, msg: Message) {
        self.push(&ctx, "MESSAGE_CREATE", msg.id.get(), msg.content.clone());
    }

    async fn on_shard_connected(&self, ctx: Context, _event: ShardConnected) {
        self.push(&ctx, "SHARD_CONNECTED", 0, String::new());
    }

    async fn on_shard_disconnected(&self, ctx: Context, event: ShardDisconnected) {
        let text = format!("will_resume={}", event.will_resume);
        self.push(
            &ctx,
            "SHARD_DISCONNECTED",
            event.code.map_or(0, u64::from),
            text,
        );
    }

    async fn on_shard_resumed(&self, ctx: Context, _event: ShardResumed) {
        self.push(&ctx, "SHARD_RESUMED", 0, String::new());
    }
}

/// A client pointed at the local Discord, with `recorder` joined inline (events in gateway order).
pub fn client(discord: &LocalDiscord, recorder: &Recorder) -> ClientBuilder {
    builder(discord).consumer_with(recorder.clone(), ConsumerOptions::tasking(Tasking::Inline))
}

/// A client pointed at the local Discord, without consumers.
pub fn builder(discord: &LocalDiscord) -> ClientBuilder {
    Client::builder(discord.token())
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
}

/// A bot running in a task; aborted when dropped.
#[derive(Debug)]
pub struct Bot {
    handle: JoinHandle<Result<(), ClientError>>,
}

impl Bot {
    /// Runs the client in a task.
    pub fn spawn(builder: ClientBuilder) -> Self {
        Self {
            handle: tokio::spawn(builder.run()),
        }
    }

    /// Runs a built client in a task.
    pub fn run(client: Client) -> Self {
        Self {
            handle: tokio::spawn(client.run()),
        }
    }

    /// What `Client::run` returned, or `None` if it still ran after `timeout`.
    pub async fn finished(&mut self, timeout: Duration) -> Option<Result<(), ClientError>> {
        match tokio::time::timeout(timeout, &mut self.handle).await {
            Ok(joined) => Some(joined.expect("the client task panicked")),
            Err(_) => None,
        }
    }

    /// Whether `Client::run` still runs.
    pub fn is_running(&self) -> bool {
        !self.handle.is_finished()
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// Starts a bot with a recorder and waits for its first READY on shard 0 (as the local Discord
/// sent it and as the recorder saw it).
pub async fn ready_bot(discord: &LocalDiscord, builder: ClientBuilder, recorder: &Recorder) -> Bot {
    let bot = Bot::spawn(builder);
    assert!(discord.wait_for_ready(0, 1, WAIT).await, "no READY sent");
    assert!(
        recorder.wait_count("READY", 1, WAIT).await,
        "READY not seen: {:?}",
        recorder.seen()
    );
    bot
}

/// A TYPING_START whose `timestamp` carries the counter `n`.
pub fn typing(discord: &LocalDiscord, n: u64) -> Value {
    let guild = discord.guild_ids()[0];
    let channel = discord.channel_ids(guild)[0];
    json!({
        "channel_id": channel.to_string(),
        "guild_id": guild.to_string(),
        "user_id": TYPIST.to_string(),
        "timestamp": n,
    })
}

/// Sends TYPING_START dispatches with the counters `range` to shard 0.
pub async fn send_typing(discord: &LocalDiscord, range: std::ops::Range<u64>) {
    for n in range {
        let seq = discord
            .dispatch(0, "TYPING_START", typing(discord, n))
            .await;
        assert!(seq.is_some(), "shard 0 has no session for TYPING_START {n}");
    }
}

/// Waits until the recorder saw exactly the TYPING_STARTs `0..n`, in order (and fails if it saw
/// more, fewer, duplicates or out of order).
pub async fn expect_typing_in_order(recorder: &Recorder, n: u64) {
    recorder.wait_count("TYPING_START", n as usize, WAIT).await;
    // Let a duplicate, if any, arrive.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let seen = recorder.typing();
    let expected: Vec<u64> = (0..n).collect();
    if seen != expected {
        let mut missing: Vec<u64> = expected
            .iter()
            .copied()
            .filter(|n| !seen.contains(n))
            .collect();
        missing.truncate(20);
        panic!(
            "TYPING_START counters: saw {} (expected {n}), missing (first 20) {missing:?}, seen: {seen:?}",
            seen.len()
        );
    }
}
