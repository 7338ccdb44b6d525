//! Dispatch and tasking, on the runtime's own clock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;
use twilight_model::id::Id;

use super::*;
use crate::http::Http;
use crate::prelude::*;
use crate::{Event, EventKind};

fn ctx() -> Context {
    Context::detached(Http::builder(None).api_base("http://127.0.0.1:9").build())
}

fn typing(channel: u64) -> Event {
    let raw = format!(r#"{{"channel_id":"{channel}","user_id":"5","timestamp":1}}"#);
    Event::from_dispatch("TYPING_START", &RawValue::from_string(raw).unwrap())
}

fn resumed() -> Event {
    Event::Resumed(Resumed {})
}

fn keys(channel: u64) -> EventKeys {
    EventKeys {
        guild_id: None,
        channel_id: Some(Id::new(channel)),
    }
}

#[derive(Default)]
struct Counter {
    typing: AtomicUsize,
    resumed: AtomicUsize,
}

#[consumer]
impl Counter {
    async fn on_typing_start(&self, _ctx: Context, _typing: TypingStart) {
        self.typing.fetch_add(1, Ordering::SeqCst);
    }
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_consumer_receives_exactly_what_it_handles_and_the_no_op_arm_spawns_nothing() {
    let group = ConsumerGroup::new();
    let counter = Arc::new(Counter::default());
    group.join_arc(Arc::clone(&counter), ConsumerOptions::default());
    let ctx = ctx();
    for _ in 0..10 {
        group.dispatch(&ctx, typing(1), EventKeys::default()).await;
        group.dispatch(&ctx, resumed(), EventKeys::default()).await;
    }
    settle().await;
    assert_eq!(counter.typing.load(Ordering::SeqCst), 10);
    assert_eq!(counter.resumed.load(Ordering::SeqCst), 0);
    let stats = group.stats();
    assert_eq!(stats.events, 20);
    assert_eq!(stats.handlers, 10, "the no-op arm starts no handler");
    assert_eq!(
        stats.tasks_spawned, 0,
        "a handler that finishes in its first poll needs no task"
    );
}

/// Its handler waits for a signal on the first event, blocks the thread for a while on the second,
/// and returns at once on the others.
struct Mixed {
    release: Arc<tokio::sync::Notify>,
    done: Arc<Mutex<Vec<u64>>>,
}

#[consumer]
impl Mixed {
    async fn on_typing_start(&self, typing: TypingStart) {
        match typing.channel_id.get() {
            1 => self.release.notified().await,
            2 => std::thread::sleep(Tasking::SLOW_FIRST_POLL * 8),
            _ => {}
        }
        self.done.lock().unwrap().push(typing.channel_id.get());
    }
}

fn mixed() -> (Mixed, Arc<tokio::sync::Notify>, Arc<Mutex<Vec<u64>>>) {
    let release = Arc::new(tokio::sync::Notify::new());
    let done = Arc::new(Mutex::new(Vec::new()));
    let consumer = Mixed {
        release: Arc::clone(&release),
        done: Arc::clone(&done),
    };
    (consumer, release, done)
}

#[tokio::test]
async fn per_event_spawns_a_task_at_the_first_wait_and_up_front_once_a_handler_blocked() {
    let (consumer, release, done) = mixed();
    let group = ConsumerGroup::new();
    group.join(consumer);
    let ctx = ctx();
    // Returns at once: finished in the dispatcher, no task.
    group.dispatch(&ctx, typing(3), EventKeys::default()).await;
    assert_eq!(*done.lock().unwrap(), [3], "done before dispatch returned");
    assert_eq!(group.stats().tasks_spawned, 0);
    // Waits: dispatch returns while it waits, and its task finishes it once released.
    group.dispatch(&ctx, typing(1), EventKeys::default()).await;
    assert_eq!(
        group.stats().tasks_spawned,
        1,
        "moved into a task at its wait"
    );
    group.dispatch(&ctx, typing(4), EventKeys::default()).await;
    assert_eq!(
        *done.lock().unwrap(),
        [3, 4],
        "the waiting handler held nothing up"
    );
    release.notify_one();
    settle().await;
    assert_eq!(*done.lock().unwrap(), [3, 4, 1]);
    // Blocks the thread before any await: one slow poll (as a preempted thread would show) does not
    // switch the kind, three close together do; after them its handlers get a task up front.
    for round in 1..=3 {
        group.dispatch(&ctx, typing(2), EventKeys::default()).await;
        assert_eq!(
            done.lock().unwrap().last(),
            Some(&2),
            "ran in the dispatcher"
        );
        assert_eq!(group.stats().tasks_spawned, 1);
        if round == 1 {
            group.dispatch(&ctx, typing(6), EventKeys::default()).await;
            assert_eq!(
                done.lock().unwrap().last(),
                Some(&6),
                "one slow poll: still no task"
            );
            assert_eq!(group.stats().tasks_spawned, 1);
        }
    }
    group.dispatch(&ctx, typing(5), EventKeys::default()).await;
    assert_eq!(
        group.stats().tasks_spawned,
        2,
        "after slow first polls the kind is spawned up front"
    );
    assert_ne!(
        done.lock().unwrap().last(),
        Some(&5),
        "not run in the dispatcher"
    );
    settle().await;
    assert_eq!(done.lock().unwrap().last(), Some(&5));
    assert_eq!(group.stats().panics, 0);
}

#[tokio::test]
async fn always_spawn_runs_no_handler_in_the_dispatcher() {
    let (consumer, release, done) = mixed();
    let group = ConsumerGroup::new();
    group.join_with(consumer, ConsumerOptions::tasking(Tasking::AlwaysSpawn));
    let ctx = ctx();
    for channel in [3, 4] {
        group
            .dispatch(&ctx, typing(channel), EventKeys::default())
            .await;
    }
    assert!(done.lock().unwrap().is_empty(), "nothing ran before a task");
    assert_eq!(group.stats().tasks_spawned, 2);
    settle().await;
    assert_eq!(done.lock().unwrap().len(), 2);
    drop(release);
}

struct Sleeper {
    done: Arc<Mutex<Vec<&'static str>>>,
}

#[consumer]
impl Sleeper {
    async fn on_typing_start(&self, typing: TypingStart) {
        if typing.channel_id.get() == 1 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            self.done.lock().unwrap().push("sleep");
        } else {
            self.done.lock().unwrap().push("fast");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn per_event_a_sleeping_handler_does_not_delay_the_next_event() {
    let done = Arc::new(Mutex::new(Vec::new()));
    let group = ConsumerGroup::new();
    group.join(Sleeper {
        done: Arc::clone(&done),
    });
    let ctx = ctx();
    let start = tokio::time::Instant::now();
    group.dispatch(&ctx, typing(1), EventKeys::default()).await;
    group.dispatch(&ctx, typing(2), EventKeys::default()).await;
    settle().await;
    assert_eq!(
        *done.lock().unwrap(),
        ["fast"],
        "the second event ran while the first slept"
    );
    assert!(start.elapsed() < Duration::from_secs(1));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(*done.lock().unwrap(), ["fast", "sleep"]);
}

struct Panicker {
    calls: AtomicUsize,
}

#[consumer]
impl Panicker {
    async fn on_typing_start(&self, typing: TypingStart) {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if typing.channel_id.get() != 7 {
            panic!("No problems here!");
        }
    }
}

#[tokio::test]
async fn ten_thousand_panicking_handlers_leave_the_consumer_serving() {
    let group = ConsumerGroup::new();
    let panicker = Arc::new(Panicker {
        calls: AtomicUsize::new(0),
    });
    group.join_arc(Arc::clone(&panicker), ConsumerOptions::default());
    let ctx = ctx();
    for _ in 0..10_000 {
        group.dispatch(&ctx, typing(1), EventKeys::default()).await;
    }
    group.dispatch(&ctx, typing(7), EventKeys::default()).await;
    for _ in 0..200 {
        if panicker.calls.load(Ordering::SeqCst) == 10_001 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        panicker.calls.load(Ordering::SeqCst),
        10_001,
        "it still serves after 10,000 panics"
    );
    assert_eq!(group.stats().panics, 10_000);
}

struct Recorder {
    seen: Mutex<Vec<(u64, u64)>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

#[consumer]
impl Recorder {
    async fn on_typing_start(&self, typing: TypingStart) {
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(running, Ordering::SeqCst);
        let delay = typing.timestamp % 3;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        self.seen
            .lock()
            .unwrap()
            .push((typing.channel_id.get(), typing.user_id.get()));
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn ordered_keeps_per_key_order_while_keys_overlap() {
    let group = ConsumerGroup::new();
    let recorder = Arc::new(Recorder {
        seen: Mutex::default(),
        running: AtomicUsize::new(0),
        max_running: AtomicUsize::new(0),
    });
    group.join_arc(
        Arc::clone(&recorder),
        ConsumerOptions::tasking(Tasking::Ordered(OrderKey::Channel)),
    );
    assert!(group.needs_keys());
    let ctx = ctx();
    let mut rng = fastrand::Rng::with_seed(7);
    for n in 1..=10_000u64 {
        let channel = rng.u64(1..=8);
        let raw = format!(
            r#"{{"channel_id":"{channel}","user_id":"{n}","timestamp":{}}}"#,
            rng.u64(0..1000)
        );
        let event = Event::from_dispatch("TYPING_START", &RawValue::from_string(raw).unwrap());
        group.dispatch(&ctx, event, keys(channel)).await;
    }
    for _ in 0..100_000 {
        if recorder.seen.lock().unwrap().len() == 10_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen = recorder.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 10_000, "every event ran");
    for channel in 1..=8 {
        let order: Vec<u64> = seen
            .iter()
            .filter(|(c, _)| *c == channel)
            .map(|(_, n)| *n)
            .collect();
        assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "channel {channel} ran out of order"
        );
    }
    assert!(
        recorder.max_running.load(Ordering::SeqCst) > 1,
        "different keys ran in parallel"
    );
}

#[tokio::test]
async fn inline_runs_before_dispatch_returns() {
    let group = ConsumerGroup::new();
    let counter = Arc::new(Counter::default());
    group.join_arc(
        Arc::clone(&counter),
        ConsumerOptions::tasking(Tasking::Inline),
    );
    group
        .dispatch(&ctx(), typing(1), EventKeys::default())
        .await;
    assert_eq!(counter.typing.load(Ordering::SeqCst), 1);
    assert_eq!(group.stats().tasks_spawned, 0);
}

#[tokio::test]
async fn consumers_join_and_leave_at_run_time() {
    let group = ConsumerGroup::new();
    let first = Arc::new(Counter::default());
    let second = Arc::new(Counter::default());
    let inline = ConsumerOptions::tasking(Tasking::Inline);
    let first_id = group.join_arc(Arc::clone(&first), inline);
    group
        .dispatch(&ctx(), typing(1), EventKeys::default())
        .await;
    let second_id = group.join_arc(Arc::clone(&second), inline);
    group
        .dispatch(&ctx(), typing(1), EventKeys::default())
        .await;
    assert!(group.leave(first_id));
    assert!(!group.leave(first_id));
    group
        .dispatch(&ctx(), typing(1), EventKeys::default())
        .await;
    assert_eq!(first.typing.load(Ordering::SeqCst), 2);
    assert_eq!(second.typing.load(Ordering::SeqCst), 2);
    assert!(group.leave(second_id));
    assert!(
        !group.wants(EventKind::TypingStart),
        "nobody handles it any more"
    );
}

#[tokio::test]
async fn a_bound_on_in_flight_handlers_makes_dispatch_wait() {
    let group = ConsumerGroup::new();
    let done = Arc::new(Mutex::new(Vec::new()));
    group.join_with(
        Sleeper {
            done: Arc::clone(&done),
        },
        ConsumerOptions::default().max_in_flight(1),
    );
    let ctx = ctx();
    group.dispatch(&ctx, typing(1), EventKeys::default()).await; // sleeps 3 s, holds the only permit
    let second = tokio::time::timeout(
        Duration::from_millis(200),
        group.dispatch(&ctx, typing(2), EventKeys::default()),
    );
    assert!(
        second.await.is_err(),
        "the second dispatch waits for a permit"
    );
}

#[tokio::test]
async fn subscriptions_get_what_they_asked_for() {
    let group = ConsumerGroup::new();
    let mut subscription = group.subscribe(EventSet::EMPTY.with(EventKind::TypingStart));
    assert!(group.wants(EventKind::TypingStart));
    let waiter = tokio::spawn(async move {
        subscription
            .wait_for(
                Duration::from_secs(5),
                |event| matches!(event, Event::TypingStart(t) if t.channel_id.get() == 3),
            )
            .await
    });
    tokio::task::yield_now().await;
    let ctx = ctx();
    group.dispatch(&ctx, resumed(), EventKeys::default()).await;
    group.dispatch(&ctx, typing(2), EventKeys::default()).await;
    group.dispatch(&ctx, typing(3), EventKeys::default()).await;
    let event = waiter.await.unwrap().expect("the awaited event");
    assert_eq!(event.kind(), EventKind::TypingStart);
    settle().await;
    assert!(
        !group.wants(EventKind::TypingStart),
        "a dropped subscription unsubscribes"
    );
}

struct Both {
    a: Counter,
    log: Mutex<Vec<&'static str>>,
}

#[consumer]
impl Both {
    #[on(TYPING_START)]
    async fn first(&self, _t: TypingStart) {
        self.log.lock().unwrap().push("first");
    }

    async fn on_typing_start(&self, _t: TypingStart) -> Result<(), String> {
        self.log.lock().unwrap().push("second");
        Err("an error is logged, not fatal".into())
    }

    async fn on_event(&self, event: Event) {
        assert_ne!(event.kind(), EventKind::TypingStart);
        self.a.resumed.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn several_handlers_of_one_event_each_run_and_on_event_takes_the_rest() {
    let group = ConsumerGroup::new();
    let both = Arc::new(Both {
        a: Counter::default(),
        log: Mutex::default(),
    });
    group.join_arc(Arc::clone(&both), ConsumerOptions::tasking(Tasking::Inline));
    group
        .dispatch(&ctx(), typing(1), EventKeys::default())
        .await;
    group
        .dispatch(&ctx(), resumed(), EventKeys::default())
        .await;
    let mut log = both.log.lock().unwrap().clone();
    log.sort_unstable();
    assert_eq!(log, ["first", "second"]);
    assert_eq!(both.a.resumed.load(Ordering::SeqCst), 1);
    assert_eq!(<Both as Consumer>::EVENTS, EventSet::ALL);
}

struct HalfPanics {
    ran: AtomicUsize,
}

#[consumer]
impl HalfPanics {
    #[on(TYPING_START)]
    async fn boom(&self, _t: TypingStart) {
        panic!("boom");
    }

    async fn on_typing_start(&self, _t: TypingStart) {
        self.ran.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_panic_among_several_handlers_of_one_event_is_counted_and_the_others_run() {
    let group = ConsumerGroup::new();
    let consumer = Arc::new(HalfPanics {
        ran: AtomicUsize::new(0),
    });
    group.join_arc(
        Arc::clone(&consumer),
        ConsumerOptions::tasking(Tasking::Inline),
    );
    group
        .dispatch(&ctx(), typing(1), EventKeys::default())
        .await;
    assert_eq!(consumer.ran.load(Ordering::SeqCst), 1);
    assert_eq!(
        group.stats().panics,
        1,
        "re-raised once, logged with the event and shard"
    );
}

#[derive(crate::Consumer)]
struct Cogs {
    counter: Counter,
    sleeper: Sleeper,
}

#[tokio::test]
async fn derived_consumers_give_each_field_its_events() {
    let done = Arc::new(Mutex::new(Vec::new()));
    let cogs = Arc::new(Cogs {
        counter: Counter::default(),
        sleeper: Sleeper {
            done: Arc::clone(&done),
        },
    });
    let group = ConsumerGroup::new();
    group.join_arc(Arc::clone(&cogs), ConsumerOptions::tasking(Tasking::Inline));
    group
        .dispatch(&ctx(), typing(2), EventKeys::default())
        .await;
    assert_eq!(cogs.counter.typing.load(Ordering::SeqCst), 1);
    assert_eq!(*done.lock().unwrap(), ["fast"]);
    assert_eq!(
        <Cogs as Consumer>::EVENTS,
        EventSet::EMPTY.with(EventKind::TypingStart)
    );
}

#[test]
fn keys_come_from_the_raw_payload() {
    let raw = RawValue::from_string(r#"{"id":"9","guild_id":"4","name":"x"}"#.into()).unwrap();
    let keys = EventKeys::scan("CHANNEL_UPDATE", &raw);
    assert_eq!(
        (keys.guild_id.map(Id::get), keys.channel_id.map(Id::get)),
        (Some(4), Some(9))
    );
    let keys = EventKeys::scan(
        "GUILD_UPDATE",
        &RawValue::from_string(r#"{"id":"4"}"#.into()).unwrap(),
    );
    assert_eq!(keys.guild_id.map(Id::get), Some(4));
    let keys = EventKeys::scan(
        "MESSAGE_CREATE",
        &RawValue::from_string(r#"{"id":"1","channel_id":"2"}"#.into()).unwrap(),
    );
    assert_eq!(keys.channel_id.map(Id::get), Some(2));
}

#[tokio::test(start_paused = true)]
async fn a_consumer_whose_handlers_hang_loses_its_events_not_the_shard() {
    let group = ConsumerGroup::new();
    let done = Arc::new(Mutex::new(Vec::new()));
    let options = ConsumerOptions::default()
        .max_in_flight(1)
        .max_wait(Duration::from_millis(100));
    group.join_with(
        Sleeper {
            done: Arc::clone(&done),
        },
        options,
    );
    let counter = Arc::new(Counter::default());
    group.join_arc(
        Arc::clone(&counter),
        ConsumerOptions::tasking(Tasking::Inline),
    );
    let ctx = ctx();
    group.dispatch(&ctx, typing(1), EventKeys::default()).await; // the sleeper holds the only slot for 3 s
    let start = tokio::time::Instant::now();
    group.dispatch(&ctx, typing(2), EventKeys::default()).await; // waits max_wait, then drops it
    assert!(
        start.elapsed() >= Duration::from_millis(100) && start.elapsed() < Duration::from_secs(1)
    );
    let start = tokio::time::Instant::now();
    group.dispatch(&ctx, typing(2), EventKeys::default()).await; // stuck: dropped at once
    assert!(start.elapsed() < Duration::from_millis(10));
    assert_eq!(group.stats().dropped, 2);
    assert_eq!(
        counter.typing.load(Ordering::SeqCst),
        3,
        "the other consumer got every event"
    );
    tokio::time::sleep(Duration::from_secs(4)).await; // the sleeper finishes: a slot is free again
    group.dispatch(&ctx, typing(2), EventKeys::default()).await;
    settle().await;
    assert_eq!(*done.lock().unwrap(), ["sleep", "fast"]);
    assert_eq!(group.stats().dropped, 2);
}
