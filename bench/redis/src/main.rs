//! Events per second through Redis against in-process, on the same local Discord and the same
//! stream of TYPING_START dispatches:
//!
//! - `in-process`: a `Client` with the counting consumer (a task per event, no cache);
//! - `redis, 1 worker` / `redis, 2 workers`: a `Client` that only publishes to the Redis Streams
//!   (`RedisPublisher`), and `Worker`s that read the consumer group, run the same consumer and
//!   acknowledge each event. Publisher, Redis and workers share this machine, as on one host.
//!
//! Each run feeds `EVENTS` dispatches over `SHARDS` shards and times from the first dispatch to
//! the last event handled. Runs are interleaved, repeated `RUNS` times; medians are printed.
//!
//! `cargo run --release --bin redis -- [events] [runs]` (needs `redis-server` on `PATH`).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use nostrum_core::{
    Client, EventKind, EventSet, Shards,
    cache::Cache,
    http::Http,
    local::{LocalConfig, LocalDiscord},
    model::gateway::payload::incoming::TypingStart,
    prelude::*,
};
use nostrum_redis::{PublisherConfig, RedisPublisher, Worker, WorkerConfig, testing::RedisServer};
use serde_json::json;

const SHARDS: u32 = 2;

struct Counter(Arc<AtomicU64>);

#[consumer]
impl Counter {
    async fn on_typing_start(&self, _typing: TypingStart) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    InProcess,
    Redis { workers: usize },
}

impl Mode {
    fn label(self) -> String {
        match self {
            Self::InProcess => "in-process".to_owned(),
            Self::Redis { workers } => format!("redis, {workers} worker(s)"),
        }
    }
}

async fn run(mode: Mode, events: u64, run: usize) -> f64 {
    let server = RedisServer::start().expect("redis-server on PATH");
    let redis = redis::Client::open(server.url()).unwrap();
    let discord = LocalDiscord::start(LocalConfig {
        shards: SHARDS,
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let builder = Client::builder(discord.token())
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
        .shards(Shards::Fixed(SHARDS))
        .cache_backend(Cache::none());
    let mut tasks = Vec::new();
    let builder = match mode {
        Mode::InProcess => builder.consumer(Counter(Arc::clone(&count))),
        Mode::Redis { workers } => {
            let events = EventSet::EMPTY.with(EventKind::TypingStart);
            let publisher = RedisPublisher::new(redis.clone(), PublisherConfig::new(events))
                .await
                .unwrap();
            for n in 0..workers {
                let worker = Worker::new(
                    redis.clone(),
                    WorkerConfig::new(format!("w{n}-{run}"), SHARDS),
                    Http::new(discord.token()),
                )
                .consumer(Counter(Arc::clone(&count)));
                tasks.push(tokio::spawn(async move {
                    let _ = worker.run().await;
                }));
            }
            builder.sink(publisher)
        }
    };
    let client = builder.build();
    let shards = client.shards().clone();
    tasks.push(tokio::spawn(async move {
        let _ = client.run().await;
    }));
    for shard in 0..SHARDS {
        assert!(
            discord
                .wait_for_ready(shard, 1, Duration::from_secs(60))
                .await
        );
    }
    let start = Instant::now();
    for n in 0..events {
        let shard = u32::try_from(n % u64::from(SHARDS)).unwrap();
        let payload = json!({
            "channel_id": "100", "guild_id": "200", "user_id": "300", "timestamp": n,
        });
        discord.dispatch(shard, "TYPING_START", payload).await;
        // Stay within 50,000 events of the handlers: the local Discord's buffer is not what is
        // measured.
        if n % 1_000 == 0 {
            while count.load(Ordering::Relaxed) + 50_000 < n {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
    }
    while count.load(Ordering::Relaxed) < events {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let elapsed = start.elapsed();
    shards.shutdown().await;
    for task in tasks {
        task.abort();
    }
    events as f64 / elapsed.as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(200_000);
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let modes = [
        Mode::InProcess,
        Mode::Redis { workers: 1 },
        Mode::Redis { workers: 2 },
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); modes.len()];
    for r in 0..runs {
        for (i, mode) in modes.iter().enumerate() {
            let rate = run(*mode, events, r).await;
            eprintln!("run {r}: {:<22} {rate:>10.0} events/s", mode.label());
            results[i].push(rate);
        }
    }
    let base = median(&mut results[0].clone());
    println!("\n{events} TYPING_START over {SHARDS} shards, median of {runs} interleaved runs\n");
    println!("| path | events/s | vs in-process |");
    println!("|---|---:|---:|");
    for (i, mode) in modes.iter().enumerate() {
        let m = median(&mut results[i]);
        println!("| {} | {m:.0} | {:.2}x |", mode.label(), m / base);
    }
}
