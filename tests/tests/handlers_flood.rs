//! Handlers under load: 100,000 events through `ConsumerGroup::dispatch` to a consumer whose handlers
//! panic, fail or hang, bounded by `max_in_flight(1000)`, beside a second consumer that counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nostrum_core::dispatch::{ConsumerGroup, ConsumerOptions, EventKeys};
use nostrum_core::http::Http;
use nostrum_core::prelude::*;
use serde_json::value::RawValue;
use tokio::time::Instant;

const EVENTS: u64 = 100_000;
const BOUND: usize = 1000;

/// The handlers alive right now, and the most ever alive at once.
#[derive(Debug, Default)]
struct Live {
    now: AtomicUsize,
    peak: AtomicUsize,
    started: AtomicUsize,
}

/// Decrements the live count when the handler ends, however it ends (return, error, panic).
struct Alive(Arc<Live>);

impl Alive {
    fn enter(live: &Arc<Live>) -> Self {
        let now = live.now.fetch_add(1, Ordering::SeqCst) + 1;
        live.peak.fetch_max(now, Ordering::SeqCst);
        live.started.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(live))
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the bad consumer does with event `n`.
#[derive(Clone, Copy, Debug)]
enum Misbehave {
    /// Panics, fails, sleeps 100 ms, by `n % 3`.
    PanicFailSlow,
    /// Panics, fails, hangs forever, by `n % 3`.
    PanicFailHang,
}

#[derive(Debug)]
struct Bad {
    live: Arc<Live>,
    mode: Misbehave,
}

#[consumer]
impl Bad {
    async fn on_typing_start(&self, typing: TypingStart) -> Result<(), BoxError> {
        let _alive = Alive::enter(&self.live);
        match (typing.timestamp % 3, self.mode) {
            (0, _) => panic!("handler {} panics", typing.timestamp),
            (1, _) => Err(format!("handler {} fails", typing.timestamp).into()),
            (_, Misbehave::PanicFailSlow) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(())
            }
            (_, Misbehave::PanicFailHang) => {
                std::future::pending::<()>().await;
                Ok(())
            }
        }
    }
}

#[derive(Debug, Default)]
struct Counter {
    seen: AtomicUsize,
}

#[consumer]
impl Counter {
    async fn on_typing_start(&self, _typing: TypingStart) {
        self.seen.fetch_add(1, Ordering::SeqCst);
    }
}

/// Peak resident memory of this process (VmHWM), in KiB.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn typing(n: u64) -> Event {
    let raw = RawValue::from_string(format!(
        r#"{{"channel_id":"1","guild_id":"2","user_id":"3","timestamp":{n}}}"#
    ))
    .expect("JSON");
    Event::from_dispatch("TYPING_START", &raw)
}

/// Dispatches the flood; returns the counter, the live counts and the time it took, or `None` if
/// the dispatch loop did not get through all events by `deadline` (how far it got is printed).
async fn flood(mode: Misbehave, deadline: Duration) -> (Arc<Counter>, Arc<Live>, Option<Duration>) {
    // Panics are expected by the thousand: keep the test output readable. Once for the binary and
    // never taken back: the two tests run at the same time, and one restoring the default hook
    // while the other floods printed a backtrace per panic, slowing the workers enough that the
    // sleeping handlers held their slots past `max_wait` and events were dropped.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let group = ConsumerGroup::new();
    let live = Arc::new(Live::default());
    let counter = Arc::new(Counter::default());
    group.join_with(
        Bad {
            live: Arc::clone(&live),
            mode,
        },
        ConsumerOptions::default().max_in_flight(BOUND),
    );
    group.join_arc(Arc::clone(&counter), ConsumerOptions::default());
    let ctx = Context::detached(Http::builder(None).build());
    let dispatched = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let driver = {
        let dispatched = Arc::clone(&dispatched);
        async move {
            for n in 0..EVENTS {
                group.dispatch(&ctx, typing(n), EventKeys::default()).await;
                dispatched.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    let finished = tokio::time::timeout(deadline, driver).await.is_ok();
    // Let the counter's last tasks run.
    let settle = Instant::now();
    while counter.seen.load(Ordering::SeqCst) < dispatched.load(Ordering::SeqCst)
        && settle.elapsed() < Duration::from_secs(2)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    eprintln!(
        "{mode:?}: dispatched {} of {EVENTS} in {took:?}; counter saw {}; bad handlers started {}, \
         live now {}, peak live {} (bound {BOUND})",
        dispatched.load(Ordering::SeqCst),
        counter.seen.load(Ordering::SeqCst),
        live.started.load(Ordering::SeqCst),
        live.now.load(Ordering::SeqCst),
        live.peak.load(Ordering::SeqCst),
    );
    (counter, live, finished.then_some(took))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_failing_slow_handlers_stay_bounded_and_stop_nothing() {
    let before = vm_hwm_kib();
    let (counter, live, took) = flood(Misbehave::PanicFailSlow, Duration::from_secs(15)).await;
    let after = vm_hwm_kib();
    eprintln!(
        "VmHWM before {before} KiB, after {after} KiB (+{} KiB)",
        after.saturating_sub(before)
    );
    assert!(took.is_some(), "the flood did not get through in 15 s");
    assert_eq!(counter.seen.load(Ordering::SeqCst), EVENTS as usize);
    assert_eq!(live.started.load(Ordering::SeqCst), EVENTS as usize);
    let peak = live.peak.load(Ordering::SeqCst);
    assert!(
        peak <= BOUND,
        "peak {peak} handlers in flight, bound {BOUND}"
    );
    assert!(
        peak >= BOUND / 2,
        "the bound was never approached: peak {peak}"
    );
}

/// Hung handlers hold their permits forever. Once `BOUND` of them hang, `ConsumerGroup::dispatch`
/// waits for a permit of the bad consumer and no later event reaches any consumer of the shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_handlers_do_not_stall_other_consumers() {
    let before = vm_hwm_kib();
    let (counter, live, took) = flood(Misbehave::PanicFailHang, Duration::from_secs(10)).await;
    let after = vm_hwm_kib();
    eprintln!(
        "VmHWM before {before} KiB, after {after} KiB (+{} KiB)",
        after.saturating_sub(before)
    );
    let peak = live.peak.load(Ordering::SeqCst);
    assert!(
        peak <= BOUND,
        "peak {peak} handlers in flight, bound {BOUND}"
    );
    assert_eq!(
        counter.seen.load(Ordering::SeqCst),
        EVENTS as usize,
        "the counting consumer missed events"
    );
    assert!(took.is_some(), "the dispatch loop stalled");
}
