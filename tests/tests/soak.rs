//! The chaos soak, short: 20,000 events on 4 shards while the local Discord drops sockets, stops
//! ACKing heartbeats, sends op 7, op 9 (both ways) and op 1, closes with every non-fatal close code,
//! slows frames, and answers REST with 429s (every scope), 5xx and slow answers. The long run is
//! `cargo run --release --example soak -- [events] [seed]`; the driver is `soak/driver.rs`.

#[path = "soak/driver.rs"]
mod driver;

use std::time::Duration;

use driver::{SoakConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak_short() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .try_init();
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let report = run(SoakConfig {
        events: 20_000,
        seed,
        shards: 4,
        max_duration: Duration::from_secs(60),
        rate: Some(800),
        fault_every_ms: (100, 250),
        ..SoakConfig::default()
    })
    .await;
    eprintln!("{report}");

    assert!(!report.timed_out, "the soak hit its time bound");
    assert!(report.drained, "a shard's final marker never arrived");
    assert_eq!(
        report.lost_resumable(),
        0,
        "events lost outside session invalidations"
    );
    assert_eq!(report.repeated(), 0, "events delivered twice");
    assert_eq!(report.out_of_order(), 0, "events delivered out of order");
    assert_eq!(
        report.delivered() + report.lost_to_invalidation() + report.refused(),
        report.shards.iter().map(|s| s.sent).sum::<u64>(),
        "every event delivered, refused or lost to an invalidation"
    );
    // Every fresh IDENTIFY is the first of a shard or follows an injected invalidation.
    assert_eq!(
        report.unexplained_identifies, 0,
        "fresh identifies without an invalidation"
    );
    for (n, shard) in report.shards.iter().enumerate() {
        assert_eq!(
            shard.fresh_disconnects, shard.invalidations_applied,
            "shard {n}: disconnects without resume vs invalidations"
        );
    }
    assert!(
        report.invalidations_applied >= 1,
        "the seed injected no invalidation"
    );
    assert!(report.server_resumes >= 10, "too few resumes to mean much");
    assert!(report.rest_sent >= 100, "too few REST requests");
    assert_eq!(report.rest_lost, 0, "REST requests never answered");
    assert_eq!(
        report.rest_ok + report.rest_errors.values().sum::<u64>(),
        report.rest_sent
    );
    // Injected 429s count as invalid; the rest must be few. Discord bans at 10,000 per 10 minutes.
    assert!(
        report.invalid_per_10_min < 1_000.0,
        "{} invalid requests per 10 minutes",
        report.invalid_per_10_min
    );
    assert!(
        report.rest.invalid <= report.rest_429_injected_max + 5,
        "invalid requests the bot caused itself: {} (injected at most {})",
        report.rest.invalid,
        report.rest_429_injected_max
    );
    assert!(!report.any_panic(), "a task panicked");
    assert!(report.client_ended.is_none(), "{:?}", report.client_ended);
}
