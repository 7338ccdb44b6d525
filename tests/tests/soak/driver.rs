//! The chaos soak driver, shared by `tests/tests/soak.rs` (short) and `examples/soak.rs` (long).
//!
//! A bot on N shards (one inline consumer) receives TYPING_START dispatches whose `timestamp` is a
//! per-shard counter, while the local Discord, at seeded moments, drops sockets, stops ACKing
//! heartbeats, sends op 7 / op 9 (both ways) / op 1, closes with every non-fatal close code, slows
//! frames, and answers REST with 429s (every scope), 5xx and slow answers. Every 100th event of a
//! shard, the handler sends one `create_message` (in a task) and counts how it ends.
//!
//! Accounting of events: a counter is "refused" when `dispatch` returned `None` (the shard had no
//! session: Discord would not have sent it). A counter that was sent but never delivered is "lost to
//! session invalidation" when it was dispatched before the bot saw the replacement READY of an
//! injected invalidation (op 9 false, 4007, 4009) and the next delivered counter was dispatched
//! after that invalidation began: it went to the forgotten session. Any other missing counter is
//! "lost during resumable reconnects" (must be zero), as is any repeat or reordering.
//!
//! The seeded choices (shards, fault kinds, fault moments) come from a SplitMix64 of the
//! seed; the interleaving with the bot's reconnects depends on timing, so two runs of one seed differ
//! in their details.

#![allow(dead_code, unreachable_pub)] // The example and the test each use a part of it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use nostrum_core::http::HttpErrorKind;
use nostrum_core::local::{
    BucketPlan, Fault, LocalConfig, LocalDiscord, RateLimitScope, RestFault, RestStats,
};
use nostrum_core::prelude::*;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Close codes after which a bot resumes.
pub const RESUMABLE_CLOSES: [u16; 6] = [4000, 4001, 4002, 4003, 4005, 4008];
/// Close codes after which a bot identifies afresh (Discord forgot the session).
pub const SESSION_CLOSES: [u16; 2] = [4007, 4009];

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakConfig {
    /// TYPING_START dispatches to send, over all shards.
    pub events: u64,
    /// The seed of every random choice.
    pub seed: u64,
    /// Shards of the bot.
    pub shards: u32,
    /// Stop dispatching after this long (the report says so).
    pub max_duration: Duration,
    /// At most that many events per second (`None`: as fast as the bot takes them).
    pub rate: Option<u32>,
    /// Milliseconds between two faults: uniformly in this range.
    pub fault_every_ms: (u64, u64),
    /// One `create_message` per that many events of a shard.
    pub rest_every: u64,
    /// The HELLO heartbeat interval (short, so zombies are found quickly).
    pub heartbeat: Duration,
    /// At most that many events dispatched but not yet delivered per shard (far under the local
    /// Discord's replay buffer of 10,000, so every resume can replay).
    pub window: u64,
    /// Print a progress line every that many events (0: never).
    pub progress_every: u64,
}

impl Default for SoakConfig {
    fn default() -> Self {
        Self {
            events: 20_000,
            seed: 1,
            shards: 4,
            max_duration: Duration::from_secs(60),
            rate: None,
            fault_every_ms: (120, 300),
            rest_every: 100,
            heartbeat: Duration::from_millis(500),
            window: 2_000,
            progress_every: 0,
        }
    }
}

/// SplitMix64: a tiny seeded generator (the `tests` crate has no `fastrand` dependency).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn with_seed(seed: u64) -> Self {
        Self(seed)
    }

    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.u64() % (hi - lo + 1)
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.u64() % items.len() as u64) as usize]
    }
}

/// Every panic of the process, counted by a hook (a task's panic is caught by tokio, not lost).
static PANICS: AtomicU64 = AtomicU64::new(0);
static HOOK: OnceLock<()> = OnceLock::new();

fn count_panics() {
    HOOK.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Peak resident memory of the process (bot, local Discord and driver), in KiB.
pub fn vm_hwm_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the bot saw on one shard.
#[derive(Debug, Default)]
struct ShardSeen {
    /// TYPING_START counters in delivery order.
    delivered: Vec<u64>,
    /// When READYs were seen.
    readies: Vec<Instant>,
    /// SHARD_DISCONNECTED with `will_resume` false: when, and the close code.
    fresh_disconnects: Vec<(Instant, Option<u16>)>,
    resumable_disconnects: u64,
    resumed: u64,
}

/// The bot's side, shared with the driver.
#[derive(Debug)]
struct Observed {
    shards: Vec<Mutex<ShardSeen>>,
    /// Per shard: highest delivered counter + 1.
    high: Vec<AtomicU64>,
    rest_every: u64,
    rest_sent: AtomicU64,
    rest_ok: AtomicU64,
    rest_errors: Mutex<BTreeMap<String, u64>>,
    rest_max_latency_ms: AtomicU64,
    rest_tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Observed {
    fn new(shards: u32, rest_every: u64) -> Self {
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            high: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            rest_every,
            rest_sent: AtomicU64::new(0),
            rest_ok: AtomicU64::new(0),
            rest_errors: Mutex::default(),
            rest_max_latency_ms: AtomicU64::new(0),
            rest_tasks: Mutex::default(),
        }
    }

    fn shard(&self, ctx: &Context) -> MutexGuard<'_, ShardSeen> {
        lock(&self.shards[ctx.shard().id().number as usize])
    }
}

/// The soak bot's consumer (joined with [`Tasking::Inline`]: events in gateway order).
#[derive(Clone, Debug)]
struct SoakBot(Arc<Observed>);

fn error_label(kind: &HttpErrorKind) -> String {
    match kind {
        HttpErrorKind::Status { status, .. } => format!("status {status}"),
        HttpErrorKind::RateLimited { global, .. } => format!("rate limited (global {global})"),
        HttpErrorKind::Timeout => "timeout".to_owned(),
        HttpErrorKind::Request => "request".to_owned(),
        HttpErrorKind::Json => "json".to_owned(),
        HttpErrorKind::Validation { .. } => "validation".to_owned(),
        other => format!("{other:?}"),
    }
}

#[consumer]
impl SoakBot {
    async fn on_ready(&self, ctx: Context, _ready: Ready) {
        self.0.shard(&ctx).readies.push(Instant::now());
    }

    async fn on_typing_start(&self, ctx: Context, typing: TypingStart) {
        let number = ctx.shard().id().number as usize;
        let counter = typing.timestamp;
        self.0.shard(&ctx).delivered.push(counter);
        self.0.high[number].fetch_max(counter + 1, Ordering::SeqCst);
        if !counter.is_multiple_of(self.0.rest_every) {
            return;
        }
        // The REST call runs in its own task: a 429 or a slow answer must not hold the shard.
        let observed = Arc::clone(&self.0);
        let http = ctx.http().clone();
        let channel = typing.channel_id;
        observed.rest_sent.fetch_add(1, Ordering::SeqCst);
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let result = http
                .create_message(channel)
                .content(format!("soak: shard {number}, event {counter}"))
                .await;
            let took = start.elapsed().as_millis() as u64;
            observed
                .rest_max_latency_ms
                .fetch_max(took, Ordering::SeqCst);
            match result {
                Ok(_) => {
                    observed.rest_ok.fetch_add(1, Ordering::SeqCst);
                }
                Err(error) => {
                    *lock(&observed.rest_errors)
                        .entry(error_label(error.kind()))
                        .or_insert(0) += 1;
                }
            }
        });
        lock(&self.0.rest_tasks).push(task);
    }

    async fn on_shard_disconnected(&self, ctx: Context, event: ShardDisconnected) {
        let mut shard = self.0.shard(&ctx);
        if event.will_resume {
            shard.resumable_disconnects += 1;
        } else {
            shard.fresh_disconnects.push((Instant::now(), event.code));
        }
    }

    async fn on_shard_resumed(&self, ctx: Context, _event: ShardResumed) {
        self.0.shard(&ctx).resumed += 1;
    }
}

/// One injected session invalidation.
#[derive(Clone, Debug)]
struct Invalidation {
    shard: u32,
    what: String,
    start: Instant,
    /// Whether the bot saw it (a disconnect that will not resume, within 3 s).
    applied: bool,
    /// When the bot saw the replacement session's READY.
    replaced: Option<Instant>,
}

/// What the fault task did.
#[derive(Debug, Default)]
struct Faults {
    counts: BTreeMap<String, u64>,
    invalidations: Vec<Invalidation>,
    skipped_busy: u64,
}

/// One dispatched counter.
#[derive(Clone, Copy, Debug)]
struct Sent {
    at: Instant,
    accepted: bool,
}

/// One shard's findings.
#[derive(Clone, Debug, Default)]
pub struct ShardReport {
    pub sent: u64,
    pub refused_no_session: u64,
    pub delivered: u64,
    pub repeated: Vec<u64>,
    pub out_of_order: Vec<u64>,
    pub lost_to_invalidation: u64,
    pub lost_resumable: Vec<u64>,
    pub readies: u64,
    pub invalidations_applied: u64,
    pub fresh_disconnects: u64,
    pub resumed: u64,
}

/// The soak's findings.
#[derive(Clone, Debug, Default)]
pub struct SoakReport {
    pub seed: u64,
    pub target_events: u64,
    pub dispatched: u64,
    pub timed_out: bool,
    pub drained: bool,
    pub elapsed: Duration,
    /// Including the drain (REST answers, final markers).
    pub total_elapsed: Duration,
    pub shards: Vec<ShardReport>,
    pub faults: BTreeMap<String, u64>,
    pub invalidations_injected: u64,
    pub invalidations_applied: u64,
    pub invalidations_not_applied: u64,
    pub faults_skipped_busy: u64,
    /// READYs the bot saw beyond one per shard and one per applied invalidation.
    pub unexplained_identifies: i64,
    pub server_identifies: u64,
    pub server_resumes: u64,
    pub rest_sent: u64,
    pub rest_ok: u64,
    pub rest_errors: BTreeMap<String, u64>,
    pub rest_lost: u64,
    pub rest_max_latency: Duration,
    /// The most times one message was POSTed (its retries after 429s included).
    pub rest_max_attempts: u64,
    pub rest: RestStats,
    pub rest_429_injected_max: u64,
    pub invalid_per_10_min: f64,
    pub vm_hwm_kib: Option<u64>,
    pub panics: u64,
    pub handler_panics: u64,
    pub rest_task_panics: u64,
    pub client_ended: Option<String>,
}

impl SoakReport {
    pub fn delivered(&self) -> u64 {
        self.shards.iter().map(|s| s.delivered).sum()
    }
    pub fn lost_resumable(&self) -> usize {
        self.shards.iter().map(|s| s.lost_resumable.len()).sum()
    }
    pub fn repeated(&self) -> usize {
        self.shards.iter().map(|s| s.repeated.len()).sum()
    }
    pub fn out_of_order(&self) -> usize {
        self.shards.iter().map(|s| s.out_of_order.len()).sum()
    }
    pub fn lost_to_invalidation(&self) -> u64 {
        self.shards.iter().map(|s| s.lost_to_invalidation).sum()
    }
    pub fn refused(&self) -> u64 {
        self.shards.iter().map(|s| s.refused_no_session).sum()
    }
    pub fn any_panic(&self) -> bool {
        self.panics + self.handler_panics + self.rest_task_panics > 0
    }
}

fn first(list: &[u64]) -> String {
    if list.len() <= 20 {
        format!("{list:?}")
    } else {
        format!("{:?} and {} more", &list[..20], list.len() - 20)
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(f, "== chaos soak, seed {} ==", self.seed)?;
        writeln!(
            f,
            "events: {} dispatched of {} in {secs:.1} s ({:.0}/s){}{}",
            self.dispatched,
            self.target_events,
            self.dispatched as f64 / secs.max(0.001),
            if self.timed_out {
                ", STOPPED AT THE TIME BOUND"
            } else {
                ""
            },
            if self.drained { "" } else { ", NOT DRAINED" },
        )?;
        writeln!(
            f,
            "  delivered exactly once and in order: {} | refused (no session) {} | lost to session invalidation (expected) {} | lost during resumable reconnects {} | repeated {} | out of order {}",
            self.delivered(),
            self.refused(),
            self.lost_to_invalidation(),
            self.lost_resumable(),
            self.repeated(),
            self.out_of_order()
        )?;
        for (n, s) in self.shards.iter().enumerate() {
            writeln!(
                f,
                "  shard {n}: sent {} refused {} delivered {} lost-invalidation {} READY {} (invalidations {}, fresh disconnects {}) resumed {} lost-resumable {} repeated {} out-of-order {}",
                s.sent,
                s.refused_no_session,
                s.delivered,
                s.lost_to_invalidation,
                s.readies,
                s.invalidations_applied,
                s.fresh_disconnects,
                s.resumed,
                first(&s.lost_resumable),
                first(&s.repeated),
                first(&s.out_of_order),
            )?;
        }
        writeln!(
            f,
            "  whole run with the drain: {:.1} s",
            self.total_elapsed.as_secs_f64()
        )?;
        writeln!(f, "faults: {:?}", self.faults)?;
        writeln!(
            f,
            "sessions: invalidations injected {} (applied {}, no live connection {}), faults skipped on a shard being re-identified {}, unexplained fresh identifies {}",
            self.invalidations_injected,
            self.invalidations_applied,
            self.invalidations_not_applied,
            self.faults_skipped_busy,
            self.unexplained_identifies
        )?;
        writeln!(
            f,
            "  server saw {} RESUMEs vs {} IDENTIFYs ({} shards' first)",
            self.server_resumes,
            self.server_identifies,
            self.shards.len()
        )?;
        writeln!(
            f,
            "REST: sent {} ok {} errors {:?} lost {} (max latency {:?}, one message POSTed at most {} times)",
            self.rest_sent,
            self.rest_ok,
            self.rest_errors,
            self.rest_lost,
            self.rest_max_latency,
            self.rest_max_attempts
        )?;
        writeln!(
            f,
            "  server: {} requests, 429 user {} global {} shared {}, 5xx {}, invalid {} (at most {} of them injected 429s) = {:.0} per 10 min over the whole run (Discord bans at 10,000), max {}/s",
            self.rest.requests,
            self.rest.rate_limited_user,
            self.rest.rate_limited_global,
            self.rest.rate_limited_shared,
            self.rest.server_errors,
            self.rest.invalid,
            self.rest_429_injected_max,
            self.invalid_per_10_min,
            self.rest.max_per_second
        )?;
        writeln!(
            f,
            "memory: VmHWM {} (whole process: bot, local Discord, driver)",
            self.vm_hwm_kib.map_or("unknown".to_owned(), |k| format!(
                "{:.1} MiB",
                k as f64 / 1024.0
            ))
        )?;
        write!(
            f,
            "panics: {} in the process (handlers {}, REST tasks {}); client {}",
            self.panics,
            self.handler_panics,
            self.rest_task_panics,
            self.client_ended.as_deref().unwrap_or("still running")
        )
    }
}

/// The TYPING_START with counter `n` for a shard: guild and channel of that shard.
fn payload(target: (u64, u64), n: u64) -> serde_json::Value {
    json!({
        "channel_id": target.1.to_string(),
        "guild_id": target.0.to_string(),
        "user_id": "1234567890123456789",
        "timestamp": n,
    })
}

struct Run {
    discord: LocalDiscord,
    observed: Arc<Observed>,
    faults: Mutex<Faults>,
    busy: Vec<AtomicBool>,
    dispatched: AtomicU64,
    stop_faults: AtomicBool,
    rest_429_injected: AtomicU64,
}

/// Runs the soak and reports.
pub async fn run(config: SoakConfig) -> SoakReport {
    count_panics();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let shards = config.shards;
    let discord = LocalDiscord::start(LocalConfig {
        shards,
        max_concurrency: shards,
        guilds: shards * 2,
        heartbeat_interval: config.heartbeat,
        session_start_remaining: 1_000_000,
        ..LocalConfig::default()
    })
    .await
    .expect("the local Discord starts");
    discord.set_bucket_plan(
        BucketPlan::default()
            .route(
                "POST /channels/{channel_id}/messages",
                20,
                Duration::from_secs(1),
            )
            .global(200, Duration::from_secs(1)),
    );
    // Each shard's TYPING_STARTs name a guild (and its channel) of that shard.
    let targets: Vec<(u64, u64)> = (0..shards)
        .map(|s| {
            let guilds = discord.guild_ids();
            let guild = guilds
                .iter()
                .copied()
                .find(|g| (g >> 22) % u64::from(shards) == u64::from(s))
                .unwrap_or(guilds[0]);
            (guild, discord.channel_ids(guild)[0])
        })
        .collect();

    let observed = Arc::new(Observed::new(shards, config.rest_every));
    let client = Client::builder(discord.token())
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
        .shards(Shards::Fixed(shards))
        .consumer_with(
            SoakBot(Arc::clone(&observed)),
            ConsumerOptions::tasking(Tasking::Inline),
        )
        .build();
    let consumers = client.consumers().clone();
    let mut bot = tokio::spawn(client.run());
    for s in 0..shards {
        assert!(
            discord.wait_for_ready(s, 1, Duration::from_secs(30)).await,
            "shard {s} did not get READY"
        );
    }

    let run = Arc::new(Run {
        discord,
        observed: Arc::clone(&observed),
        faults: Mutex::default(),
        busy: (0..shards).map(|_| AtomicBool::new(false)).collect(),
        dispatched: AtomicU64::new(0),
        stop_faults: AtomicBool::new(false),
        rest_429_injected: AtomicU64::new(0),
    });
    let start = Instant::now();
    let faulter = tokio::spawn(fault_loop(
        Arc::clone(&run),
        config.clone(),
        Rng::with_seed(config.seed ^ 0xfa17),
    ));

    // Dispatch.
    let mut rng = Rng::with_seed(config.seed);
    let mut sent: Vec<Vec<Sent>> = vec![Vec::new(); shards as usize];
    let deadline = start + config.max_duration;
    let mut timed_out = false;
    let mut i = 0;
    while i < config.events {
        if Instant::now() >= deadline {
            timed_out = true;
            break;
        }
        if let Some(rate) = config.rate {
            let due = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
            if due > Instant::now() + Duration::from_millis(2) {
                tokio::time::sleep_until(due).await;
            }
        }
        let first_pick = rng.u64() % u64::from(shards);
        let now = Instant::now();
        let open = (0..u64::from(shards))
            .map(|k| ((first_pick + k) % u64::from(shards)) as usize)
            .find(|&s| {
                let high = observed.high[s].load(Ordering::SeqCst);
                // A full window of refused or lost events never drains: let one through per 50 ms.
                (sent[s].len() as u64).saturating_sub(high) < config.window
                    || sent[s]
                        .last()
                        .is_some_and(|l| now - l.at > Duration::from_millis(50))
            });
        let Some(s) = open else {
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        let counter = sent[s].len() as u64;
        let at = Instant::now();
        let seq = run
            .discord
            .dispatch(s as u32, "TYPING_START", payload(targets[s], counter))
            .await;
        sent[s].push(Sent {
            at,
            accepted: seq.is_some(),
        });
        i += 1;
        run.dispatched.store(i, Ordering::SeqCst);
        if config.progress_every > 0 && i % config.progress_every == 0 {
            eprintln!(
                "[soak] {i} events in {:.1} s, faults {:?}",
                start.elapsed().as_secs_f64(),
                lock(&run.faults).counts.values().sum::<u64>()
            );
        }
        // Let the bot's tasks run now and then on a busy runtime.
        if i % 64 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let dispatched = i;
    let elapsed = start.elapsed();

    // Drain: no more faults; wait for the shards being re-identified.
    run.stop_faults.store(true, Ordering::SeqCst);
    let _ = tokio::time::timeout(Duration::from_secs(60), faulter).await;
    let quiet = Instant::now() + Duration::from_secs(60);
    while run.busy.iter().any(|b| b.load(Ordering::SeqCst)) && Instant::now() < quiet {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A marker per shard, delivered last: everything sent before it must have come (or be lost).
    let mut drained = true;
    for s in 0..shards as usize {
        let until = Instant::now() + Duration::from_secs(60);
        let marker = loop {
            let counter = sent[s].len() as u64;
            let at = Instant::now();
            let seq = run
                .discord
                .dispatch(s as u32, "TYPING_START", payload(targets[s], counter))
                .await;
            sent[s].push(Sent {
                at,
                accepted: seq.is_some(),
            });
            if seq.is_some() {
                break Some(counter);
            }
            if Instant::now() >= until {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let arrived = match marker {
            Some(marker) => {
                let wait = Instant::now() + Duration::from_secs(60);
                loop {
                    if observed.high[s].load(Ordering::SeqCst) > marker {
                        break true;
                    }
                    if Instant::now() >= wait {
                        break false;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            None => false,
        };
        drained &= arrived;
    }
    // Let a late duplicate arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // REST: every request ends Ok or with a typed error (the client's timeout is 10 s, retries
    // included at most a minute).
    let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&observed.rest_tasks));
    let rest_deadline = Instant::now() + Duration::from_secs(90);
    let mut rest_task_panics = 0;
    for mut task in tasks {
        match tokio::time::timeout_at(rest_deadline, &mut task).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                if error.is_panic() {
                    rest_task_panics += 1;
                }
            }
            Err(_) => task.abort(),
        }
    }

    let client_ended = match tokio::time::timeout(Duration::from_millis(1), &mut bot).await {
        Ok(Ok(result)) => Some(format!("returned {result:?}")),
        Ok(Err(error)) => Some(format!("task failed: {error}")),
        Err(_) => None,
    };
    bot.abort();

    let faults = std::mem::take(&mut *lock(&run.faults));
    analyse(
        &config,
        &run,
        &sent,
        faults,
        Analysis {
            dispatched,
            timed_out,
            drained,
            elapsed,
            total_elapsed: start.elapsed(),
            rest_task_panics,
            handler_panics: consumers.stats().panics,
            panics: PANICS.load(Ordering::SeqCst) - panics_before,
            client_ended,
        },
    )
}

struct Analysis {
    dispatched: u64,
    timed_out: bool,
    drained: bool,
    elapsed: Duration,
    total_elapsed: Duration,
    rest_task_panics: u64,
    handler_panics: u64,
    panics: u64,
    client_ended: Option<String>,
}

fn analyse(
    config: &SoakConfig,
    run: &Run,
    sent: &[Vec<Sent>],
    faults: Faults,
    a: Analysis,
) -> SoakReport {
    let mut report = SoakReport {
        seed: config.seed,
        target_events: config.events,
        dispatched: a.dispatched,
        timed_out: a.timed_out,
        drained: a.drained,
        elapsed: a.elapsed,
        faults: faults.counts.clone(),
        faults_skipped_busy: faults.skipped_busy,
        rest_task_panics: a.rest_task_panics,
        handler_panics: a.handler_panics,
        panics: a.panics,
        client_ended: a.client_ended,
        ..SoakReport::default()
    };
    let mut unexplained = 0_i64;
    for (s, sent) in sent.iter().enumerate() {
        let seen = lock(&run.observed.shards[s]);
        let windows: Vec<&Invalidation> = faults
            .invalidations
            .iter()
            .filter(|w| w.shard as usize == s && w.applied)
            .collect();
        let mut times = vec![0_u32; sent.len()];
        let mut shard = ShardReport {
            sent: sent.len() as u64,
            refused_no_session: sent.iter().filter(|x| !x.accepted).count() as u64,
            readies: seen.readies.len() as u64,
            invalidations_applied: windows.len() as u64,
            fresh_disconnects: seen.fresh_disconnects.len() as u64,
            resumed: seen.resumed,
            ..ShardReport::default()
        };
        let mut last: Option<u64> = None;
        for &c in &seen.delivered {
            let Some(t) = times.get_mut(c as usize) else {
                shard.out_of_order.push(c); // never sent: cannot happen
                continue;
            };
            *t += 1;
            if *t == 2 {
                shard.repeated.push(c);
            } else if *t == 1 && last.is_some_and(|l| c < l) {
                shard.out_of_order.push(c);
            }
            last = Some(last.map_or(c, |l| l.max(c)));
        }
        shard.delivered = (times.iter().filter(|&&t| t == 1).count() as u64)
            .saturating_sub(shard.out_of_order.len() as u64);
        // The dispatch time of the next delivered counter after each counter.
        let mut next_delivered_at: Vec<Option<Instant>> = vec![None; sent.len()];
        let mut next = None;
        for c in (0..sent.len()).rev() {
            next_delivered_at[c] = next;
            if times[c] > 0 {
                next = Some(sent[c].at);
            }
        }
        for c in 0..sent.len() {
            if !sent[c].accepted || times[c] > 0 {
                continue;
            }
            let legit = windows.iter().any(|w| {
                w.replaced.is_none_or(|r| sent[c].at < r)
                    && next_delivered_at[c].is_none_or(|n| n > w.start)
            });
            if legit {
                shard.lost_to_invalidation += 1;
            } else {
                shard.lost_resumable.push(c as u64);
            }
        }
        unexplained += seen.readies.len() as i64 - 1 - windows.len() as i64;
        report.shards.push(shard);
    }
    report.unexplained_identifies = unexplained;
    report.invalidations_injected = faults.invalidations.len() as u64;
    report.invalidations_applied = faults.invalidations.iter().filter(|w| w.applied).count() as u64;
    report.invalidations_not_applied = report.invalidations_injected - report.invalidations_applied;
    report.server_identifies = run.discord.identifies().len() as u64;
    report.server_resumes = run.discord.resumes().len() as u64;

    let o = &run.observed;
    report.rest_sent = o.rest_sent.load(Ordering::SeqCst);
    report.rest_ok = o.rest_ok.load(Ordering::SeqCst);
    report.rest_errors = lock(&o.rest_errors).clone();
    let ended = report.rest_ok + report.rest_errors.values().sum::<u64>();
    report.rest_lost = report.rest_sent.saturating_sub(ended);
    report.rest_max_latency = Duration::from_millis(o.rest_max_latency_ms.load(Ordering::SeqCst));
    report.rest = run.discord.rest_stats();
    let mut attempts: BTreeMap<String, u64> = BTreeMap::new();
    for request in run.discord.requests() {
        if request.method == "POST"
            && let Some(content) = request.body.as_ref().and_then(|b| b["content"].as_str())
        {
            *attempts.entry(content.to_owned()).or_insert(0) += 1;
        }
    }
    report.rest_max_attempts = attempts.values().copied().max().unwrap_or(0);
    report.rest_429_injected_max = run.rest_429_injected.load(Ordering::SeqCst);
    report.total_elapsed = a.total_elapsed;
    let minutes = a.total_elapsed.as_secs_f64().max(1.0) / 60.0;
    report.invalid_per_10_min = report.rest.invalid as f64 * 10.0 / minutes;
    report.vm_hwm_kib = vm_hwm_kib();
    report
}

/// Injects a fault at seeded moments (`fault_every_ms` apart) until told to stop.
async fn fault_loop(run: Arc<Run>, config: SoakConfig, mut rng: Rng) {
    let (lo, hi) = config.fault_every_ms;
    let mut tasks = tokio::task::JoinSet::new();
    let mut next = Instant::now();
    loop {
        next += Duration::from_millis(rng.range(lo, hi));
        tokio::time::sleep_until(next).await;
        if run.stop_faults.load(Ordering::SeqCst) {
            break;
        }
        let shard = (rng.u64() % u64::from(config.shards)) as u32;
        let roll = rng.range(0, 99);
        if roll < 25 {
            rest_fault(&run, &mut rng);
            continue;
        }
        let (fault, name, invalidates) = gateway_fault(&mut rng);
        if run.busy[shard as usize].load(Ordering::SeqCst) {
            lock(&run.faults).skipped_busy += 1;
            continue;
        }
        *lock(&run.faults).counts.entry(name.clone()).or_insert(0) += 1;
        if invalidates {
            run.busy[shard as usize].store(true, Ordering::SeqCst);
        }
        let run = Arc::clone(&run);
        tasks.spawn(async move {
            if invalidates {
                invalidate(&run, shard, fault, name).await;
            } else {
                run.discord.inject(shard, fault).await;
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// Injects a session-ending fault and follows it until the bot has a new session.
async fn invalidate(run: &Run, shard: u32, fault: Fault, what: String) {
    let seen = &run.observed.shards[shard as usize];
    let (disconnects, readies) = {
        let seen = lock(seen);
        (seen.fresh_disconnects.len(), seen.readies.len())
    };
    let start = Instant::now();
    run.discord.inject(shard, fault).await;
    let mut applied = false;
    let mut replaced = None;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if lock(seen).fresh_disconnects.len() > disconnects {
            applied = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if applied {
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            if let Some(&at) = lock(seen).readies.get(readies) {
                replaced = Some(at);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    lock(&run.faults).invalidations.push(Invalidation {
        shard,
        what,
        start,
        applied,
        replaced,
    });
    run.busy[shard as usize].store(false, Ordering::SeqCst);
}

fn gateway_fault(rng: &mut Rng) -> (Fault, String, bool) {
    match rng.range(0, 16) {
        0..=2 => (Fault::DropSocket, "drop socket".into(), false),
        3 | 4 => (Fault::StopHeartbeatAck, "stop heartbeat ACK".into(), false),
        5 | 6 => (Fault::Reconnect, "op 7".into(), false),
        7 | 8 => (
            Fault::InvalidSession { resumable: true },
            "op 9 true".into(),
            false,
        ),
        9 => (
            Fault::InvalidSession { resumable: false },
            "op 9 false".into(),
            true,
        ),
        10 | 11 => {
            let code = rng.pick(&RESUMABLE_CLOSES);
            (Fault::Close(code), format!("close {code}"), false)
        }
        12 => {
            let code = rng.pick(&SESSION_CLOSES);
            (Fault::Close(code), format!("close {code}"), true)
        }
        13 | 14 => {
            let ms = rng.range(1, 5);
            (
                Fault::SlowFrames(Duration::from_millis(ms)),
                "slow frames".into(),
                false,
            )
        }
        _ => (Fault::ServerHeartbeat, "op 1".into(), false),
    }
}

fn rest_fault(run: &Run, rng: &mut Rng) {
    let times = rng.range(1, 3) as u32;
    let (fault, name) = match rng.range(0, 5) {
        0..=2 => {
            let scope = rng.pick(&[
                RateLimitScope::User,
                RateLimitScope::Global,
                RateLimitScope::Shared,
            ]);
            if scope != RateLimitScope::Shared {
                run.rest_429_injected
                    .fetch_add(u64::from(times), Ordering::SeqCst);
            }
            (
                RestFault::RateLimited {
                    scope,
                    retry_after: Duration::from_millis(rng.range(50, 500)),
                },
                format!("REST 429 {scope:?}"),
            )
        }
        3 | 4 => {
            let status = rng.pick(&[500, 502, 503, 504]);
            (RestFault::ServerError(status), format!("REST {status}"))
        }
        _ => (
            RestFault::Slow(Duration::from_millis(rng.range(100, 1_500))),
            "REST slow".into(),
        ),
    };
    *lock(&run.faults).counts.entry(name).or_insert(0) += u64::from(times);
    run.discord.inject_rest_fault(fault, times);
}
