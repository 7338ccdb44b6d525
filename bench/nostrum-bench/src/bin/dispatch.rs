//! The cost of the generated dispatch, of a task per event, and of parsing.
//!
//! `cd bench && cargo run --release --bin dispatch [-- EVENTS_PER_RUN RUNS]`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use nostrum_bench::{
    Rng, dispatch_frame, machine, median, message_create, ns_per, table, typing_start,
};
use nostrum_core::__private::Identity;
use nostrum_core::dispatch::{ConsumerGroup, ConsumerOptions, EventKeys, Tasking};
use nostrum_core::http::Http;
use nostrum_core::prelude::*;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Events per batch: built (cloned) before the timer, then dispatched under it.
const BATCH: usize = 10_000;
/// A small burst: fits a tokio worker's local run queue (256).
const SMALL_BURST: usize = 128;

#[derive(Default)]
struct Bot {
    messages: AtomicU64,
    typings: AtomicU64,
    bytes: AtomicU64,
}

#[consumer]
impl Bot {
    async fn on_message_create(&self, ctx: Context, msg: Message) {
        self.handle_message(ctx, msg).await;
    }

    async fn on_typing_start(&self, ctx: Context, typing: TypingStart) {
        self.handle_typing(ctx, typing).await;
    }

    // The handler bodies, shared with the hand-written match (no `on_`: passed through).
    async fn handle_message(&self, _ctx: Context, msg: Message) {
        self.messages.fetch_add(1, Relaxed);
        self.bytes.fetch_add(msg.content.len() as u64, Relaxed);
    }

    async fn handle_typing(&self, _ctx: Context, typing: TypingStart) {
        self.typings.fetch_add(1, Relaxed);
        self.bytes.fetch_add(typing.channel_id.get() & 1, Relaxed);
    }

    fn handled(&self) -> u64 {
        self.messages.load(Relaxed) + self.typings.load(Relaxed)
    }
}

/// What a hand-written bot would do: match the event and call the handler.
async fn hand_written(bot: &Bot, ctx: &Context, event: Event) {
    match event {
        Event::MessageCreate(msg) => bot.handle_message(ctx.clone(), *msg).await,
        Event::TypingStart(typing) => bot.handle_typing(ctx.clone(), *typing).await,
        _ => {}
    }
}

/// The gateway envelope as the shard scans it: `d` left raw.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Envelope<'a> {
    op: u8,
    #[serde(borrow, default)]
    d: Option<&'a RawValue>,
    #[serde(default)]
    s: Option<u64>,
    #[serde(borrow, default)]
    t: Option<&'a str>,
}

/// The shard's `protocol::validated_raw` (crate-private): `&RawValue` of already validated text,
/// without walking it again.
fn validated_raw(json: &str) -> &RawValue {
    use serde::de::value::{BorrowedStrDeserializer, Error, MapDeserializer};
    let entry = (
        BorrowedStrDeserializer::<Error>::new("$serde_json::private::RawValue"),
        BorrowedStrDeserializer::<Error>::new(json),
    );
    <&RawValue>::deserialize(MapDeserializer::<_, Error>::new(std::iter::once(entry)))
        .expect("serde_json takes the raw-value map")
}

/// Everything the measurements share.
struct Setup {
    total: usize,
    runs: usize,
    /// 80% MESSAGE_CREATE, 20% TYPING_START, in a fixed order.
    mix: Vec<Event>,
    ctx: Context,
}

impl Setup {
    fn batch(&self, n: usize) -> Vec<Event> {
        self.mix.iter().cycle().take(n).cloned().collect()
    }

    /// Times `body` over `total` events in batches built outside the timer; ns/event.
    async fn timed<F, Fut>(&self, mut body: F) -> f64
    where
        F: FnMut(Vec<Event>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut elapsed = Duration::ZERO;
        let mut done = 0;
        while done < self.total {
            let batch = self.batch(BATCH.min(self.total - done));
            let n = batch.len();
            let start = Instant::now();
            body(batch).await;
            elapsed += start.elapsed();
            done += n;
        }
        ns_per(elapsed, self.total as u64)
    }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).expect("valid JSON")
}

/// ns per call of `f`, over `n` calls. Results are kept in a reused buffer and dropped outside the
/// timer, in chunks, so that neither the drop nor first-touch page faults are counted.
fn time_parse<T>(n: usize, mut f: impl FnMut() -> T) -> f64 {
    const CHUNK: usize = 512;
    let mut kept = Vec::with_capacity(CHUNK);
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let m = CHUNK.min(n - done);
        let start = Instant::now();
        for _ in 0..m {
            kept.push(f());
        }
        elapsed += start.elapsed();
        black_box(&mut kept).clear();
        done += m;
    }
    ns_per(elapsed, n as u64)
}

fn fmt(ns: f64) -> String {
    if ns >= 100.0 {
        format!("{ns:.0}")
    } else {
        format!("{ns:.1}")
    }
}

/// Sends `events` in bursts through `send`, waiting after each burst until `bot` handled them all.
async fn in_bursts<F, Fut>(bot: &Bot, events: Vec<Event>, burst: usize, mut send: F)
where
    F: FnMut(Event) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut events = events.into_iter().peekable();
    while events.peek().is_some() {
        let mut target = bot.handled();
        for event in events.by_ref().take(burst) {
            send(black_box(event)).await;
            target += 1;
        }
        while bot.handled() < target {
            tokio::task::yield_now().await;
        }
    }
}

/// Inline dispatch, the hand-written match and the no-op arms: medians in ns/event.
async fn inline_costs(setup: Arc<Setup>) -> Vec<f64> {
    let (ctx, keys) = (&setup.ctx, EventKeys::default());
    let inline_bot = Arc::new(Bot::default());
    let inline = ConsumerGroup::new();
    inline.join_arc(
        Arc::clone(&inline_bot),
        ConsumerOptions::tasking(Tasking::Inline),
    );
    let manual_bot = Bot::default();

    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); 7];
    for _ in 0..setup.runs {
        let mut sample = Vec::new();
        let start = Instant::now();
        let batch = setup.batch(BATCH);
        sample.push(ns_per(start.elapsed(), BATCH as u64));
        drop(black_box(batch));
        sample.push(
            setup
                .timed(|batch| async move {
                    for event in batch {
                        drop(black_box(event));
                    }
                })
                .await,
        );
        sample.push(
            setup
                .timed(|batch| {
                    let bot = &manual_bot;
                    async move {
                        for event in batch {
                            hand_written(bot, ctx, black_box(event)).await;
                        }
                    }
                })
                .await,
        );
        sample.push(
            setup
                .timed(|batch| {
                    let group = &inline;
                    async move {
                        for event in batch {
                            group.dispatch(ctx, black_box(event), keys).await;
                        }
                    }
                })
                .await,
        );
        // No-op arms: an event nobody handles, without a payload to drop.
        let n = setup.total as u64;
        let start = Instant::now();
        for _ in 0..n {
            inline
                .dispatch(ctx, black_box(Event::Resumed(Resumed {})), keys)
                .await;
        }
        sample.push(ns_per(start.elapsed(), n));
        let start = Instant::now();
        for _ in 0..n {
            let future = <Bot as Consumer>::__dispatch(
                &inline_bot,
                Identity,
                ctx,
                black_box(Event::Resumed(Resumed {})),
            );
            black_box(future.is_none());
        }
        sample.push(ns_per(start.elapsed(), n));
        let start = Instant::now();
        for _ in 0..n {
            hand_written(&manual_bot, ctx, black_box(Event::Resumed(Resumed {}))).await;
        }
        sample.push(ns_per(start.elapsed(), n));
        for (row, value) in samples.iter_mut().zip(sample) {
            row.push(value);
        }
    }
    let expected = (setup.runs * setup.total) as u64;
    assert_eq!(
        inline_bot.handled(),
        expected,
        "the inline consumer saw every event"
    );
    assert_eq!(
        manual_bot.handled(),
        expected,
        "the hand-written match saw every event"
    );
    samples.into_iter().map(median).collect()
}

/// A task per event: `Tasking::PerEvent` and a bare `tokio::spawn`, in big and small bursts.
async fn spawn_costs(setup: Arc<Setup>) -> Vec<f64> {
    let (ctx, keys) = (&setup.ctx, EventKeys::default());
    // PerEvent (the handler finishes in the dispatcher's poll: no task), then AlwaysSpawn.
    let groups: Vec<(Arc<Bot>, ConsumerGroup)> = [Tasking::PerEvent, Tasking::AlwaysSpawn]
        .into_iter()
        .map(|tasking| {
            let bot = Arc::new(Bot::default());
            let group = ConsumerGroup::new();
            group.join_arc(Arc::clone(&bot), ConsumerOptions::tasking(tasking));
            (bot, group)
        })
        .collect();
    let bare_bot = Arc::new(Bot::default());

    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); 6];
    for _ in 0..setup.runs {
        let mut sample = Vec::new();
        for (group_bot, group) in &groups {
            for burst in [BATCH, SMALL_BURST] {
                sample.push(
                    setup
                        .timed(|batch| {
                            let (group, bot) = (group, group_bot);
                            async move {
                                in_bursts(bot, batch, burst, |event| {
                                    group.dispatch(ctx, event, keys)
                                })
                                .await;
                            }
                        })
                        .await,
                );
            }
        }
        for burst in [BATCH, SMALL_BURST] {
            sample.push(
                setup
                    .timed(|batch| {
                        let bot = &bare_bot;
                        async move {
                            in_bursts(bot, batch, burst, |event| {
                                let (bot, ctx) = (Arc::clone(bot), ctx.clone());
                                tokio::spawn(async move { hand_written(&bot, &ctx, event).await });
                                std::future::ready(())
                            })
                            .await;
                        }
                    })
                    .await,
            );
        }
        for (row, value) in samples.iter_mut().zip(sample) {
            row.push(value);
        }
    }
    let expected = 2 * (setup.runs * setup.total) as u64;
    for (group_bot, _) in &groups {
        assert_eq!(
            group_bot.handled(),
            expected,
            "the per-event consumer saw every event"
        );
    }
    assert_eq!(
        bare_bot.handled(),
        expected,
        "the bare spawns saw every event"
    );
    samples.into_iter().map(median).collect()
}

fn parse_costs(runs: usize, n: usize) -> Vec<Vec<String>> {
    let mut rng = Rng::new(42);
    let message_d = message_create(1, &mut rng, true);
    let typing_d = typing_start(&mut rng);
    let message_json = message_d.to_string();
    let typing_json = typing_d.to_string();
    let message_frame = dispatch_frame("MESSAGE_CREATE", 1234, &message_d);
    let typing_frame = dispatch_frame("TYPING_START", 1235, &typing_d);
    let message_raw = raw(&message_json);
    let typing_raw = raw(&typing_json);
    let rows: Vec<(String, Box<dyn Fn() -> f64 + '_>)> = vec![
        (
            format!("envelope scan `Envelope {{ op, s, t, d: &RawValue }}`, MESSAGE_CREATE frame ({} B)", message_frame.len()),
            Box::new(|| time_parse(n, || serde_json::from_str::<Envelope<'_>>(black_box(&message_frame)).is_ok())),
        ),
        (
            format!("envelope scan, TYPING_START frame ({} B)", typing_frame.len()),
            Box::new(|| time_parse(n, || serde_json::from_str::<Envelope<'_>>(black_box(&typing_frame)).is_ok())),
        ),
        (
            "`serde_json::from_str::<&RawValue>` of the MESSAGE_CREATE `d` (how `Shard` re-borrowed `d` before)".to_owned(),
            Box::new(|| time_parse(n, || serde_json::from_str::<&RawValue>(black_box(&message_json)).is_ok())),
        ),
        (
            "re-borrow of the same `d` without a walk (how `Shard` re-borrows it now)".to_owned(),
            Box::new(|| time_parse(n, || validated_raw(black_box(&message_json)).get().len())),
        ),
        (
            "`EventKind::from_name(\"MESSAGE_CREATE\")`".to_owned(),
            Box::new(|| time_parse(n, || EventKind::from_name(black_box("MESSAGE_CREATE")))),
        ),
        (
            format!("`Event::from_dispatch(\"MESSAGE_CREATE\", raw)` ({} B of `d`)", message_json.len()),
            Box::new(|| time_parse(n, || Event::from_dispatch("MESSAGE_CREATE", black_box(&message_raw)))),
        ),
        (
            "`serde_json::from_str::<Message>` alone, same `d` (boxed)".to_owned(),
            Box::new(|| time_parse(n, || serde_json::from_str::<Message>(black_box(&message_json)).ok().map(Box::new))),
        ),
        (
            format!("`Event::from_dispatch(\"TYPING_START\", raw)` ({} B of `d`)", typing_json.len()),
            Box::new(|| time_parse(n, || Event::from_dispatch("TYPING_START", black_box(&typing_raw)))),
        ),
    ];
    rows.into_iter()
        .map(|(name, f)| vec![name, fmt(median((0..runs).map(|_| f()).collect()))])
        .collect()
}

fn runtime(workers: usize) -> tokio::runtime::Runtime {
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    }
    .expect("tokio runtime")
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let total = args.first().copied().unwrap_or(200_000);
    let runs = args.get(1).copied().unwrap_or(7);
    let machine = machine();

    let mut rng = Rng::new(42);
    let message_json = message_create(1, &mut rng, true).to_string();
    let typing_json = typing_start(&mut rng).to_string();
    // The payloads must take the parser's fast path (no lenient retry) and type as what they are.
    serde_json::from_str::<Message>(&message_json).expect("MESSAGE_CREATE parses strictly");
    serde_json::from_str::<TypingStart>(&typing_json).expect("TYPING_START parses strictly");
    let message = Event::from_dispatch("MESSAGE_CREATE", &raw(&message_json));
    let typing = Event::from_dispatch("TYPING_START", &raw(&typing_json));
    assert!(matches!(message, Event::MessageCreate(_)));
    assert!(matches!(typing, Event::TypingStart(_)));
    let setup = Arc::new(Setup {
        total,
        runs,
        mix: vec![
            message.clone(),
            message.clone(),
            typing,
            message.clone(),
            message,
        ],
        ctx: Context::detached(Http::builder(None).build()),
    });

    // Every measurement runs in a spawned task on a worker, as the runtime's shard task does.
    let two = runtime(2);
    let inline = two.block_on(async {
        tokio::spawn(inline_costs(Arc::clone(&setup)))
            .await
            .expect("task")
    });
    let spawn_two = two.block_on(async {
        tokio::spawn(spawn_costs(Arc::clone(&setup)))
            .await
            .expect("task")
    });
    drop(two);
    let one = runtime(1);
    let spawn_one = one.block_on(async {
        tokio::spawn(spawn_costs(Arc::clone(&setup)))
            .await
            .expect("task")
    });
    drop(one);
    let parse_n = (total / 4).max(1000);
    let parse = parse_costs(runs, parse_n);

    println!("# dispatch ({machine})");
    println!();
    println!(
        "{total} events per run (80% MESSAGE_CREATE, 20% TYPING_START, cloned from templates before the timer), \
         median of {runs} runs, in a spawned task of a 2-worker tokio runtime."
    );
    println!();
    let baseline = inline[1];
    let names = [
        "clone an event from its template (reference; outside every timer below)",
        "move + drop the event only (baseline)",
        "(b) hand-written `match` -> handler",
        "(a) `ConsumerGroup::dispatch`, `Tasking::Inline`",
        "(c) no-op: `ConsumerGroup::dispatch` of an event no consumer handles (RESUMED)",
        "(c) no-op: the generated match's default arm (`Consumer::__dispatch` -> None)",
        "(c) no-op: the hand-written `_ => {}`",
    ];
    let rows: Vec<Vec<String>> = names
        .iter()
        .zip(&inline)
        .enumerate()
        .map(|(index, (name, ns))| {
            let net = if (2..=3).contains(&index) {
                fmt(ns - baseline)
            } else {
                String::new()
            };
            vec![(*name).to_owned(), fmt(*ns), net]
        })
        .collect();
    table(&["what", "ns/event", "minus baseline"], &rows);
    println!();
    let (manual, generated) = (inline[2] - baseline, inline[3] - baseline);
    println!(
        "Generated Inline vs hand-written: {:.2}x gross, {:.2}x net of the baseline ({} vs {} ns).",
        inline[3] / inline[2],
        generated / manual,
        fmt(generated),
        fmt(manual),
    );
    println!(
        "size_of::<Event>() = {} B; the hand-written match's future = {} B.",
        std::mem::size_of::<Event>(),
        std::mem::size_of_val(&hand_written(
            &Bot::default(),
            &setup.ctx,
            Event::Resumed(Resumed {})
        )),
    );
    println!();
    println!(
        "(d) A task per event: N events dispatched, then wait until every handler ran (a counter), \
         in bursts; ns/event, and over Inline (a) / over the hand-written match (b)."
    );
    println!();
    let spawn_names = [
        format!("`Tasking::PerEvent`, bursts of {BATCH}"),
        format!("`Tasking::PerEvent`, bursts of {SMALL_BURST}"),
        format!("`Tasking::AlwaysSpawn`, bursts of {BATCH}"),
        format!("`Tasking::AlwaysSpawn`, bursts of {SMALL_BURST}"),
        format!("bare `tokio::spawn` of (b), bursts of {BATCH}"),
        format!("bare `tokio::spawn` of (b), bursts of {SMALL_BURST}"),
    ];
    let spawn_rows: Vec<Vec<String>> = spawn_names
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let reference = if index < 4 { inline[3] } else { inline[2] };
            vec![
                name.clone(),
                fmt(spawn_two[index]),
                fmt(spawn_two[index] - reference),
                fmt(spawn_one[index]),
                fmt(spawn_one[index] - reference),
            ]
        })
        .collect();
    table(
        &[
            "what",
            "2 workers ns/event",
            "2 workers, over (a)/(b)",
            "1 worker ns/event",
            "1 worker, over (a)/(b)",
        ],
        &spawn_rows,
    );
    println!();
    println!(
        "Parsing: {parse_n} calls per run, median of {runs} runs (results dropped outside the timer)."
    );
    println!();
    table(&["what", "ns each"], &parse);
    println!();
    println!(
        "(e) The handler span under a `tracing_subscriber::fmt` subscriber at INFO (writing to a sink), \
         as a bot that logs has: {parse_n} per run, median of {runs} runs."
    );
    println!();
    table(&["what", "ns per handler"], &span_costs(runs, parse_n));
}

/// What the per-handler span costs when a subscriber is installed: the `error_span!` every handler
/// got before (enabled by any subscriber), against the `debug_span!` it gets now (disabled at INFO).
fn span_costs(runs: usize, n: usize) -> Vec<Vec<String>> {
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let before = || {
            time_parse(n, || {
                let span = tracing::error_span!("handler", event = "MESSAGE_CREATE", shard = 0u32);
                span.in_scope(|| black_box(1))
            })
        };
        let now = || {
            time_parse(n, || {
                let span = tracing::debug_span!("handler", event = "MESSAGE_CREATE", shard = 0u32);
                if span.is_disabled() {
                    black_box(1)
                } else {
                    span.in_scope(|| black_box(1))
                }
            })
        };
        vec![
            vec![
                "`error_span!` + enter/exit + close (each handler before this change)".to_owned(),
                fmt(median((0..runs).map(|_| before()).collect())),
            ],
            vec![
                "`debug_span!`, disabled at INFO, skipped (each handler now)".to_owned(),
                fmt(median((0..runs).map(|_| now()).collect())),
            ],
        ]
    })
}
