//! Rate limiting against the local Discord over real HTTP on paused time: buckets, global, storms.

use std::collections::HashMap;
use std::time::Duration;

use nostrum_core::http::Http;
use nostrum_core::http::ratelimit::InProcessLimiter;
use nostrum_core::local::{BucketPlan, LocalConfig, LocalDiscord, RateLimitScope, RestFault};
use nostrum_core::model::id::Id;
use nostrum_core::model::id::marker::ChannelMarker;
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

fn client(discord: &LocalDiscord, limiter: InProcessLimiter) -> Http {
    Http::builder(Some(discord.token().into()))
        .api_base(discord.api_base())
        .ratelimiter(limiter)
        .build()
}

/// Sends `per_channel` list-messages requests to each channel, interleaved, all at once; each
/// carries its sequence number as `before` so the order of arrival can be checked.
async fn burst(http: &Http, channels: &[Id<ChannelMarker>], per_channel: u64) {
    let mut requests = Vec::new();
    for seq in 1..=per_channel {
        for channel in channels {
            let request = http.list_messages(*channel).before(Id::new(seq)).limit(1);
            requests.push(std::future::IntoFuture::into_future(request));
        }
    }
    for result in futures::future::join_all(requests).await {
        result.expect("every request answered");
    }
}

/// The `before` sequence numbers per channel, in order of arrival.
fn arrivals(discord: &LocalDiscord) -> HashMap<String, Vec<u64>> {
    let mut out: HashMap<String, Vec<u64>> = HashMap::new();
    for request in discord.requests() {
        let seq = request
            .query
            .as_deref()
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("before=")))
            .and_then(|s| s.parse().ok());
        if let Some(seq) = seq {
            out.entry(request.path).or_default().push(seq);
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn ten_thousand_requests_over_fifty_buckets_earn_no_429_and_keep_order() {
    let plan = BucketPlan::default()
        .default_limit(5, Duration::from_secs(1))
        .global(50, Duration::from_secs(1));
    let (discord, channels) = local(50, plan).await;
    let http = client(&discord, InProcessLimiter::new());
    let begin = Instant::now();
    burst(&http, &channels, 200).await;
    let elapsed = begin.elapsed();
    let stats = discord.rest_stats();
    eprintln!("10,000 requests: {elapsed:?} of paused time, {stats:?}");
    assert_eq!(stats.requests, 10_000);
    assert_eq!(stats.rate_limited_user + stats.rate_limited_global, 0);
    assert!(stats.max_per_second <= 50, "{stats:?}");
    for (path, seqs) in arrivals(&discord) {
        assert_eq!(seqs.len(), 200, "{path}");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "order broken on {path}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_user_429_storm_is_ridden_out_and_the_invalid_requests_bounded() {
    let (discord, channels) = local(
        10,
        BucketPlan::default().default_limit(50, Duration::from_secs(1)),
    )
    .await;
    let limiter = InProcessLimiter::new();
    let http = client(&discord, limiter.clone());
    let storm = RestFault::RateLimited {
        scope: RateLimitScope::User,
        retry_after: Duration::from_secs(1),
    };
    discord.rest_fault_for(storm, Duration::from_secs(5));
    burst(&http, &channels, 50).await;
    let stats = discord.rest_stats();
    eprintln!(
        "user storm: {stats:?}, client counted {}",
        limiter.invalid_requests()
    );
    assert_eq!(
        stats.requests - stats.rate_limited_user,
        500,
        "no request lost"
    );
    // Each of the 10 queues retries its head once per retry_after through the 5 s storm.
    assert!(stats.rate_limited_user <= 10 * 6, "{stats:?}");
    assert_eq!(stats.invalid, stats.rate_limited_user);
    assert_eq!(limiter.invalid_requests() as u64, stats.invalid);
}

#[tokio::test(start_paused = true)]
async fn a_global_429_storm_pauses_everything_and_shared_ones_are_not_invalid() {
    let (discord, channels) = local(
        10,
        BucketPlan::default().default_limit(50, Duration::from_secs(1)),
    )
    .await;
    let limiter = InProcessLimiter::new();
    let http = client(&discord, limiter.clone());
    let storm = RestFault::RateLimited {
        scope: RateLimitScope::Global,
        retry_after: Duration::from_secs(2),
    };
    discord.rest_fault_for(storm, Duration::from_secs(6));
    burst(&http, &channels, 20).await;
    let stats = discord.rest_stats();
    eprintln!("global storm: {stats:?}");
    assert_eq!(stats.requests - stats.rate_limited_global, 200);
    // The 10 first requests, then one probe per pause.
    assert!(stats.rate_limited_global <= 10 + 4, "{stats:?}");
    let shared = RestFault::RateLimited {
        scope: RateLimitScope::Shared,
        retry_after: Duration::from_millis(500),
    };
    let invalid_before = limiter.invalid_requests();
    discord.inject_rest_fault(shared, 5);
    burst(&http, &channels[..1], 5).await;
    assert_eq!(discord.rest_stats().rate_limited_shared, 5);
    assert_eq!(limiter.invalid_requests(), invalid_before);
}

#[tokio::test(start_paused = true)]
async fn the_global_limit_holds_at_fifty_per_second() {
    let plan = BucketPlan::default()
        .default_limit(1_000, Duration::from_secs(1))
        .global(50, Duration::from_secs(1));
    let (discord, channels) = local(20, plan).await;
    let http = client(&discord, InProcessLimiter::new());
    let begin = Instant::now();
    burst(&http, &channels, 25).await;
    let stats = discord.rest_stats();
    eprintln!("global: 500 requests in {:?}, {stats:?}", begin.elapsed());
    assert_eq!(stats.rate_limited_global, 0);
    assert_eq!(stats.max_per_second, 50);
    assert!(begin.elapsed() >= Duration::from_secs(9));
}
