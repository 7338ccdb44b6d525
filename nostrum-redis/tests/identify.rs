//! The Redis identify queue across "processes" (instances with their own connections) on one
//! throwaway redis-server, in real time: bucket spacing, session start budget, cancellation.

use std::sync::Arc;
use std::time::Duration;

use nostrum_core::gateway::IdentifyLimiter;
use nostrum_redis::RedisIdentifyQueue;
use nostrum_redis::testing::RedisServer;
use redis::aio::ConnectionManager;
use tokio::time::Instant;

/// Redis `TIME` against the local clock: the spacing measured here may be a little short.
const SPACING: Duration = Duration::from_millis(4_900);

async fn connection(server: &RedisServer) -> ConnectionManager {
    let client = redis::Client::open(server.url()).expect("url");
    ConnectionManager::new(client).await.expect("connect")
}

async fn queue(
    server: &RedisServer,
    max_concurrency: u32,
    total: u32,
    remaining: u32,
    reset_after: Duration,
) -> Arc<RedisIdentifyQueue> {
    let queue = RedisIdentifyQueue::new(
        connection(server).await,
        max_concurrency,
        total,
        remaining,
        reset_after,
    )
    .await
    .expect("queue");
    Arc::new(queue)
}

async fn get(server: &RedisServer, key: &str) -> Option<i64> {
    let mut connection = connection(server).await;
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut connection)
        .await
        .expect("GET")
}

/// Shard `s` waits on `queues[s % len]`, all at once; returns when each passed, by shard.
async fn run(queues: &[Arc<RedisIdentifyQueue>], shards: u32) -> Vec<Duration> {
    let start = Instant::now();
    let handles: Vec<_> = (0..shards)
        .map(|shard| {
            let queue: Arc<dyn IdentifyLimiter> = queues[shard as usize % queues.len()].clone();
            tokio::spawn(async move {
                queue.wait(shard).await;
                start.elapsed()
            })
        })
        .collect();
    let mut times = Vec::new();
    for handle in handles {
        times.push(handle.await.expect("no panic"));
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_space_identifies_per_bucket_and_run_buckets_side_by_side() {
    let Some(server) = RedisServer::start_or_skip("identify spacing") else {
        return;
    };
    let hour = Duration::from_secs(3600);
    let mut queues = Vec::new();
    for _ in 0..3 {
        queues.push(queue(&server, 2, 1000, 1000, hour).await);
    }
    let begin = Instant::now();
    let times = run(&queues, 8).await;
    eprintln!(
        "8 shards, 2 buckets, 3 processes: {times:?} in {:?}",
        begin.elapsed()
    );
    let mut buckets = Vec::new();
    for bucket in 0..2 {
        let mut in_bucket: Vec<Duration> = times.iter().skip(bucket).step_by(2).copied().collect();
        in_bucket.sort();
        assert!(in_bucket[0] < Duration::from_secs(1), "{in_bucket:?}");
        for pair in in_bucket.windows(2) {
            assert!(
                pair[1] - pair[0] >= SPACING,
                "bucket {bucket}: {in_bucket:?}"
            );
            // No turn wasted either.
            assert!(
                pair[1] - pair[0] < Duration::from_millis(6_500),
                "{in_bucket:?}"
            );
        }
        buckets.push(in_bucket);
    }
    // Side by side: the n-th IDENTIFY of each bucket at about the same time.
    for (a, b) in buckets[0].iter().zip(&buckets[1]) {
        assert!(a.abs_diff(*b) < Duration::from_secs(1), "{buckets:?}");
    }
    assert_eq!(get(&server, "nostrum:identify:remaining").await, Some(992));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_budget_makes_every_process_wait_for_the_reset() {
    let Some(server) = RedisServer::start_or_skip("identify budget") else {
        return;
    };
    let reset = Duration::from_secs(2);
    let first = queue(&server, 16, 3, 2, reset).await;
    let built = Instant::now();
    // A later process with a stale view does not overwrite the budget (SET NX).
    let second = queue(&server, 16, 3, 500, reset).await;
    assert_eq!(get(&server, "nostrum:identify:remaining").await, Some(2));
    let times = run(&[first, second], 4).await;
    let offset = built.elapsed();
    eprintln!("budget 2 of 3, reset after 2 s: {times:?}");
    let mut sorted = times.clone();
    sorted.sort();
    assert!(sorted[1] < Duration::from_millis(500), "{sorted:?}");
    // The other two waited for the reset (counted from the first queue's build).
    assert!(
        sorted[2] + offset >= Duration::from_millis(1_900),
        "{sorted:?}"
    );
    assert!(sorted[3] < Duration::from_secs(4), "{sorted:?}");
    // After the reset: the total (3), minus those two.
    assert_eq!(get(&server, "nostrum:identify:remaining").await, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_wait_spends_nothing_and_prefixes_keep_bots_apart() {
    let Some(server) = RedisServer::start_or_skip("identify cancel") else {
        return;
    };
    let reset = Duration::from_secs(9);
    let a = queue(&server, 1, 10, 2, reset).await;
    let b = queue(&server, 1, 10, 2, reset).await;
    let c = queue(&server, 1, 10, 2, reset).await;
    let begin = Instant::now();
    a.wait(0).await;
    assert!(begin.elapsed() < Duration::from_millis(500));
    // Another bot on the same Redis is not held back by this one's bucket.
    let other = RedisIdentifyQueue::builder(connection(&server).await, 1, 10, 1, reset)
        .prefix("otherbot")
        .build()
        .await
        .expect("queue");
    tokio::time::timeout(Duration::from_millis(500), other.wait(0))
        .await
        .expect("its own bucket is free");
    // B gives up while waiting for the bucket.
    let cancelled = tokio::time::timeout(Duration::from_secs(1), b.wait(1)).await;
    assert!(cancelled.is_err());
    // C gets the next turn 5 s after A, with the one start left: had B spent it, C would wait
    // for the reset at 9 s.
    c.wait(2).await;
    let passed = begin.elapsed();
    eprintln!("after a cancelled wait, the next passed at {passed:?}");
    assert!(passed >= SPACING, "{passed:?}");
    assert!(passed < Duration::from_secs(7), "{passed:?}");
    assert_eq!(get(&server, "nostrum:identify:remaining").await, Some(0));
    assert_eq!(get(&server, "otherbot:identify:remaining").await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_holds_shards_back_without_panicking() {
    let Some(server) = RedisServer::start_or_skip("identify redis down") else {
        return;
    };
    let queue = queue(&server, 1, 1000, 1000, Duration::from_secs(3600)).await;
    drop(server);
    let waited = tokio::time::timeout(Duration::from_millis(1_500), queue.wait(0)).await;
    assert!(waited.is_err(), "no IDENTIFY without Redis's consent");
}
