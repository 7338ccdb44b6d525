//! Beyond one machine, end to end: two gateway processes (shards 0-1 and 2-3 of 4) and two
//! worker processes on one Redis, against the local Discord. 100,000 events; one worker killed
//! (SIGKILL) and one shard handed over from one gateway process to the other midway. Every event
//! must be handled at least once (duplicates are counted and reported), the handover must resume
//! (no fresh IDENTIFY), and the IDENTIFYs of both processes must be spaced as one queue.
//!
//! Needs `redis-server` (installed by `.ci/run`); skipped with a message when it is absent outside
//! CI. The processes are `tests/src/bin/redis_node.rs`. `REDIS_CLUSTER_EVENTS` changes the count.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use nostrum_core::local::{LocalConfig, LocalDiscord};
use nostrum_redis::{Command as Control, Handover, testing::RedisServer};
use redis::AsyncCommands;
use serde_json::json;

/// A child process killed when dropped, so a failing test leaves nothing running.
struct Node {
    name: &'static str,
    child: Child,
}

impl Node {
    fn spawn(name: &'static str, args: &[String]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_redis_node"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("could not start {name}: {err}"));
        Self { name, child }
    }

    /// SIGKILL: no chance to acknowledge anything.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited early: {status}", self.name);
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn s(value: impl ToString) -> String {
    value.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_two_workers_a_kill_and_a_handover() {
    let Some(server) = RedisServer::start_or_skip("redis_cluster") else {
        return;
    };
    let events: u64 = std::env::var("REDIS_CLUSTER_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let discord = LocalDiscord::start(LocalConfig {
        shards: 4,
        guilds: 4,
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    let redis_url = server.url();
    let redis = redis::Client::open(redis_url.clone()).unwrap();
    let mut conn = redis
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .unwrap();

    let gateway = |name: &str, first: u32, last: u32| {
        vec![
            s("gateway"),
            s("--redis"),
            redis_url.clone(),
            s("--gateway"),
            discord.gateway_url(),
            s("--api"),
            discord.api_base(),
            s("--token"),
            discord.token(),
            s("--first"),
            s(first),
            s("--last"),
            s(last),
            s("--total"),
            s(4),
            s("--name"),
            s(name),
        ]
    };
    let worker = |name: &str| {
        vec![
            s("worker"),
            s("--redis"),
            redis_url.clone(),
            s("--api"),
            discord.api_base(),
            s("--token"),
            discord.token(),
            s("--total"),
            s(4),
            s("--name"),
            s(name),
            s("--claim-idle-ms"),
            s(2000),
        ]
    };
    let mut w1 = Node::spawn("w1", &worker("w1"));
    let mut w2 = Node::spawn("w2", &worker("w2"));
    let mut gw_a = Node::spawn("gw-a", &gateway("gw-a", 0, 1));
    let mut gw_b = Node::spawn("gw-b", &gateway("gw-b", 2, 3));

    // Both processes identify through one queue in Redis: 4 IDENTIFYs, >= 5 s apart (one
    // bucket), whichever process sends them.
    for shard in 0..4 {
        assert!(
            discord
                .wait_for_ready(shard, 1, Duration::from_secs(60))
                .await,
            "shard {shard} never got READY"
        );
    }
    let mut identifies = discord.identifies();
    identifies.sort_by_key(|record| record.at);
    let shards: Vec<u32> = identifies.iter().map(|record| record.shard[0]).collect();
    assert_eq!(identifies.len(), 4, "one IDENTIFY per shard: {shards:?}");
    // The queue spaces them 5 s apart by Redis's clock; they arrive here a little later or
    // earlier each (scheduling on a loaded machine), so allow 0.5 s. Two separate queues would
    // send both processes' first IDENTIFYs together (a gap near 0).
    for pair in identifies.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(4_500),
            "IDENTIFYs of shards {} and {} only {gap:?} apart",
            pair[0].shard[0],
            pair[1].shard[0]
        );
    }

    let handover = Handover::new(redis.clone(), nostrum_redis::DEFAULT_PREFIX)
        .await
        .unwrap();
    let started = Instant::now();
    let seen = |conn: &mut redis::aio::MultiplexedConnection| {
        let mut conn = conn.clone();
        async move { conn.hlen::<_, u64>("test:seen").await.unwrap() }
    };
    for n in 0..events {
        let shard = u32::try_from(n % 4).unwrap();
        let payload = json!({
            "channel_id": "100", "guild_id": "200", "user_id": "300", "timestamp": n,
        });
        assert!(
            discord
                .dispatch(shard, "TYPING_START", payload)
                .await
                .is_some(),
            "shard {shard} has no session"
        );
        if n == events * 3 / 10 {
            // Let w1 take part before it dies.
            while seen(&mut conn).await < n / 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            w1.kill();
            eprintln!("w1 killed after {n} events sent");
        }
        if n == events / 2 {
            handover
                .send(
                    "gw-a",
                    &Control::Give {
                        shard: 1,
                        to: "gw-b".to_owned(),
                    },
                )
                .await
                .unwrap();
            eprintln!("shard 1 handed from gw-a to gw-b after {n} events sent");
        }
        // Keep at most 20,000 events ahead of the workers.
        if n % 5_000 == 0 {
            while seen(&mut conn).await + 20_000 < n {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    while seen(&mut conn).await < events && Instant::now() < deadline {
        gw_a.assert_running();
        gw_b.assert_running();
        w2.assert_running();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();

    let counts: Vec<(u64, u64)> = conn.hgetall("test:seen").await.unwrap();
    let handled: std::collections::HashMap<u64, u64> = counts.into_iter().collect();
    let missing: Vec<u64> = (0..events).filter(|n| !handled.contains_key(n)).collect();
    let duplicates: u64 = handled.values().map(|c| c - 1).sum();
    let by_w1: u64 = conn.get("test:by:w1").await.unwrap_or(0);
    let by_w2: u64 = conn.get("test:by:w2").await.unwrap_or(0);
    let resumes = discord.resumes();
    eprintln!(
        "{events} events in {elapsed:?}: handled {} distinct, {duplicates} duplicates, {} missing; \
         w1 (killed) {by_w1}, w2 {by_w2}; identifies {}, resumes {:?}",
        handled.len(),
        missing.len(),
        discord.identifies().len(),
        resumes
            .iter()
            .map(|r| (r.shard[0], r.seq))
            .collect::<Vec<_>>(),
    );
    assert!(
        missing.is_empty(),
        "{} events never handled, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        by_w1 > 0,
        "the killed worker handled nothing before it died"
    );
    assert!(by_w2 > 0, "the surviving worker handled nothing");
    // The handover resumed shard 1's session in gw-b: no fresh IDENTIFY, a RESUME of shard 1.
    assert_eq!(
        discord.identifies().len(),
        4,
        "the handover identified instead of resuming"
    );
    assert!(
        resumes.iter().any(|r| r.shard[0] == 1),
        "no RESUME of shard 1: {resumes:?}"
    );
    drop((gw_a, gw_b, w2));
}
