//! Events across processes: a gateway process publishes dispatches to one Redis Stream per shard
//! ([`RedisPublisher`]); worker processes read them through a consumer group ([`Worker`]), run
//! their consumers, acknowledge each event once its handlers ended and claim the pending events of
//! a worker that died.
//!
//! Delivery is at least once: an event is acknowledged only after its handlers returned, so a
//! worker killed mid-event leaves it pending and another worker claims it after
//! [`WorkerConfig::claim_idle`]. A handler may therefore see an event twice (after a claim, or
//! when a publish is retried); the entry's `(shard, seq)` and the event itself tell duplicates
//! apart. Within a shard's stream entries are read in order; with
//! [`WorkerConfig::concurrency`] 1 (the default) one worker handles them in that order.
//!
//! Stream entries hold the dispatch name (`n`), the raw payload (`d`), the sequence (`s`), the
//! shard total (`T`) and, when the gateway process's cache filled one, the old value of an update
//! or the deleted object of a delete as JSON (`c`, see [`Event::cached_json`]); so handlers in a
//! worker get `Update::old` and `Deleted::cached` as they would in the gateway process.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use nostrum_core::{
    Consumer, Context, Event, EventKind, EventSet, Intents, ShardContext,
    cache::Cache,
    client::EventSink,
    dispatch::{ConsumerGroup, ConsumerOptions, EventKeys, Tasking},
    gateway::ShardId,
    http::Http,
};
use redis::{
    AsyncCommands, Value,
    aio::{ConnectionManager, MultiplexedConnection},
    streams::{StreamClaimReply, StreamId, StreamReadReply},
};
use serde_json::value::RawValue;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

/// The key prefix used when none is given.
pub const DEFAULT_PREFIX: &str = "nostrum";

/// The stream of shard `shard` under `prefix`: `{prefix}:events:{shard}`.
pub fn stream_key(prefix: &str, shard: u32) -> String {
    format!("{prefix}:events:{shard}")
}

/// How a [`RedisPublisher`] publishes.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PublisherConfig {
    /// Key prefix (default `"nostrum"`), so several bots can share a Redis.
    pub prefix: String,
    /// The dispatches to publish: the union of what the workers' consumers handle
    /// (`MyConsumer::EVENTS`). Their intents are added to the gateway process's.
    pub events: EventSet,
    /// Trim each stream to about this many entries (`XADD MAXLEN ~`). `None` (the default) trims
    /// nothing: the workers delete what they acknowledged ([`WorkerConfig::delete_acked`]), so
    /// an entry is never trimmed before a worker handled it.
    pub max_len: Option<usize>,
    /// Most entries sent to Redis in one pipeline (default 512).
    pub batch: usize,
}

impl PublisherConfig {
    /// Publishes `events` under the default prefix.
    pub fn new(events: EventSet) -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            events,
            max_len: None,
            batch: 512,
        }
    }

    /// Sets the key prefix.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}

/// One dispatch on its way to Redis.
struct Entry {
    shard: ShardId,
    seq: u64,
    name: Box<str>,
    data: Box<str>,
    cached: Option<String>,
}

enum Message {
    Entry(Entry),
    Flush(oneshot::Sender<()>),
}

/// Counters of a publisher.
#[derive(Debug, Default)]
struct PublisherCounters {
    queued: AtomicU64,
    published: AtomicU64,
    retries: AtomicU64,
}

/// Publishes the dispatches of a gateway process to Redis Streams, one per shard.
///
/// An [`EventSink`]: give it to [`ClientBuilder::sink`](nostrum_core::ClientBuilder::sink). The
/// shard's task only queues the entry; one background task sends them in order, in pipelines, and
/// retries until Redis takes them (never dropping one). Cheap to clone.
///
/// ```no_run
/// use nostrum_core::{prelude::*, EventKind, EventSet};
/// use nostrum_redis::{PublisherConfig, RedisPublisher};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = redis::Client::open("redis://127.0.0.1/")?;
/// let events = EventSet::EMPTY.with(EventKind::MessageCreate);
/// let publisher = RedisPublisher::new(redis, PublisherConfig::new(events)).await?;
/// Client::builder(std::env::var("DISCORD_TOKEN")?).sink(publisher).run().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisPublisher {
    tx: mpsc::UnboundedSender<Message>,
    events: EventSet,
    counters: Arc<PublisherCounters>,
}

impl fmt::Debug for RedisPublisher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisPublisher")
            .field("events", &self.events.len())
            .field("queued", &self.counters.queued.load(Ordering::Relaxed))
            .field("published", &self.published())
            .finish_non_exhaustive()
    }
}

impl RedisPublisher {
    /// Connects and starts the background sender.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn new(client: redis::Client, config: PublisherConfig) -> redis::RedisResult<Self> {
        let conn = ConnectionManager::new(client).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let counters = Arc::new(PublisherCounters::default());
        tokio::spawn(send_loop(conn, rx, config.clone(), Arc::clone(&counters)));
        Ok(Self {
            tx,
            events: config.events,
            counters,
        })
    }

    /// Completes when every entry queued before the call is in Redis (before a shard handover).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }

    /// Entries Redis has accepted so far.
    pub fn published(&self) -> u64 {
        self.counters.published.load(Ordering::Relaxed)
    }

    /// Pipelines that failed and were sent again.
    pub fn retries(&self) -> u64 {
        self.counters.retries.load(Ordering::Relaxed)
    }
}

impl EventSink for RedisPublisher {
    fn wants(&self) -> EventSet {
        self.events
    }

    fn send(&self, shard: ShardId, seq: u64, name: &str, data: &RawValue, event: Option<&Event>) {
        let cached = match event.and_then(Event::cached_json) {
            Some(Ok(json)) => Some(json),
            Some(Err(err)) => {
                tracing::warn!(event = name, error = %err, "could not serialise the cached value; published without it");
                None
            }
            None => None,
        };
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        let entry = Entry {
            shard,
            seq,
            name: name.into(),
            data: data.get().into(),
            cached,
        };
        if self.tx.send(Message::Entry(entry)).is_err() {
            tracing::error!(
                event = name,
                "the Redis publisher stopped; the event is not published"
            );
        }
    }
}

/// Sends queued entries to Redis in order, in pipelines, retrying a failed pipeline until it goes.
async fn send_loop(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Message>,
    config: PublisherConfig,
    counters: Arc<PublisherCounters>,
) {
    let mut keys: HashMap<u32, String> = HashMap::new();
    let mut batch = Vec::with_capacity(config.batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < config.batch.max(1) {
            match rx.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        let mut pipe = redis::pipe();
        let mut entries = 0u64;
        for message in &batch {
            let Message::Entry(entry) = message else {
                continue;
            };
            entries += 1;
            let key = keys
                .entry(entry.shard.number)
                .or_insert_with(|| stream_key(&config.prefix, entry.shard.number));
            let cmd = pipe.cmd("XADD").arg(&*key);
            if let Some(max_len) = config.max_len {
                cmd.arg("MAXLEN").arg("~").arg(max_len);
            }
            cmd.arg("*")
                .arg("n")
                .arg(&*entry.name)
                .arg("s")
                .arg(entry.seq)
                .arg("T")
                .arg(entry.shard.total)
                .arg("d")
                .arg(&*entry.data);
            if let Some(cached) = &entry.cached {
                cmd.arg("c").arg(cached);
            }
            cmd.ignore();
        }
        if entries > 0 {
            let mut backoff = Duration::from_millis(50);
            loop {
                match pipe.query_async::<()>(&mut conn).await {
                    Ok(()) => break,
                    Err(err) => {
                        counters.retries.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %err, entries, ?backoff, "publishing to Redis failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            counters.published.fetch_add(entries, Ordering::Relaxed);
        }
        for message in batch.drain(..) {
            if let Message::Flush(done) = message {
                let _ = done.send(());
            }
        }
    }
}

/// How a [`Worker`] reads.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Key prefix (default `"nostrum"`), as the publisher's.
    pub prefix: String,
    /// The consumer group (default `"workers"`): the workers of one group share the events, each
    /// event going to one of them.
    pub group: String,
    /// This worker's name in the group; unique per worker process. A worker restarted under the
    /// same name first handles what it had read but not acknowledged.
    pub name: String,
    /// The bot's shard total: the worker reads the streams of shards `0..total`.
    pub total_shards: u32,
    /// Events pending in another worker for this long are claimed (default 30 s): that worker is
    /// taken for dead. Longer than the slowest handler, or a slow event is handled twice.
    pub claim_idle: Duration,
    /// Most events handled at once per shard stream (default 1: one after another, in stream
    /// order).
    pub concurrency: usize,
    /// Entries read per call (default 256).
    pub read_count: usize,
    /// How long one read waits for new entries (default 1 s).
    pub block: Duration,
    /// Delete each entry from the stream once acknowledged (default true), which keeps the streams
    /// short; turn off when other consumer groups read the same streams.
    pub delete_acked: bool,
}

impl WorkerConfig {
    /// A worker named `name` reading the streams of `total_shards` shards.
    pub fn new(name: impl Into<String>, total_shards: u32) -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            group: "workers".to_owned(),
            name: name.into(),
            total_shards,
            claim_idle: Duration::from_secs(30),
            concurrency: 1,
            read_count: 256,
            block: Duration::from_secs(1),
            delete_acked: true,
        }
    }
}

/// What a worker has done so far.
#[derive(Debug, Default)]
pub struct WorkerStats {
    /// Entries read for the first time.
    pub read: AtomicU64,
    /// Entries claimed from another worker (or re-read from its own pending list at start).
    pub claimed: AtomicU64,
    /// Events whose handlers ended.
    pub handled: AtomicU64,
    /// Entries acknowledged.
    pub acked: AtomicU64,
    /// Entries that did not hold a dispatch (acknowledged and skipped, with a warning).
    pub malformed: AtomicU64,
}

/// Why [`Worker::run`] stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// Redis could not be reached at start.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Stops a running [`Worker`] after the events it is handling.
#[derive(Clone, Debug)]
pub struct WorkerStop(watch::Sender<bool>);

impl WorkerStop {
    /// Asks the worker to stop reading; [`Worker::run`] returns once the events in hand are
    /// handled and acknowledged.
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

/// A worker process's side: runs consumers on the events of a Redis consumer group.
///
/// ```no_run
/// use nostrum_core::{http::Http, prelude::*};
/// use nostrum_redis::{Worker, WorkerConfig};
///
/// struct Bot;
/// #[consumer]
/// impl Bot {
///     async fn on_message_create(&self, msg: Message) {
///         println!("{}", msg.content);
///     }
/// }
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let redis = redis::Client::open("redis://127.0.0.1/")?;
/// let http = Http::new(std::env::var("DISCORD_TOKEN")?);
/// Worker::new(redis, WorkerConfig::new("worker-1", 4), http).consumer(Bot).run().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Worker {
    client: redis::Client,
    config: WorkerConfig,
    group: ConsumerGroup,
    http: Http,
    cache: Cache,
    stats: Arc<WorkerStats>,
    stop: watch::Sender<bool>,
}

/// What the per-stream tasks of a worker share.
struct Shared {
    config: WorkerConfig,
    group: ConsumerGroup,
    http: Http,
    cache: Cache,
    stats: Arc<WorkerStats>,
    acks: mpsc::UnboundedSender<(u32, String)>,
}

impl Worker {
    /// A worker with no consumer yet, REST through `http` and no cache (see [`cache`](Self::cache)).
    pub fn new(client: redis::Client, config: WorkerConfig, http: Http) -> Self {
        Self {
            client,
            config,
            group: ConsumerGroup::new(),
            http,
            cache: Cache::none(),
            stats: Arc::default(),
            stop: watch::channel(false).0,
        }
    }

    /// Adds a consumer. The worker gives each event its own task and acknowledges it when the
    /// consumer's handlers ended, so the consumer's handlers run inside that task.
    #[must_use]
    pub fn consumer<C: Consumer>(self, consumer: C) -> Self {
        self.group.join_with(
            consumer,
            ConsumerOptions {
                tasking: Tasking::Inline,
                ..ConsumerOptions::default()
            },
        );
        self
    }

    /// What `ctx.cache()` answers in handlers (a shared cache that the gateway processes write,
    /// such as [`RedisCache`](crate::RedisCache)'s reader).
    #[must_use]
    pub fn cache(mut self, cache: Cache) -> Self {
        self.cache = cache;
        self
    }

    /// The worker's counters.
    pub fn stats(&self) -> Arc<WorkerStats> {
        Arc::clone(&self.stats)
    }

    /// A handle that stops the worker.
    pub fn stopper(&self) -> WorkerStop {
        WorkerStop(self.stop.clone())
    }

    /// The intents the consumers need: give them to the gateway processes.
    pub fn intents(&self) -> Intents {
        self.group.intents()
    }

    /// Reads and handles events until stopped.
    ///
    /// # Errors
    /// When Redis cannot be reached at start; later Redis errors are logged and retried.
    pub async fn run(self) -> Result<(), WorkerError> {
        let config = self.config;
        let total = config.total_shards.max(1);
        let keys: Vec<String> = (0..total).map(|n| stream_key(&config.prefix, n)).collect();
        let mut conn = ConnectionManager::new(self.client.clone()).await?;
        for key in &keys {
            let created: redis::RedisResult<()> =
                conn.xgroup_create_mkstream(key, &config.group, "0").await;
            if let Err(err) = created
                && err.code() != Some("BUSYGROUP")
            {
                return Err(err.into());
            }
        }
        // A blocking XREADGROUP holds its connection: the reader gets its own.
        let reader = self
            .client
            .get_multiplexed_async_connection_with_config(
                &redis::AsyncConnectionConfig::new()
                    .set_response_timeout(Some(config.block + Duration::from_secs(5))),
            )
            .await?;

        let (ack_tx, ack_rx) = mpsc::unbounded_channel();
        let acker = tokio::spawn(ack_loop(
            conn.clone(),
            ack_rx,
            keys.clone(),
            config.clone(),
            Arc::clone(&self.stats),
        ));
        // Dropping `run`'s future (an aborted task) ends every task it started, as a killed
        // process would: nothing goes on handling or acknowledging behind the caller's back.
        let mut guard = AbortOnDrop(vec![acker.abort_handle()]);
        let shared = Arc::new(Shared {
            config: config.clone(),
            group: self.group,
            http: self.http,
            cache: self.cache,
            stats: Arc::clone(&self.stats),
            acks: ack_tx,
        });
        let mut streams = Vec::new();
        let mut senders = Vec::new();
        for shard in 0..total {
            let (tx, rx) = mpsc::channel::<StreamId>(config.read_count.max(1) * 2);
            senders.push(tx);
            let stream = tokio::spawn(stream_loop(shard, rx, Arc::clone(&shared)));
            guard.0.push(stream.abort_handle());
            streams.push(stream);
        }
        drop(shared);
        let stop = self.stop.subscribe();
        let claimer = tokio::spawn(claim_loop(
            conn,
            keys.clone(),
            senders.clone(),
            config.clone(),
            Arc::clone(&self.stats),
            stop.clone(),
        ));
        guard.0.push(claimer.abort_handle());
        read_loop(reader, &keys, &senders, &config, &self.stats, stop).await;
        claimer.abort();
        let _ = claimer.await;
        drop(senders);
        for stream in streams {
            let _ = stream.await;
        }
        let _ = acker.await;
        guard.0.clear();
        Ok(())
    }
}

/// Aborts the tasks a worker started when its `run` future is dropped.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for handle in &self.0 {
            handle.abort();
        }
    }
}

/// Reads new entries (first this worker's own pending ones, from an earlier life) and hands each
/// to its stream's task.
async fn read_loop(
    mut conn: MultiplexedConnection,
    keys: &[String],
    senders: &[mpsc::Sender<StreamId>],
    config: &WorkerConfig,
    stats: &WorkerStats,
    mut stop: watch::Receiver<bool>,
) {
    // First this worker's own pending entries (read in an earlier life, never acknowledged),
    // from each stream's start, moving a cursor past what was handed on; then new entries.
    let mut own_pending = true;
    let mut cursors: Vec<String> = vec!["0".to_owned(); keys.len()];
    let mut backoff = Duration::from_millis(50);
    loop {
        if *stop.borrow() {
            return;
        }
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&config.group)
            .arg(&config.name)
            .arg("COUNT")
            .arg(config.read_count.max(1));
        if !own_pending {
            cmd.arg("BLOCK")
                .arg(u64::try_from(config.block.as_millis()).unwrap_or(1000));
        }
        cmd.arg("STREAMS").arg(keys);
        if own_pending {
            cmd.arg(&cursors);
        } else {
            for _ in keys {
                cmd.arg(">");
            }
        }
        let reply: redis::RedisResult<Option<StreamReadReply>> = tokio::select! {
            reply = cmd.query_async(&mut conn) => reply,
            _ = stop.changed() => return,
        };
        let reply = match reply {
            Ok(reply) => {
                backoff = Duration::from_millis(50);
                reply
            }
            Err(err) => {
                tracing::warn!(error = %err, ?backoff, "reading the event streams failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let mut any = false;
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            let Some(shard) = keys.iter().position(|k| *k == key.key) else {
                continue;
            };
            for entry in key.ids {
                any = true;
                if own_pending {
                    cursors[shard].clone_from(&entry.id);
                    stats.claimed.fetch_add(1, Ordering::Relaxed);
                } else {
                    stats.read.fetch_add(1, Ordering::Relaxed);
                }
                if senders[shard].send(entry).await.is_err() {
                    return;
                }
            }
        }
        if own_pending && !any {
            own_pending = false;
        }
    }
}

/// Claims the entries another worker left pending for longer than `claim_idle`.
async fn claim_loop(
    mut conn: ConnectionManager,
    keys: Vec<String>,
    senders: Vec<mpsc::Sender<StreamId>>,
    config: WorkerConfig,
    stats: Arc<WorkerStats>,
    mut stop: watch::Receiver<bool>,
) {
    let idle_ms = u64::try_from(config.claim_idle.as_millis()).unwrap_or(u64::MAX);
    let every = (config.claim_idle / 2).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        for (shard, key) in keys.iter().enumerate() {
            // Entries idle for longer than `claim_idle` in *other* workers (this worker's own
            // pending entries are in its queue already: claiming them would handle them twice).
            let pending: redis::RedisResult<Vec<(String, String, u64, u64)>> =
                redis::cmd("XPENDING")
                    .arg(key)
                    .arg(&config.group)
                    .arg("IDLE")
                    .arg(idle_ms)
                    .arg("-")
                    .arg("+")
                    .arg(config.read_count.max(1))
                    .query_async(&mut conn)
                    .await;
            let ids: Vec<String> = match pending {
                Ok(pending) => pending
                    .into_iter()
                    .filter(|(_, owner, _, _)| *owner != config.name)
                    .map(|(id, ..)| id)
                    .collect(),
                Err(err) => {
                    tracing::warn!(error = %err, stream = %key, "listing pending events failed");
                    continue;
                }
            };
            if ids.is_empty() {
                continue;
            }
            let claimed: redis::RedisResult<StreamClaimReply> = redis::cmd("XCLAIM")
                .arg(key)
                .arg(&config.group)
                .arg(&config.name)
                .arg(idle_ms)
                .arg(&ids)
                .query_async(&mut conn)
                .await;
            let claimed = match claimed {
                Ok(claimed) => claimed.ids,
                Err(err) => {
                    tracing::warn!(error = %err, stream = %key, "claiming pending events failed");
                    continue;
                }
            };
            tracing::info!(
                stream = %key,
                count = claimed.len(),
                "claimed the pending events of a worker that stopped answering"
            );
            for entry in claimed {
                stats.claimed.fetch_add(1, Ordering::Relaxed);
                if senders[shard].send(entry).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Handles one stream's entries: in order when `concurrency` is 1, else up to that many at once.
async fn stream_loop(shard: u32, mut rx: mpsc::Receiver<StreamId>, shared: Arc<Shared>) {
    let limit = Arc::new(Semaphore::new(shared.config.concurrency.max(1)));
    let sequential = shared.config.concurrency <= 1;
    while let Some(entry) = rx.recv().await {
        if sequential {
            handle(shard, entry, &shared).await;
        } else {
            let Ok(permit) = Arc::clone(&limit).acquire_owned().await else {
                return;
            };
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                handle(shard, entry, &shared).await;
                drop(permit);
            });
        }
    }
    // Wait for the spawned handlers before the acknowledgements close.
    let _ = limit
        .acquire_many(u32::try_from(shared.config.concurrency.max(1)).unwrap_or(u32::MAX))
        .await;
}

/// A stream entry decoded back into what the gateway process published.
#[derive(Debug)]
struct Published {
    name: String,
    data: Box<RawValue>,
    total: u32,
    cached: Option<String>,
}

fn field(entry: &StreamId, name: &str) -> Option<String> {
    match entry.map.get(name)? {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn decode(entry: &StreamId) -> Option<Published> {
    let name = field(entry, "n")?;
    let data = RawValue::from_string(field(entry, "d")?).ok()?;
    let total = field(entry, "T")?.parse().ok()?;
    Some(Published {
        name,
        data,
        total,
        cached: field(entry, "c"),
    })
}

/// Runs the consumers on one entry, then queues its acknowledgement.
async fn handle(shard: u32, entry: StreamId, shared: &Shared) {
    match decode(&entry) {
        Some(published) => {
            let mut event = Event::from_dispatch(&published.name, &published.data);
            if let Some(cached) = &published.cached
                && let Err(err) = event.set_cached_json(cached)
            {
                tracing::warn!(event = %published.name, error = %err, "the cached value did not parse; handled without it");
            }
            let keys = if shared.group.needs_keys() {
                EventKeys::scan(&published.name, &published.data)
            } else {
                EventKeys::default()
            };
            let ctx = Context::new(
                ShardContext::remote(ShardId::new(shard, published.total)),
                shared.http.clone(),
                shared.cache.clone(),
            );
            if shared
                .group
                .wants(EventKind::from_name(&published.name).unwrap_or(EventKind::Unknown))
            {
                shared.group.dispatch(&ctx, event, keys).await;
            }
            shared.stats.handled.fetch_add(1, Ordering::Relaxed);
        }
        None => {
            shared.stats.malformed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(id = %entry.id, shard, "a stream entry holds no dispatch; acknowledged and skipped");
        }
    }
    let _ = shared.acks.send((shard, entry.id));
}

/// Acknowledges handled entries in batches (and deletes them when configured).
async fn ack_loop(
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<(u32, String)>,
    keys: Vec<String>,
    config: WorkerConfig,
    stats: Arc<WorkerStats>,
) {
    let mut batch = Vec::new();
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < 1024 {
            match rx.try_recv() {
                Ok(ack) => batch.push(ack),
                Err(_) => break,
            }
        }
        let mut by_stream: HashMap<u32, Vec<&str>> = HashMap::new();
        for (shard, id) in &batch {
            by_stream.entry(*shard).or_default().push(id);
        }
        let mut pipe = redis::pipe();
        for (shard, ids) in &by_stream {
            let key = &keys[*shard as usize];
            pipe.cmd("XACK")
                .arg(key)
                .arg(&config.group)
                .arg(ids)
                .ignore();
            if config.delete_acked {
                pipe.cmd("XDEL").arg(key).arg(ids).ignore();
            }
        }
        let mut backoff = Duration::from_millis(50);
        loop {
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(error = %err, "acknowledging events failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        stats.acked.fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
    }
}
