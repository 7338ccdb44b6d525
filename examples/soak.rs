//! The chaos soak: a bot on 4 shards against the local Discord while it drops sockets, stops
//! ACKing heartbeats, sends op 7, op 9 (both ways) and op 1, closes with every non-fatal close
//! code, slows frames, and answers REST with 429s (every scope), 5xx and slow answers.
//!
//! ```text
//! cargo run --release --example soak -- [events] [seed] [events per second]
//! ```
//!
//! `events` defaults to 1,000,000, `seed` to 1 and the pace to 2,000 events per second (so the
//! faults, every 100-300 ms, land among the events: unpaced, the bot takes 200,000 events in about a
//! second); the run stops dispatching after 20 minutes and reports anyway (after a drain of at most
//! a few minutes). It prints: events delivered exactly once and in order (per shard, with any lost,
//! repeated or reordered counters), events lost to session invalidation (expected) versus lost
//! during resumable reconnects (must be zero), resumes versus fresh identifies, REST requests sent,
//! answered and lost, invalid requests per 10 minutes, peak memory (VmHWM) and panics. Exits 1 when
//! an event or a REST request was lost, repeated or reordered, or something panicked.
//! The driver is shared with the short test, `tests/tests/soak.rs`.

#[path = "../tests/tests/soak/driver.rs"]
mod driver;

use std::process::ExitCode;
use std::time::Duration;

use driver::{SoakConfig, run};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .init();
    let mut args = std::env::args().skip(1);
    let events = args
        .next()
        .map_or(Ok(1_000_000), |a| a.replace(['_', ','], "").parse::<u64>());
    let seed = args.next().map_or(Ok(1), |a| a.parse::<u64>());
    let rate = args.next().map_or(Ok(2_000), |a| a.parse::<u32>());
    let (Ok(events), Ok(seed), Ok(rate)) = (events, seed, rate) else {
        eprintln!("usage: soak [events] [seed] [events per second]");
        return ExitCode::from(2);
    };
    let report = run(SoakConfig {
        events,
        seed,
        shards: 4,
        max_duration: Duration::from_secs(20 * 60),
        rate: Some(rate),
        fault_every_ms: (100, 300),
        progress_every: 50_000,
        ..SoakConfig::default()
    })
    .await;
    println!("{report}");
    let ok = report.drained
        && report.lost_resumable() == 0
        && report.repeated() == 0
        && report.out_of_order() == 0
        && report.unexplained_identifies == 0
        && report.rest_lost == 0
        && !report.any_panic();
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
