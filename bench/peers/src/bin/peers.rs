//! nostrum-core against twilight (gateway 0.18 + cache-inmemory 0.18) and serenity 0.12, over one
//! loopback Discord that plays the same deterministic corpus to each.
//!
//! `cd bench && cargo run --release -p peers --bin peers [-- GUILDS EVENTS RUNS]` (200 100000 5)
//!
//! The parent builds the corpus, checks every frame against twilight-model (aborts on any failure),
//! serves the gateway and REST on 127.0.0.1, and runs each library in a child process of this same
//! binary (`peers child LIB SCENARIO MODE ...`), interleaved, RUNS times; medians. The children
//! count heap with the counting allocator below and read VmHWM at the end.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use peers::{Mode, corpus, encode};
use serde_json::{Value, json};

struct Counting;
static HEAP: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = HEAP.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        HEAP.fetch_sub(layout.size(), Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                let now =
                    HEAP.fetch_add(new_size - layout.size(), Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Relaxed);
            } else {
                HEAP.fetch_sub(layout.size() - new_size, Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const TOKEN: &str = "MTAwMDAwMDAwMDAwMDAwMDAwMQ.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789AB";

// ---- the child side: counters shared by every library's handlers ----

static GUILDS: AtomicU64 = AtomicU64::new(0);
static STEADY: AtomicU64 = AtomicU64::new(0);
static MSGS: AtomicU64 = AtomicU64::new(0);
static TARGET_GUILDS: AtomicU64 = AtomicU64::new(u64::MAX);
static TARGET_STEADY: AtomicU64 = AtomicU64::new(u64::MAX);
static TARGET_MSGS: AtomicU64 = AtomicU64::new(u64::MAX);
static T_GUILDS: OnceLock<(Instant, usize, usize)> = OnceLock::new();
static T_STEADY: OnceLock<Instant> = OnceLock::new();
static T_MSG_FIRST: OnceLock<Instant> = OnceLock::new();
static T_MSG_LAST: OnceLock<Instant> = OnceLock::new();
/// serenity's raw handler runs before its cache update: its start-up end is read from its cache.
static GUILDS_FROM_CACHE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn on_guild() {
    let n = GUILDS.fetch_add(1, Relaxed) + 1;
    if n == TARGET_GUILDS.load(Relaxed) && !GUILDS_FROM_CACHE.load(Relaxed) {
        let _ = T_GUILDS.set((Instant::now(), PEAK.load(Relaxed), HEAP.load(Relaxed)));
    }
}
fn on_steady() {
    let n = STEADY.fetch_add(1, Relaxed) + 1;
    if n == TARGET_STEADY.load(Relaxed) {
        let _ = T_STEADY.set(Instant::now());
    }
}
fn on_message() {
    let n = MSGS.fetch_add(1, Relaxed) + 1;
    if n == 1 {
        let _ = T_MSG_FIRST.set(Instant::now());
    }
    if n == TARGET_MSGS.load(Relaxed) {
        let _ = T_MSG_LAST.set(Instant::now());
    }
}

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

mod nostrum_bot {
    use nostrum_core::prelude::*;

    pub struct All;
    #[consumer]
    impl All {
        async fn on_event(&self, _ctx: Context, event: Event) {
            match event.name() {
                "READY" => {}
                "GUILD_CREATE" => super::on_guild(),
                name if peers::MIX.iter().any(|(k, _)| *k == name) => super::on_steady(),
                other => eprintln!("nostrum: not counted: {other}"),
            }
        }
    }

    pub struct Msg;
    #[consumer]
    impl Msg {
        async fn on_message_create(&self, _ctx: Context, _msg: Message) {
            super::on_message();
        }
    }
}

mod serenity_bot {
    use serenity::all::{Context, EventHandler, Message, RawEventHandler};
    use serenity::async_trait;
    use serenity::model::event::Event;

    pub struct Raw;
    #[async_trait]
    impl RawEventHandler for Raw {
        async fn raw_event(&self, _ctx: Context, event: Event) {
            match event {
                Event::Ready(_) => {}
                Event::GuildCreate(_) => super::on_guild(),
                _ => super::on_steady(),
            }
        }
    }

    pub struct Msg;
    #[async_trait]
    impl EventHandler for Msg {
        async fn message(&self, _ctx: Context, _msg: Message) {
            super::on_message();
        }
    }
}

async fn child(args: &[String]) {
    let (lib, scenario, mode) = (
        args[0].as_str(),
        args[1].as_str(),
        Mode::from_path(&args[2]),
    );
    let gw: u16 = args[3].parse().unwrap();
    let http: u16 = args[4].parse().unwrap();
    let guilds: u64 = args[5].parse().unwrap();
    let steady: u64 = args[6].parse().unwrap();
    let msgs: u64 = args[7].parse().unwrap();
    let full = scenario == "full";
    TARGET_GUILDS.store(guilds, Relaxed);
    TARGET_STEADY.store(steady, Relaxed);
    TARGET_MSGS.store(msgs, Relaxed);
    let gateway = format!("ws://127.0.0.1:{gw}/{}", mode.path());
    let api = format!("http://127.0.0.1:{http}");
    let t0 = Instant::now();
    let mut serenity_cache = None;
    match lib {
        "nostrum" | "nostrum-inline" => {
            use nostrum_core::cache::{Cache, CacheConfig, ResourceType};
            use nostrum_core::dispatch::{ConsumerOptions, Tasking};
            use nostrum_core::gateway::Compression;
            use nostrum_core::{Client, Intents, Shards};
            let compression = match mode {
                Mode::None => Compression::None,
                Mode::Zlib => Compression::ZlibStream,
                Mode::Zstd => Compression::ZstdStream,
            };
            let builder = Client::builder(TOKEN)
                .gateway_url(gateway)
                .api_base(api)
                .compression(compression)
                .shards(Shards::Fixed(1))
                .intents(Intents::all());
            // The default is Tasking::PerEvent (a task per event, as serenity); "nostrum-inline"
            // runs the handler in the dispatcher, as the twilight loop below does.
            let options = ConsumerOptions::tasking(if lib == "nostrum" {
                Tasking::PerEvent
            } else {
                Tasking::Inline
            });
            let client = if full {
                builder
                    .cache(CacheConfig {
                        resources: ResourceType::ALL,
                        message_cache_size: 100,
                        ..CacheConfig::default()
                    })
                    .consumer_with(nostrum_bot::All, options)
            } else {
                builder
                    .cache_backend(Cache::none())
                    .consumer_with(nostrum_bot::Msg, options)
            };
            tokio::spawn(async move {
                if let Err(err) = client.run().await {
                    eprintln!("nostrum: {err}");
                }
            });
        }
        "twilight" => {
            use twilight_cache_inmemory::{DefaultInMemoryCache, ResourceType};
            use twilight_gateway::{
                ConfigBuilder, Event, EventTypeFlags, Intents, Shard, ShardId, StreamExt as _,
            };
            let config = ConfigBuilder::new(TOKEN.to_owned(), Intents::all())
                .proxy_url(gateway)
                .build();
            let mut shard = Shard::with_config(ShardId::ONE, config);
            tokio::spawn(async move {
                if full {
                    let cache = DefaultInMemoryCache::builder()
                        .resource_types(ResourceType::all())
                        .message_cache_size(100)
                        .build();
                    while let Some(item) = shard.next_event(EventTypeFlags::all()).await {
                        let Ok(event) = item else { continue };
                        cache.update(&event);
                        match event {
                            Event::Ready(_) => {}
                            Event::GuildCreate(_) => on_guild(),
                            Event::GatewayHello(_)
                            | Event::GatewayHeartbeat
                            | Event::GatewayHeartbeatAck
                            | Event::GatewayInvalidateSession(_)
                            | Event::GatewayReconnect
                            | Event::GatewayClose(_) => {}
                            _ => on_steady(),
                        }
                    }
                } else {
                    while let Some(item) = shard.next_event(EventTypeFlags::MESSAGE_CREATE).await {
                        if let Ok(Event::MessageCreate(_)) = item {
                            on_message();
                        }
                    }
                }
            });
        }
        "serenity" => {
            use serenity::all::{ClientBuilder, GatewayIntents, HttpBuilder};
            let http = HttpBuilder::new(TOKEN)
                .proxy(api)
                .ratelimiter_disabled(true)
                .build();
            let mut settings = serenity::cache::Settings::default();
            let builder = ClientBuilder::new_with_http(http, GatewayIntents::all());
            let builder = if full {
                GUILDS_FROM_CACHE.store(true, Relaxed);
                settings.max_messages = 100;
                builder
                    .cache_settings(settings)
                    .raw_event_handler(serenity_bot::Raw)
            } else {
                settings.max_messages = 0;
                settings.cache_guilds = false;
                settings.cache_channels = false;
                settings.cache_users = false;
                builder
                    .cache_settings(settings)
                    .event_handler(serenity_bot::Msg)
            };
            let mut client = builder.await.expect("serenity client");
            serenity_cache = Some(client.cache.clone());
            tokio::spawn(async move {
                if let Err(err) = client.start().await {
                    eprintln!("serenity: {err}");
                }
            });
        }
        other => panic!("unknown library {other}"),
    }
    let deadline = t0 + Duration::from_secs(240);
    let mut timed_out = false;
    loop {
        if let Some(cache) = &serenity_cache {
            if full && T_GUILDS.get().is_none() && cache.guild_count() as u64 >= guilds {
                let _ = T_GUILDS.set((Instant::now(), PEAK.load(Relaxed), HEAP.load(Relaxed)));
            }
        }
        let done = if full {
            T_STEADY.get().is_some() && T_GUILDS.get().is_some()
        } else {
            T_MSG_LAST.get().is_some()
        };
        if done {
            break;
        }
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1e3;
    let mut out = json!({
        "lib": lib, "scenario": scenario, "mode": mode.name(), "timed_out": timed_out,
        "guilds_seen": GUILDS.load(Relaxed), "steady_seen": STEADY.load(Relaxed), "msgs_seen": MSGS.load(Relaxed),
        "vmhwm_mb": vm_hwm_kb() as f64 / 1024.0,
    });
    if let Some(&(tg, peak, heap)) = T_GUILDS.get() {
        out["startup_ms"] = json!(ms(t0, tg));
        out["startup_peak_heap_mb"] = json!(peak as f64 / 1048576.0);
        out["startup_final_heap_mb"] = json!(heap as f64 / 1048576.0);
        if let Some(&ts) = T_STEADY.get() {
            out["events_per_s"] = json!(steady as f64 / (ms(tg, ts) / 1e3));
        }
    }
    if let (Some(&a), Some(&b)) = (T_MSG_FIRST.get(), T_MSG_LAST.get()) {
        out["events_per_s"] = json!((steady - 1) as f64 / (ms(a, b) / 1e3));
    }
    println!("RESULT {out}");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    Some(nostrum_bench::median(v))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("child") {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(child(&args[1..]));
        return;
    }
    let guilds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let events: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let only: Option<String> = std::env::var("PEERS_ONLY").ok();
    // For profiling one scenario: PEERS_SCENARIO=full or msg; one mode: PEERS_MODES=none, zlib
    // or zstd (the URL paths).
    let scenarios: Option<String> = std::env::var("PEERS_SCENARIO").ok();
    let machine = nostrum_bench::machine();
    println!("{machine}");

    let t = Instant::now();
    let corpus = corpus(42, guilds, events);
    let mut kinds: Vec<(&str, usize)> = Vec::new();
    for k in &corpus.steady_kinds {
        match kinds.iter_mut().find(|(n, _)| n == k) {
            Some((_, c)) => *c += 1,
            None => kinds.push((k, 1)),
        }
    }
    kinds.sort_by(|a, b| b.1.cmp(&a.1));
    println!(
        "corpus (seed 42): {guilds} guilds, {} memberships, {:.1} MB of GUILD_CREATE (largest {:.1} MB); {events} steady events, {:.1} MB, {:.0} B/event; built in {:.1} s",
        corpus.members,
        corpus.startup_bytes() as f64 / 1e6,
        corpus.startup.iter().map(String::len).max().unwrap_or(0) as f64 / 1e6,
        corpus.steady_bytes() as f64 / 1e6,
        corpus.steady_bytes() as f64 / events as f64,
        t.elapsed().as_secs_f64()
    );
    println!(
        "steady mix: {}",
        kinds
            .iter()
            .map(|(k, c)| format!("{k} {:.1}%", *c as f64 * 100.0 / events as f64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut all_frames: Vec<String> = corpus.startup.clone();
    all_frames.extend(corpus.steady.iter().cloned());
    let failures = peers::check_twilight(&all_frames);
    drop(all_frames);
    println!(
        "twilight-model 0.18 check: {} frames, {} failures",
        corpus.startup.len() + corpus.steady.len(),
        failures.len()
    );
    if !failures.is_empty() {
        for (i, f) in failures.iter().take(10) {
            eprintln!("frame {i}: {f}");
        }
        std::process::exit(1);
    }

    // The limit: the same frames parsed into twilight-model types and nothing else.
    let mut limit_steady = Vec::new();
    let mut limit_startup = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        assert_eq!(peers::parse_twilight(&corpus.startup), corpus.startup.len());
        limit_startup.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        assert_eq!(peers::parse_twilight(&corpus.steady), corpus.steady.len());
        limit_steady.push(events as f64 / t.elapsed().as_secs_f64());
    }
    let limit_steady = median(limit_steady).unwrap();
    let limit_startup = median(limit_startup).unwrap();
    println!(
        "limit (twilight-model parse only, in memory): steady {limit_steady:.0} events/s; all GUILD_CREATEs + READY {limit_startup:.0} ms"
    );

    let t = Instant::now();
    let streams = Arc::new([
        encode(&corpus, Mode::None),
        encode(&corpus, Mode::Zlib),
        encode(&corpus, Mode::Zstd),
    ]);
    for (m, s) in [Mode::None, Mode::Zlib, Mode::Zstd]
        .iter()
        .zip(streams.iter())
    {
        println!(
            "{}: {:.1} MB on the wire",
            m.name(),
            s.wire_bytes as f64 / 1e6
        );
    }
    println!("encoded in {:.1} s", t.elapsed().as_secs_f64());
    let (msgs, steady_n, startup_bytes) =
        (corpus.messages, corpus.steady.len(), corpus.startup_bytes());
    let steady_bytes = corpus.steady_bytes();
    let members = corpus.members;
    drop(corpus);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (gw, http) = rt.block_on(async {
        let gl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hl = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (gw, http) = (
            gl.local_addr().unwrap().port(),
            hl.local_addr().unwrap().port(),
        );
        tokio::spawn(peers::serve_gateway(gl, streams));
        tokio::spawn(peers::serve_http(hl, format!("ws://127.0.0.1:{gw}")));
        (gw, http)
    });

    // Which library runs in which compression mode: twilight-gateway 0.18 picks its compression at
    // compile time (zstd-stream with the `zstd` feature, which wins over `zlib`), and reads plain
    // text frames too; serenity 0.12 has no transport compression (only per-payload zlib).
    let plan: Vec<(&str, Mode)> = vec![
        ("nostrum", Mode::None),
        ("twilight", Mode::None),
        ("serenity", Mode::None),
        ("nostrum", Mode::Zlib),
        ("nostrum", Mode::Zstd),
        ("twilight", Mode::Zstd),
        ("nostrum-inline", Mode::Zstd),
    ];
    let exe = std::env::current_exe().unwrap();
    let mut results: Vec<Value> = Vec::new();
    for run in 0..runs {
        for scenario in ["full", "msg"] {
            if let Some(scenarios) = &scenarios
                && !scenarios.split(',').any(|s| s == scenario)
            {
                continue;
            }
            for &(lib, mode) in &plan {
                if let Ok(modes) = std::env::var("PEERS_MODES")
                    && !modes.split(',').any(|m| m == mode.path())
                {
                    continue;
                }
                if let Some(only) = &only {
                    if !only.split(',').any(|o| lib.starts_with(o)) {
                        continue;
                    }
                }
                let out = std::process::Command::new(&exe)
                    .args(["child", lib, scenario, mode.path()])
                    .args([
                        gw.to_string(),
                        http.to_string(),
                        guilds.to_string(),
                        steady_n.to_string(),
                        msgs.to_string(),
                    ])
                    .output()
                    .expect("child");
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                for line in stderr.lines().take(5) {
                    eprintln!("  [{lib} {scenario} {}] {line}", mode.name());
                }
                match stdout.lines().find_map(|l| l.strip_prefix("RESULT ")) {
                    Some(r) => {
                        let v: Value = serde_json::from_str(r).unwrap();
                        eprintln!("run {run} {r}");
                        results.push(v);
                    }
                    None => eprintln!(
                        "run {run} {lib} {scenario} {}: no result ({})",
                        mode.name(),
                        out.status
                    ),
                }
            }
        }
    }

    let med = |lib: &str, scenario: &str, mode: Mode, key: &str| -> Option<f64> {
        median(
            results
                .iter()
                .filter(|r| {
                    r["lib"] == lib
                        && r["scenario"] == scenario
                        && r["mode"] == mode.name()
                        && r["timed_out"] == false
                })
                .filter_map(|r| r[key].as_f64())
                .collect(),
        )
    };
    let f = |x: Option<f64>, digits: usize| x.map_or("—".to_owned(), |x| format!("{x:.digits$}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "—".to_owned(),
    };
    let mut md = String::new();
    md += &format!("Machine: {machine}\n\n");
    md += &format!(
        "Corpus (seed 42): {guilds} guilds, {} memberships ({:.1} MB of GUILD_CREATE); {steady_n} steady events ({:.1} MB, {msgs} MESSAGE_CREATE). {runs} runs, medians.\n",
        members,
        startup_bytes as f64 / 1e6,
        steady_bytes as f64 / 1e6
    );
    md += &format!(
        "Limit (twilight-model parse only, in memory, one thread): {limit_steady:.0} events/s steady; {limit_startup:.0} ms for READY + all GUILD_CREATEs.\n\n"
    );
    md += "| scenario | metric | compression (nostrum / twilight / serenity) | nostrum | twilight | serenity | nostrum/twilight | nostrum/serenity |\n";
    md += "| --- | --- | --- | --- | --- | --- | --- | --- |\n";
    let rows: &[(&str, &str, &str, usize)] = &[
        (
            "start-up, cache all",
            "startup_ms",
            "ms to all guilds cached",
            0,
        ),
        (
            "start-up, cache all",
            "startup_peak_heap_mb",
            "peak heap MB",
            1,
        ),
        (
            "start-up, cache all",
            "startup_final_heap_mb",
            "heap MB after start-up",
            1,
        ),
        (
            "steady, cache all, every event handled",
            "events_per_s",
            "events/s",
            0,
        ),
        (
            "steady, cache all, every event handled",
            "vmhwm_mb",
            "peak RSS MB (VmHWM)",
            1,
        ),
        (
            "steady, MESSAGE_CREATE handler only, no cache",
            "events_per_s",
            "events/s",
            0,
        ),
        (
            "steady, MESSAGE_CREATE handler only, no cache",
            "vmhwm_mb",
            "peak RSS MB (VmHWM)",
            1,
        ),
    ];
    let mut chart: Vec<(String, [Option<f64>; 4])> = Vec::new();
    for &(label, key, metric, digits) in rows {
        let scenario = if label.contains("only") {
            "msg"
        } else {
            "full"
        };
        for (nlib, nm, tm, sm) in [
            ("nostrum", Mode::None, Mode::None, Mode::None),
            ("nostrum", Mode::Zstd, Mode::Zstd, Mode::None),
            ("nostrum", Mode::Zlib, Mode::Zstd, Mode::None),
            ("nostrum-inline", Mode::Zstd, Mode::Zstd, Mode::None),
        ] {
            let (n, t, s) = (
                med(nlib, scenario, nm, key),
                med("twilight", scenario, tm, key),
                med("serenity", scenario, sm, key),
            );
            let inline = if nlib == "nostrum-inline" {
                " (nostrum `Tasking::Inline`)"
            } else {
                ""
            };
            md += &format!(
                "| {label} | {metric} | {} / {} / {}{inline} | {} | {} | {} | {} | {} |\n",
                nm.name(),
                tm.name(),
                sm.name(),
                f(n, digits),
                f(t, digits),
                f(s, digits),
                ratio(n, t),
                ratio(n, s)
            );
            if nm == Mode::Zstd && nlib == "nostrum" {
                let inline = med("nostrum-inline", scenario, Mode::Zstd, key);
                chart.push((format!("{label}: {metric}"), [n, inline, t, s]));
            }
        }
    }
    md += "\nRatios are nostrum divided by the peer: above 1 is better for events/s, below 1 is better for ms and MB.\n";
    println!("\n{md}");
    if only.is_some() || scenarios.is_some() || std::env::var_os("PEERS_MODES").is_some() {
        println!(
            "PEERS_ONLY, PEERS_SCENARIO or PEERS_MODES set: results.md and the chart left as they were"
        );
        return;
    }
    std::fs::write("results.md", &md).expect("write results.md");
    std::fs::write(
        "peers/results.json",
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .expect("write results.json");
    let title = format!(
        "{guilds} guilds, {steady_n} steady events, median of {runs} runs; nostrum and twilight zstd-stream, serenity none"
    );
    std::fs::write("peers/chart.svg", svg(&title, &chart)).expect("write chart");
    println!("wrote bench/results.md, bench/peers/results.json, bench/peers/chart.svg");
}

/// One horizontal bar group per metric, each bar scaled to the group's maximum.
fn svg(title: &str, groups: &[(String, [Option<f64>; 4])]) -> String {
    let colors = ["#2b7bb9", "#8fc1e8", "#e07b39", "#6a9f3a"];
    let names = [
        "nostrum (PerEvent)",
        "nostrum (Inline)",
        "twilight",
        "serenity",
    ];
    let (w, bar, gap, left) = (1000.0, 15.0, 24.0, 360.0);
    let h = 56.0 + groups.len() as f64 * (4.0 * bar + gap);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    s += &format!(
        "<text x=\"4\" y=\"16\" font-weight=\"bold\">{}</text>\n",
        title.replace('&', "&amp;")
    );
    for (i, n) in names.iter().enumerate() {
        s += &format!(
            "<rect x=\"{}\" y=\"26\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"36\">{n}</text>\n",
            4.0 + i as f64 * 160.0,
            colors[i],
            4.0 + i as f64 * 160.0 + 16.0
        );
    }
    let mut y = 52.0;
    for (label, vals) in groups {
        let max = vals.iter().flatten().cloned().fold(0.0, f64::max).max(1e-9);
        let (head, tail) = label.split_once(": ").unwrap_or((label.as_str(), ""));
        s += &format!(
            "<text x=\"4\" y=\"{}\">{}</text>\n",
            y + 1.5 * bar,
            head.replace('&', "&amp;")
        );
        s += &format!(
            "<text x=\"4\" y=\"{}\" fill=\"#555\">{}</text>\n",
            y + 1.5 * bar + 15.0,
            tail.replace('&', "&amp;")
        );
        for (i, v) in vals.iter().enumerate() {
            let yy = y + i as f64 * bar;
            match v {
                Some(v) => {
                    let len = (w - left - 120.0) * v / max;
                    s += &format!(
                        "<rect x=\"{left}\" y=\"{yy}\" width=\"{len:.1}\" height=\"{}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{}</text>\n",
                        bar - 2.0,
                        colors[i],
                        left + len + 4.0,
                        yy + bar - 4.0,
                        if *v >= 1000.0 {
                            format!("{v:.0}")
                        } else {
                            format!("{v:.1}")
                        }
                    );
                }
                None => {
                    s += &format!(
                        "<text x=\"{left}\" y=\"{}\">{}: no result</text>\n",
                        yy + bar - 4.0,
                        names[i]
                    )
                }
            }
        }
        y += 4.0 * bar + gap;
    }
    s += "</svg>\n";
    s
}
