//! Events across processes, in one test process: a publisher and workers on their own Redis
//! connections, as separate processes would be. The multi-process run is tests/tests/redis_cluster.rs.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use nostrum_core::{
    Event, EventKind, EventSet,
    cache::CachedMember,
    client::EventSink,
    gateway::ShardId,
    http::Http,
    model::gateway::payload::incoming::{MemberUpdate, TypingStart},
    prelude::*,
};
use nostrum_redis::{
    PublisherConfig, RedisPublisher, Worker, WorkerConfig, stream_key, testing::RedisServer,
};
use serde_json::{json, value::RawValue};

#[derive(Clone, Default)]
struct Seen {
    /// How many times each event number was handled, and by which worker.
    counts: Arc<Mutex<HashMap<u64, u32>>>,
    by_worker: Arc<Mutex<HashMap<&'static str, u64>>>,
    order: Arc<Mutex<HashMap<u32, Vec<u64>>>>,
    old_nicks: Arc<Mutex<Vec<Option<String>>>>,
}

struct Counter {
    name: &'static str,
    seen: Seen,
    /// Handlers sleep this long (to leave events in flight when the worker dies).
    delay: Duration,
}

#[consumer]
impl Counter {
    async fn on_typing_start(&self, ctx: Context, typing: TypingStart) {
        tokio::time::sleep(self.delay).await;
        *self
            .seen
            .counts
            .lock()
            .unwrap()
            .entry(typing.timestamp)
            .or_default() += 1;
        *self
            .seen
            .by_worker
            .lock()
            .unwrap()
            .entry(self.name)
            .or_default() += 1;
        self.seen
            .order
            .lock()
            .unwrap()
            .entry(ctx.shard().id().number)
            .or_default()
            .push(typing.timestamp);
    }

    async fn on_guild_member_update(&self, update: Update<CachedMember, MemberUpdate>) {
        self.seen
            .old_nicks
            .lock()
            .unwrap()
            .push(update.old.and_then(|old| old.nick.map(String::from)));
    }
}

fn typing(n: u64) -> Box<RawValue> {
    RawValue::from_string(
        json!({
            "channel_id": "100", "guild_id": "200", "user_id": "300", "timestamp": n,
        })
        .to_string(),
    )
    .unwrap()
}

/// A throwaway redis-server, a client of it and a publisher of `kind`; `None` (skip) without
/// redis-server outside CI.
async fn start(kind: EventKind) -> Option<(RedisServer, redis::Client, RedisPublisher)> {
    let server = RedisServer::start_or_skip("stream test")?;
    let redis = redis::Client::open(server.url()).unwrap();
    let events = EventSet::EMPTY.with(kind);
    let publisher = RedisPublisher::new(redis.clone(), PublisherConfig::new(events))
        .await
        .unwrap();
    Some((server, redis, publisher))
}

fn http() -> Http {
    Http::new("unused-token")
}

async fn wait_until(mut done: impl FnMut() -> bool, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_workers_events_are_claimed_and_none_is_lost() {
    let Some((_server, redis, publisher)) = start(EventKind::TypingStart).await else {
        return;
    };
    let seen = Seen::default();

    let mut config = WorkerConfig::new("doomed", 2);
    config.claim_idle = Duration::from_millis(500);
    let doomed = Worker::new(redis.clone(), config.clone(), http()).consumer(Counter {
        name: "doomed",
        seen: seen.clone(),
        delay: Duration::from_millis(2),
    });
    let doomed_stats = doomed.stats();
    let doomed = tokio::spawn(doomed.run());

    const TOTAL: u64 = 4_000;
    for n in 0..TOTAL {
        let shard = ShardId::new(u32::try_from(n % 2).unwrap(), 2);
        publisher.send(shard, n + 1, "TYPING_START", &typing(n), None);
    }
    publisher.flush().await;
    assert_eq!(publisher.published(), TOTAL);

    // Let the first worker take some, then kill it mid-stream: what it read but did not
    // acknowledge stays pending.
    assert!(
        wait_until(
            || doomed_stats
                .handled
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 100,
            Duration::from_secs(20)
        )
        .await
    );
    doomed.abort();
    let _ = doomed.await;
    let handled_by_doomed = seen.by_worker.lock().unwrap().get("doomed").copied();

    let mut config = WorkerConfig::new("survivor", 2);
    config.claim_idle = Duration::from_millis(500);
    let survivor = Worker::new(redis.clone(), config, http()).consumer(Counter {
        name: "survivor",
        seen: seen.clone(),
        delay: Duration::ZERO,
    });
    let survivor_stats = survivor.stats();
    let stop = survivor.stopper();
    let survivor = tokio::spawn(survivor.run());

    let all = wait_until(
        || seen.counts.lock().unwrap().len() as u64 == TOTAL,
        Duration::from_secs(60),
    )
    .await;
    let counts = seen.counts.lock().unwrap().clone();
    let missing: Vec<u64> = (0..TOTAL).filter(|n| !counts.contains_key(n)).collect();
    assert!(
        all,
        "{} events never handled, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let duplicates: u32 = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "handled by the killed worker: {handled_by_doomed:?}; claimed by the survivor: {}; duplicates: {duplicates}",
        survivor_stats
            .claimed
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    assert!(
        survivor_stats
            .claimed
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0,
        "the survivor claimed nothing: the killed worker left nothing pending?"
    );
    // In order per shard stream: each shard's first handlings follow the publish order (one
    // worker at a time handled a stream in order; claims only repeat or fill in).
    let order = seen.order.lock().unwrap().clone();
    for (shard, numbers) in &order {
        let mut first_seen = Vec::new();
        let mut done = std::collections::HashSet::new();
        for n in numbers {
            if done.insert(*n) {
                first_seen.push(*n);
            }
        }
        assert!(
            first_seen.iter().all(|n| n % 2 == u64::from(*shard)),
            "shard {shard} got another shard's events"
        );
    }

    // Everything acknowledged and deleted: the streams are empty and nothing is pending.
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    assert!(
        wait_until_async(&mut conn, Duration::from_secs(10)).await,
        "entries left in the streams"
    );
    stop.stop();
    tokio::time::timeout(Duration::from_secs(10), survivor)
        .await
        .expect("the worker stops when asked")
        .unwrap()
        .unwrap();
}

async fn wait_until_async(conn: &mut redis::aio::MultiplexedConnection, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut left = 0u64;
        for shard in 0..2 {
            let len: u64 = redis::cmd("XLEN")
                .arg(stream_key("nostrum", shard))
                .query_async(conn)
                .await
                .unwrap();
            left += len;
        }
        if left == 0 {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_sides_old_value_reaches_the_worker() {
    let Some((_server, redis, publisher)) = start(EventKind::GuildMemberUpdate).await else {
        return;
    };
    let raw = RawValue::from_string(
        json!({
            "guild_id": "200", "roles": [], "nick": "new nick", "joined_at": "2024-01-01T00:00:00.000000+00:00",
            "deaf": false, "mute": false, "pending": false, "flags": 0,
            "user": { "id": "300", "username": "someone", "discriminator": "0", "avatar": null },
        })
        .to_string(),
    )
    .unwrap();
    // The gateway process's cache filled the old member; build that event as it would.
    let mut event = Event::from_dispatch("GUILD_MEMBER_UPDATE", &raw);
    let old = json!({
        "user_id": "300", "guild_id": "200", "nick": "old nick", "roles": [], "joined_at": null, "premium_since": null,
        "avatar": null, "deaf": false, "mute": false, "pending": false, "flags": 0,
        "communication_disabled_until": null,
    });
    event
        .set_cached_json(&old.to_string())
        .expect("a CachedMember's JSON");
    assert!(event.cached_json().is_some());
    publisher.send(
        ShardId::new(0, 1),
        1,
        "GUILD_MEMBER_UPDATE",
        &raw,
        Some(&event),
    );
    publisher.flush().await;

    let seen = Seen::default();
    let worker = Worker::new(redis, WorkerConfig::new("w", 1), http()).consumer(Counter {
        name: "w",
        seen: seen.clone(),
        delay: Duration::ZERO,
    });
    let stop = worker.stopper();
    let run = tokio::spawn(worker.run());
    assert!(
        wait_until(
            || !seen.old_nicks.lock().unwrap().is_empty(),
            Duration::from_secs(10)
        )
        .await
    );
    assert_eq!(
        seen.old_nicks.lock().unwrap().as_slice(),
        &[Some("old nick".to_owned())]
    );
    stop.stop();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_handles_each_shard_stream_in_order() {
    let Some((_server, redis, publisher)) = start(EventKind::TypingStart).await else {
        return;
    };
    let seen = Seen::default();
    let worker = Worker::new(redis, WorkerConfig::new("w", 3), http()).consumer(Counter {
        name: "w",
        seen: seen.clone(),
        delay: Duration::ZERO,
    });
    let stop = worker.stopper();
    let run = tokio::spawn(worker.run());
    const TOTAL: u64 = 3_000;
    for n in 0..TOTAL {
        let shard = ShardId::new(u32::try_from(n % 3).unwrap(), 3);
        publisher.send(shard, n / 3 + 1, "TYPING_START", &typing(n), None);
    }
    publisher.flush().await;
    assert!(
        wait_until(
            || seen.counts.lock().unwrap().len() as u64 == TOTAL,
            Duration::from_secs(30)
        )
        .await
    );
    let order = seen.order.lock().unwrap().clone();
    assert_eq!(order.len(), 3);
    for (shard, numbers) in order {
        let expected: Vec<u64> = (0..TOTAL).filter(|n| n % 3 == u64::from(shard)).collect();
        assert_eq!(numbers, expected, "shard {shard} handled out of order");
    }
    stop.stop();
    run.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_worker_first_handles_what_it_had_read() {
    let Some((_server, redis, publisher)) = start(EventKind::TypingStart).await else {
        return;
    };
    const TOTAL: u64 = 2_000;
    for n in 0..TOTAL {
        publisher.send(ShardId::new(0, 1), n + 1, "TYPING_START", &typing(n), None);
    }
    publisher.flush().await;
    let seen = Seen::default();
    // No claims: only the restarted worker's own pending list can bring its events back.
    let mut config = WorkerConfig::new("same-name", 1);
    config.claim_idle = Duration::from_secs(3600);
    let first = Worker::new(redis.clone(), config.clone(), http()).consumer(Counter {
        name: "first",
        seen: seen.clone(),
        delay: Duration::from_millis(1),
    });
    let first_stats = first.stats();
    let first = tokio::spawn(first.run());
    assert!(
        wait_until(
            || first_stats
                .handled
                .load(std::sync::atomic::Ordering::Relaxed)
                >= 50,
            Duration::from_secs(20)
        )
        .await
    );
    first.abort();
    let _ = first.await;
    let handled_by_first = first_stats
        .handled
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let (pending, ..): (u64, Option<String>, Option<String>, redis::Value) = redis::cmd("XPENDING")
        .arg(stream_key("nostrum", 0))
        .arg("workers")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pending > 0, "nothing was left pending");

    let again = Worker::new(redis.clone(), config, http()).consumer(Counter {
        name: "again",
        seen: seen.clone(),
        delay: Duration::ZERO,
    });
    let again_stats = again.stats();
    let stop = again.stopper();
    let run = tokio::spawn(again.run());
    assert!(
        wait_until(
            || seen.counts.lock().unwrap().len() as u64 == TOTAL,
            Duration::from_secs(30)
        )
        .await,
        "events lost across the restart"
    );
    let reread = again_stats
        .claimed
        .load(std::sync::atomic::Ordering::Relaxed);
    let duplicates: u32 = seen.counts.lock().unwrap().values().map(|c| c - 1).sum();
    eprintln!(
        "first life handled {handled_by_first}, left {pending} pending; re-read {reread}; duplicates {duplicates}"
    );
    // Each pending entry comes back exactly once: at most the ones in flight at the kill are
    // handled twice (their handlers ended but their acknowledgements had not left).
    assert_eq!(
        reread, pending,
        "the pending entries were not re-read once each"
    );
    assert!(duplicates <= 2, "{duplicates} duplicates");
    stop.stop();
    run.await.unwrap().unwrap();
}
