//! The REST rate limiter's added latency per request: the limiter alone (acquire, grant, report)
//! and a whole request against the local Discord with and without it. `cargo run --release --bin
//! rest_limiter` from `bench/`.

use std::future::IntoFuture;
use std::time::{Duration, Instant};

use nostrum_core::http::Http;
use nostrum_core::http::ratelimit::{BucketKey, InProcessLimiter, NoLimiter, Outcome, RateLimiter};
use nostrum_core::local::{BucketPlan, LocalConfig, LocalDiscord};
use nostrum_core::model::id::Id;

/// Headers of a bucket that is far from empty.
fn roomy() -> Outcome {
    Outcome::parse(
        200,
        [
            ("x-ratelimit-bucket", "abcd"),
            ("x-ratelimit-limit", "1000000"),
            ("x-ratelimit-remaining", "999999"),
            ("x-ratelimit-reset-after", "3600"),
        ],
        b"",
    )
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize];
    println!(
        "{name:<58} n={:<7} median {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
        samples.len(),
        at(0.5),
        at(0.99),
        samples[samples.len() - 1]
    );
}

/// One request at a time through the limiter alone: acquire, then report the answer.
async fn limiter_alone(limiter: &dyn RateLimiter, n: usize, queues: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let key = BucketKey::new(
            "GET /channels/{channel_id}/messages",
            (i % queues).to_string(),
            false,
        );
        let start = Instant::now();
        let permit = limiter.acquire(key).await;
        permit.complete(roomy());
        samples.push(start.elapsed());
    }
    samples
}

/// `tasks` tasks each sending `n` requests through the limiter alone, on their own queues.
async fn limiter_concurrent(limiter: InProcessLimiter, tasks: usize, n: usize) -> Vec<Duration> {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let limiter = limiter.clone();
        handles.push(tokio::spawn(async move {
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let key =
                    BucketKey::new("GET /channels/{channel_id}/messages", t.to_string(), false);
                let start = Instant::now();
                let permit = limiter.acquire(key).await;
                permit.complete(roomy());
                samples.push(start.elapsed());
            }
            samples
        }));
    }
    let mut all = Vec::new();
    for handle in handles {
        all.extend(handle.await.expect("task"));
    }
    all
}

/// One request at a time against the local Discord.
async fn whole_requests(http: &Http, channel: u64, n: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        http.list_messages(Id::new(channel))
            .limit(1)
            .into_future()
            .await
            .expect("answered");
        samples.push(start.elapsed());
    }
    samples
}

#[tokio::main]
async fn main() {
    const N: usize = 200_000;
    println!(
        "REST rate limiter: added latency per request ({} worker threads)",
        tokio::runtime::Handle::current().metrics().num_workers()
    );
    let _ = limiter_alone(&InProcessLimiter::new(), 10_000, 1).await; // warm up
    report(
        "limiter alone, no limiter (NoLimiter)",
        limiter_alone(&NoLimiter, N, 1).await,
    );
    let no_global = InProcessLimiter::builder().no_global().build();
    report(
        "limiter alone, in-process, 1 queue, no global limit",
        limiter_alone(&no_global, N, 1).await,
    );
    let global = InProcessLimiter::builder()
        .global(u32::MAX / 2, Duration::from_secs(1))
        .build();
    report(
        "limiter alone, in-process, 1 queue, global window on",
        limiter_alone(&global, N, 1).await,
    );
    let many = InProcessLimiter::builder().no_global().build();
    report(
        "limiter alone, in-process, 1,000 queues in turn",
        limiter_alone(&many, N, 1_000).await,
    );
    let shared = InProcessLimiter::builder()
        .global(u32::MAX / 2, Duration::from_secs(1))
        .build();
    report(
        "limiter alone, in-process, 64 concurrent queues",
        limiter_concurrent(shared, 64, N / 64).await,
    );

    let discord = LocalDiscord::start(LocalConfig::default())
        .await
        .expect("local discord");
    discord
        .set_bucket_plan(BucketPlan::default().default_limit(1_000_000, Duration::from_secs(3600)));
    let channel = discord.channel_ids(discord.guild_ids()[0])[0];
    let base = |limiter: Box<
        dyn Fn(nostrum_core::http::HttpBuilder) -> nostrum_core::http::HttpBuilder,
    >| {
        limiter(Http::builder(Some(discord.token().into())).api_base(discord.api_base())).build()
    };
    let off = base(Box::new(|b| b.ratelimiter(NoLimiter)));
    let on = base(Box::new(|b| {
        b.ratelimiter(
            InProcessLimiter::builder()
                .global(u32::MAX / 2, Duration::from_secs(1))
                .build(),
        )
    }));
    let _ = whole_requests(&off, channel, 2_000).await;
    let _ = whole_requests(&on, channel, 2_000).await;
    for round in 0..2 {
        report(
            &format!("local Discord GET, NoLimiter (round {round})"),
            whole_requests(&off, channel, 10_000).await,
        );
        report(
            &format!("local Discord GET, in-process limiter (round {round})"),
            whole_requests(&on, channel, 10_000).await,
        );
    }
}
