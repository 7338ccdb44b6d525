//! The Redis rate limiter: two "processes" (limiters with their own Redis connections and HTTP
//! clients) against the local Discord's REST in real time, sharing buckets, the global limit and
//! a global 429's pause; and the in-process limiter's failure in the same setup, for contrast.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::time::Duration;

use nostrum_core::http::ratelimit::{InProcessLimiter, RateLimiter};
use nostrum_core::http::{Http, routes};
use nostrum_core::local::{BucketPlan, LocalConfig, LocalDiscord, RateLimitScope, RestFault};
use nostrum_core::model::id::Id;
use nostrum_core::model::id::marker::ChannelMarker;
use nostrum_redis::RedisRateLimiter;
use nostrum_redis::testing::RedisServer;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

async fn local(guilds: u32, plan: BucketPlan) -> (LocalDiscord, Vec<Id<ChannelMarker>>) {
    let discord = LocalDiscord::start(LocalConfig {
        guilds,
        ..LocalConfig::default()
    })
    .await
    .expect("start");
    discord.set_bucket_plan(plan);
    let channels = discord
        .guild_ids()
        .into_iter()
        .map(|g| Id::new(discord.channel_ids(g)[0]))
        .collect();
    (discord, channels)
}

async fn connection(server: &RedisServer) -> ConnectionManager {
    let client = redis::Client::open(server.url()).expect("url");
    ConnectionManager::new(client).await.expect("connect")
}

/// One "process": its own Redis connection, limiter and HTTP client.
async fn process(discord: &LocalDiscord, server: &RedisServer) -> Http {
    client(discord, RedisRateLimiter::new(connection(server).await))
}

fn client(discord: &LocalDiscord, limiter: impl RateLimiter) -> Http {
    Http::builder(Some(discord.token().into()))
        .api_base(discord.api_base())
        .ratelimiter(limiter)
        .build()
}

/// Sends `per_channel` list-messages requests to each channel, interleaved, all at once; each
/// carries `first + n` as `before` so the order of arrival can be checked. Returns how many failed.
async fn burst(http: &Http, channels: &[Id<ChannelMarker>], first: u64, per_channel: u64) -> usize {
    let mut requests = Vec::new();
    for seq in first..first + per_channel {
        for channel in channels {
            let request = http.list_messages(*channel).before(Id::new(seq)).limit(1);
            requests.push(request.into_future());
        }
    }
    futures::future::join_all(requests)
        .await
        .iter()
        .filter(|result| result.is_err())
        .count()
}

/// Sends `count` get-channel requests at once. Returns how many failed.
async fn get_channel(http: &Http, channel: &str, count: usize) -> usize {
    let requests = (0..count).map(|_| http.route(&routes::GET_CHANNEL, &[channel]).into_future());
    futures::future::join_all(requests)
        .await
        .iter()
        .filter(|result| result.is_err())
        .count()
}

/// The `before` numbers per channel in order of arrival, those of `range` only.
fn arrivals(discord: &LocalDiscord, range: std::ops::Range<u64>) -> HashMap<String, Vec<u64>> {
    let mut out: HashMap<String, Vec<u64>> = HashMap::new();
    for request in discord.requests() {
        let seq = request
            .query
            .as_deref()
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("before=")))
            .and_then(|s| s.parse().ok());
        if let Some(seq) = seq.filter(|s| range.contains(s)) {
            out.entry(request.path).or_default().push(seq);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_a_bucket_without_a_429_and_keep_their_order() {
    let Some(server) = RedisServer::start_or_skip("ratelimit shared bucket") else {
        return;
    };
    // Two routes counting in one bucket of 5 per second.
    let second = Duration::from_secs(1);
    let plan = BucketPlan::default()
        .default_limit(1_000, second)
        .shared("GET /channels/{channel_id}/messages", "channel", 5, second)
        .shared("GET /channels/{channel_id}", "channel", 5, second);
    let (discord, channels) = local(1, plan).await;
    let a = process(&discord, &server).await;
    let b = process(&discord, &server).await;
    let channel = channels[0].to_string();
    let begin = Instant::now();
    let (failed_a, failed_b, failed_c, failed_d) = tokio::join!(
        burst(&a, &channels, 1, 20),
        burst(&b, &channels, 1_001, 20),
        get_channel(&a, &channel, 10),
        get_channel(&b, &channel, 10),
    );
    let elapsed = begin.elapsed();
    let stats = discord.rest_stats();
    eprintln!("60 requests at 5/s on two routes from two processes: {elapsed:?}, {stats:?}");
    assert_eq!((failed_a, failed_b, failed_c, failed_d), (0, 0, 0, 0));
    assert_eq!(stats.requests, 60, "nothing lost, nothing retried");
    assert_eq!(stats.rate_limited_user + stats.rate_limited_global, 0);
    // 12 windows of 5: the bucket was shared, not used twice over.
    assert!(elapsed >= Duration::from_millis(10_500), "{elapsed:?}");
    for range in [1..21, 1_001..1_021] {
        for (path, seqs) in arrivals(&discord, range.clone()) {
            assert_eq!(seqs.len(), 20, "{path}");
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "order: {seqs:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_stay_under_the_global_limit_together() {
    let Some(server) = RedisServer::start_or_skip("ratelimit global") else {
        return;
    };
    let plan = BucketPlan::default()
        .default_limit(1_000, Duration::from_secs(1))
        .global(50, Duration::from_secs(1));
    let (discord, channels) = local(20, plan).await;
    // The local Discord shares the test's two cores with both clients and the other tests, so
    // requests reach it with more jitter than the default 50 ms margin is for (CI runs this
    // beside the other tests of the file): give it 300 ms. Two unshared limiters get 150+ global
    // 429s here, so the margin does not hide the difference.
    let limiter = || async {
        RedisRateLimiter::builder(connection(&server).await)
            .global_margin(Duration::from_millis(300))
            .build()
    };
    let a = client(&discord, limiter().await);
    let b = client(&discord, limiter().await);
    let begin = Instant::now();
    let (failed_a, failed_b) =
        tokio::join!(burst(&a, &channels, 1, 8), burst(&b, &channels, 1_001, 8));
    let elapsed = begin.elapsed();
    let stats = discord.rest_stats();
    eprintln!("320 requests, global 50/s, two Redis limiters: {elapsed:?}, {stats:?}");
    assert_eq!((failed_a, failed_b), (0, 0));
    assert_eq!(stats.rate_limited_global, 0, "{stats:?}");
    assert_eq!(stats.requests, 320);
    assert!(elapsed >= Duration::from_secs(6), "{elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_in_process_limiters_exceed_the_global_limit() {
    // The contrast: the same load, each process limiting itself only.
    let plan = BucketPlan::default()
        .default_limit(1_000, Duration::from_secs(1))
        .global(50, Duration::from_secs(1));
    let (discord, channels) = local(20, plan).await;
    let a = client(&discord, InProcessLimiter::new());
    let b = client(&discord, InProcessLimiter::new());
    tokio::join!(burst(&a, &channels, 1, 8), burst(&b, &channels, 1_001, 8));
    let stats = discord.rest_stats();
    eprintln!("320 requests, global 50/s, two in-process limiters: {stats:?}");
    assert!(stats.rate_limited_global > 0, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_429_in_one_process_pauses_the_other() {
    let Some(server) = RedisServer::start_or_skip("ratelimit global 429") else {
        return;
    };
    let (discord, channels) = local(
        2,
        BucketPlan::default().default_limit(50, Duration::from_secs(1)),
    )
    .await;
    let a = process(&discord, &server).await;
    let b = process(&discord, &server).await;
    discord.inject_rest_fault(
        RestFault::RateLimited {
            scope: RateLimitScope::Global,
            retry_after: Duration::from_secs(2),
        },
        1,
    );
    let first = tokio::spawn({
        let channel = channels[0];
        async move { a.list_messages(channel).limit(1).await.map(|_| ()) }
    });
    // Wait until process A has told Redis about its 429.
    let mut redis = connection(&server).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let paused: i64 = redis::cmd("PTTL")
            .arg("nostrum:rl:global_until")
            .query_async(&mut redis)
            .await
            .expect("PTTL");
        if paused > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the global 429 never reached Redis"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let begin = Instant::now();
    b.list_messages(channels[1])
        .limit(1)
        .await
        .expect("answered");
    let waited = begin.elapsed();
    first
        .await
        .expect("no panic")
        .expect("retried and answered");
    let stats = discord.rest_stats();
    eprintln!("B waited {waited:?} after A's global 429; {stats:?}");
    assert!(waited >= Duration::from_millis(1_500), "{waited:?}");
    assert_eq!(stats.rate_limited_global, 1, "B did not earn one too");
    assert_eq!(stats.requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_429_storm_is_ridden_out_with_one_probe_per_pause_across_processes() {
    let Some(server) = RedisServer::start_or_skip("ratelimit global storm") else {
        return;
    };
    let (discord, channels) = local(
        10,
        BucketPlan::default().default_limit(50, Duration::from_secs(1)),
    )
    .await;
    let a = process(&discord, &server).await;
    let b = process(&discord, &server).await;
    let storm = RestFault::RateLimited {
        scope: RateLimitScope::Global,
        retry_after: Duration::from_secs(2),
    };
    discord.rest_fault_for(storm, Duration::from_secs(5));
    let (failed_a, failed_b) =
        tokio::join!(burst(&a, &channels, 1, 5), burst(&b, &channels, 1_001, 5));
    let stats = discord.rest_stats();
    eprintln!("global storm, two processes: {stats:?}");
    assert_eq!((failed_a, failed_b), (0, 0));
    assert_eq!(
        stats.requests - stats.rate_limited_global,
        100,
        "no request lost"
    );
    // The first request of each learning queue, then one probe per pause for both processes.
    assert!(stats.rate_limited_global <= 10 + 4, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_still_go_when_redis_is_down() {
    let Some(server) = RedisServer::start_or_skip("ratelimit redis down") else {
        return;
    };
    let (discord, channels) = local(3, BucketPlan::default()).await;
    let http = process(&discord, &server).await;
    drop(server);
    let begin = Instant::now();
    let failed = burst(&http, &channels, 1, 1).await;
    eprintln!("3 requests without Redis: {:?}", begin.elapsed());
    assert_eq!(failed, 0);
    assert_eq!(discord.rest_stats().requests, 3);
}
