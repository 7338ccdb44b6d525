//! `ConsumerGroup`: the registry of consumers and subscriptions, and the hand-off to handler tasks.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use futures::FutureExt;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::Instrument;
use twilight_model::gateway::Intents;
use twilight_model::id::Id;
use twilight_model::id::marker::{ChannelMarker, GuildMarker};

use super::ordered::Queues;
use super::panic_message;
use super::subscribe::{Subscriber, Subscription};
use crate::__private::{HandlerFuture, Identity};
use crate::{Consumer, Context, Event, EventKind, EventSet};

/// How a consumer's handlers run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tasking {
    /// A task per event (the default, as in Nostrum): a slow handler delays no other event, a panic is
    /// caught and logged with the event's name and shard.
    ///
    /// The task is spawned lazily: the dispatcher polls the handler once, and a handler that
    /// finishes in that poll (most do: count, update a map, send on a channel) costs no task. At
    /// its first `.await` that waits, it moves into its own task and the dispatcher goes on. A
    /// handler whose first polls run longer than [`Tasking::SLOW_FIRST_POLL`] (blocking work
    /// before its first await) three times close together gets a task spawned up front for that
    /// event kind from then on (one slow poll may be the thread's preemption, not the handler).
    /// [`Tasking::AlwaysSpawn`] spawns every time.
    #[default]
    PerEvent,
    /// A task per event, spawned before the handler runs at all: for handlers that block before
    /// their first await, or that must never run on the dispatcher's task.
    AlwaysSpawn,
    /// Events with the same key run one after another, in gateway order; different keys in parallel.
    Ordered(OrderKey),
    /// In the dispatcher itself, before the next event: for the cheapest handlers only.
    Inline,
}

impl Tasking {
    /// How long a [`Tasking::PerEvent`] handler's first poll may run in the dispatcher before its
    /// consumer's handlers of that event kind get a task spawned up front.
    pub const SLOW_FIRST_POLL: Duration = Duration::from_micros(250);
}

/// What [`Tasking::Ordered`] orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OrderKey {
    /// The event's channel (events without one share one queue per shard).
    Channel,
    /// The event's guild (events without one share one queue per shard).
    Guild,
    /// The shard: all of a shard's events in order.
    Shard,
}

/// How a consumer joins a group.
#[derive(Clone, Copy, Debug)]
pub struct ConsumerOptions {
    /// How its handlers run.
    pub tasking: Tasking,
    /// At most this many of its handlers in flight; past it, the dispatcher waits for one to finish
    /// (a flood waits instead of growing memory). `None`: no bound.
    pub max_in_flight: Option<usize>,
    /// How long the dispatcher waits for a handler of this consumer to finish when the bound is
    /// reached (default 1 s). Past it the consumer counts as stuck (its handlers hang): its events
    /// are dropped with a warning and counted in [`DispatchStats::dropped`] until one of its handlers
    /// finishes, so a hung consumer never stalls the shard and the other consumers.
    pub max_wait: Duration,
}

impl Default for ConsumerOptions {
    fn default() -> Self {
        Self::tasking(Tasking::default())
    }
}

impl ConsumerOptions {
    /// The given tasking, no bound.
    pub fn tasking(tasking: Tasking) -> Self {
        Self {
            tasking,
            max_in_flight: None,
            max_wait: Duration::from_secs(1),
        }
    }

    /// How long to wait for a free slot before the consumer counts as stuck.
    #[must_use]
    pub fn max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Bounds the handlers in flight.
    #[must_use]
    pub fn max_in_flight(mut self, max: usize) -> Self {
        self.max_in_flight = Some(max.max(1));
        self
    }
}

/// Names a consumer in its group, to make it leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConsumerId(u64);

/// The guild and channel an event belongs to, for [`Tasking::Ordered`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventKeys {
    /// The event's guild.
    pub guild_id: Option<Id<GuildMarker>>,
    /// The event's channel.
    pub channel_id: Option<Id<ChannelMarker>>,
}

impl EventKeys {
    /// Reads the keys from a dispatch's raw JSON (`d`); `name` is its `t`. For channel and thread
    /// events the channel is the payload's `id`, for guild events the guild is.
    pub fn scan(name: &str, raw: &RawValue) -> Self {
        #[derive(Deserialize)]
        struct Keys {
            #[serde(default)]
            id: Option<Id<ChannelMarker>>,
            #[serde(default)]
            guild_id: Option<Id<GuildMarker>>,
            #[serde(default)]
            channel_id: Option<Id<ChannelMarker>>,
        }
        let Ok(keys) = serde_json::from_str::<Keys>(raw.get()) else {
            return Self::default();
        };
        let own_id = keys.id;
        if matches!(name, "GUILD_CREATE" | "GUILD_UPDATE" | "GUILD_DELETE") {
            return Self {
                guild_id: own_id.map(Id::cast),
                channel_id: None,
            };
        }
        let channel_id = if name.starts_with("CHANNEL_") || name.starts_with("THREAD_") {
            keys.channel_id.or(own_id)
        } else {
            keys.channel_id
        };
        Self {
            guild_id: keys.guild_id,
            channel_id,
        }
    }
}

/// Counts of what dispatch did, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchStats {
    /// Events handed to [`ConsumerGroup::dispatch`].
    pub events: u64,
    /// Handler futures started (a consumer that does not handle an event starts none).
    pub handlers: u64,
    /// Tasks spawned for handlers.
    pub tasks_spawned: u64,
    /// Handlers that panicked.
    pub panics: u64,
    /// Events not handed to a consumer whose handler slots all hung (see
    /// [`ConsumerOptions::max_wait`]).
    pub dropped: u64,
}

#[derive(Default)]
struct Stats {
    events: AtomicU64,
    handlers: AtomicU64,
    tasks_spawned: AtomicU64,
    panics: Arc<AtomicU64>,
    dropped: AtomicU64,
}

/// Type-erased consumer.
trait DynConsumer: Send + Sync {
    fn dispatch(&self, ctx: &Context, event: Event) -> Option<HandlerFuture>;
}

struct Holder<C>(Arc<C>);

impl<C: Consumer> DynConsumer for Holder<C> {
    fn dispatch(&self, ctx: &Context, event: Event) -> Option<HandlerFuture> {
        C::__dispatch(&self.0, Identity, ctx, event)
    }
}

#[derive(Clone)]
pub(super) struct Registered {
    id: ConsumerId,
    events: EventSet,
    intents: Intents,
    consumer: Arc<dyn DynConsumer>,
    tasking: Tasking,
    permits: Option<Arc<Semaphore>>,
    max_wait: Duration,
    /// Set when a wait for a slot timed out; cleared when a slot is free again.
    stuck: Arc<AtomicBool>,
    queues: Option<Arc<Queues>>,
    /// The kinds whose handlers ran longer than [`Tasking::SLOW_FIRST_POLL`] in their first polls,
    /// again and again: these are spawned up front.
    slow: Arc<KindFlags>,
}

/// Per event kind, how often a handler's first poll ran past [`Tasking::SLOW_FIRST_POLL`], and the
/// kinds that get their task up front because of it.
///
/// One slow poll is not enough: the thread may have been preempted during it. Each slow poll adds
/// [`SLOW_WEIGHT`] to the kind's score and each fast one takes 1 off, so three slow polls close
/// together (a handler that blocks every time, or every few events) switch the kind, while the odd
/// preemption among thousands of fast polls decays away.
struct KindFlags {
    spawn: [AtomicU64; 2],
    score: [AtomicU8; 128],
}

/// What a slow first poll adds to its kind's score.
const SLOW_WEIGHT: u8 = 16;
/// The score at which a kind gets its task up front: three slow polls close together.
const SLOW_LIMIT: u8 = 3 * SLOW_WEIGHT - 8;

impl Default for KindFlags {
    fn default() -> Self {
        Self {
            spawn: Default::default(),
            score: std::array::from_fn(|_| AtomicU8::new(0)),
        }
    }
}

impl KindFlags {
    fn contains(&self, kind: EventKind) -> bool {
        let index = kind as usize;
        self.spawn[index / 64].load(Ordering::Relaxed) & (1 << (index % 64)) != 0
    }

    /// Records a first poll; returns whether this one switched the kind to a task up front.
    fn record(&self, kind: EventKind, slow: bool) -> bool {
        let index = kind as usize;
        let score = &self.score[index];
        // Load and store, not an atomic update: a lost count between two shards only nudges a
        // heuristic.
        let now = score.load(Ordering::Relaxed);
        if slow {
            let next = now.saturating_add(SLOW_WEIGHT);
            score.store(next, Ordering::Relaxed);
            if next >= SLOW_LIMIT && !self.contains(kind) {
                self.spawn[index / 64].fetch_or(1 << (index % 64), Ordering::Relaxed);
                return true;
            }
        } else if now > 0 {
            score.store(now - 1, Ordering::Relaxed);
        }
        false
    }
}

const _: () = assert!(EventKind::COUNT <= 128, "KindFlags holds at most 128 kinds");

struct Snapshot {
    consumers: Vec<Registered>,
    /// What the consumers and the subscriptions handle.
    events: EventSet,
    intents: Intents,
    needs_keys: bool,
    /// What the subscriptions handle.
    subscribed: EventSet,
}

impl Registered {
    /// A slot for one more handler: waits up to `max_wait`, or not at all once the consumer is stuck.
    async fn slot(
        &self,
        permits: &Arc<Semaphore>,
        kind: EventKind,
    ) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(permits).try_acquire_owned() {
            self.stuck.store(false, Ordering::Relaxed);
            return Some(permit);
        }
        if !self.stuck.load(Ordering::Relaxed) {
            match tokio::time::timeout(self.max_wait, Arc::clone(permits).acquire_owned()).await {
                Ok(Ok(permit)) => return Some(permit),
                Ok(Err(_)) => return None,
                Err(_) => {
                    self.stuck.store(true, Ordering::Relaxed);
                    tracing::warn!(
                        event = kind.name(),
                        max_wait = ?self.max_wait,
                        "every handler slot of a consumer stayed busy: its handlers hang; \
                         dropping its events until one finishes"
                    );
                }
            }
        }
        None
    }
}

impl Default for Snapshot {
    fn default() -> Self {
        Self {
            consumers: Vec::new(),
            events: EventSet::EMPTY,
            intents: Intents::empty(),
            needs_keys: false,
            subscribed: EventSet::EMPTY,
        }
    }
}

pub(super) struct Inner {
    snapshot: ArcSwap<Snapshot>,
    /// The snapshot's `events`, as two words: [`ConsumerGroup::wants`] runs for every frame (the
    /// shard's filter) and a plain load costs less than a guard on the snapshot.
    events: [AtomicU64; 2],
    /// Serialises writers of the snapshot; readers never wait.
    writer: Mutex<()>,
    pub(super) subscribers: Mutex<Vec<Subscriber>>,
    next_id: AtomicU64,
    stats: Stats,
}

/// Every consumer of a client, and the subscriptions awaiting events. Broadcasts each event to every
/// consumer that handles it. Consumers join and leave at run time; clones share the group.
///
/// ```
/// use nostrum_core::prelude::*;
/// use nostrum_core::dispatch::ConsumerGroup;
///
/// struct Bot;
/// #[consumer]
/// impl Bot {
///     async fn on_message_create(&self, _msg: Message) {}
/// }
///
/// let group = ConsumerGroup::new();
/// let id = group.join(Bot);
/// assert!(group.events().contains(EventKind::MessageCreate));
/// assert!(group.leave(id));
/// assert!(group.events().is_empty());
/// ```
#[derive(Clone)]
pub struct ConsumerGroup(pub(super) Arc<Inner>);

impl std::fmt::Debug for ConsumerGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.snapshot();
        f.debug_struct("ConsumerGroup")
            .field("consumers", &snapshot.consumers.len())
            .field("events", &snapshot.events)
            .finish()
    }
}

impl Default for ConsumerGroup {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsumerGroup {
    /// An empty group.
    pub fn new() -> Self {
        Self(Arc::new(Inner {
            snapshot: ArcSwap::default(),
            events: [AtomicU64::new(0), AtomicU64::new(0)],
            writer: Mutex::new(()),
            subscribers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            stats: Stats::default(),
        }))
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.0.snapshot.load_full()
    }

    /// Adds a consumer with the default options (a task per event, no bound).
    pub fn join<C: Consumer>(&self, consumer: C) -> ConsumerId {
        self.join_with(consumer, ConsumerOptions::default())
    }

    /// Adds a consumer.
    pub fn join_with<C: Consumer>(&self, consumer: C, options: ConsumerOptions) -> ConsumerId {
        self.join_arc(Arc::new(consumer), options)
    }

    /// Adds a consumer that the caller keeps a handle to.
    pub fn join_arc<C: Consumer>(&self, consumer: Arc<C>, options: ConsumerOptions) -> ConsumerId {
        let id = ConsumerId(self.0.next_id.fetch_add(1, Ordering::Relaxed));
        let registered = Registered {
            id,
            events: C::EVENTS,
            intents: C::INTENTS,
            consumer: Arc::new(Holder(consumer)),
            tasking: options.tasking,
            permits: options
                .max_in_flight
                .map(|max| Arc::new(Semaphore::new(max))),
            max_wait: options.max_wait,
            stuck: Arc::default(),
            queues: matches!(options.tasking, Tasking::Ordered(_)).then(|| Arc::new(Queues::new())),
            slow: Arc::default(),
        };
        self.update(|consumers| consumers.push(registered));
        id
    }

    /// Removes a consumer; its handlers in flight finish. Returns whether it was in the group.
    pub fn leave(&self, id: ConsumerId) -> bool {
        let mut found = false;
        self.update(|consumers| {
            let before = consumers.len();
            consumers.retain(|registered| registered.id != id);
            found = consumers.len() != before;
        });
        found
    }

    /// Rebuilds the snapshot after a change of consumers or subscriptions.
    pub(super) fn update(&self, change: impl FnOnce(&mut Vec<Registered>)) {
        let _writer = self.0.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let mut consumers = self.0.snapshot.load().consumers.clone();
        change(&mut consumers);
        let subscribed = self
            .0
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .fold(EventSet::EMPTY, |set, subscriber| {
                set.union(subscriber.events)
            });
        let events = consumers
            .iter()
            .fold(subscribed, |set, registered| set.union(registered.events));
        let intents = consumers
            .iter()
            .fold(Intents::empty(), |set, registered| set | registered.intents);
        let needs_keys = consumers.iter().any(|registered| {
            matches!(
                registered.tasking,
                Tasking::Ordered(OrderKey::Channel | OrderKey::Guild)
            )
        });
        self.0.snapshot.store(Arc::new(Snapshot {
            consumers,
            events,
            intents,
            needs_keys,
            subscribed,
        }));
        // After the snapshot: a reader that sees a kind here finds its consumer in the snapshot.
        let bits = events.bits();
        self.0.events[0].store(bits as u64, Ordering::Release);
        self.0.events[1].store((bits >> 64) as u64, Ordering::Release);
    }

    /// The events some consumer or subscription handles: the gateway parses only these.
    pub fn events(&self) -> EventSet {
        let low = self.0.events[0].load(Ordering::Acquire);
        let high = self.0.events[1].load(Ordering::Acquire);
        EventSet::from_bits(u128::from(low) | (u128::from(high) << 64))
    }

    /// Whether some consumer or subscription handles `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.events().contains(kind)
    }

    /// The union of the intents the consumers need.
    pub fn intents(&self) -> Intents {
        self.0.snapshot.load().intents
    }

    /// Whether some consumer orders by guild or channel, so that dispatch needs [`EventKeys`].
    pub fn needs_keys(&self) -> bool {
        self.0.snapshot.load().needs_keys
    }

    /// How many consumers are in the group.
    pub fn len(&self) -> usize {
        self.0.snapshot.load().consumers.len()
    }

    /// Whether the group has no consumer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts of what dispatch did so far.
    pub fn stats(&self) -> DispatchStats {
        let stats = &self.0.stats;
        DispatchStats {
            events: stats.events.load(Ordering::Relaxed),
            handlers: stats.handlers.load(Ordering::Relaxed),
            tasks_spawned: stats.tasks_spawned.load(Ordering::Relaxed),
            panics: stats.panics.load(Ordering::Relaxed),
            dropped: stats.dropped.load(Ordering::Relaxed),
        }
    }

    /// A stream of the events of `events` from now on, to await a reply (like Nostrum's
    /// `ConsumerGroup.join`, serenity's collectors, twilight-standby). It ends when dropped.
    pub fn subscribe(&self, events: EventSet) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        self.0
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Subscriber { events, tx });
        self.update(|_| {});
        Subscription::new(rx, Arc::downgrade(&self.0))
    }

    /// Hands `event` to every consumer that handles it, and to the subscriptions. Returns once each
    /// handler has finished or is in its own task (see [`Tasking`]); waits while a consumer's bound
    /// on handlers in flight is reached.
    ///
    /// A handler's panic or error is logged with the event's name and shard. Handlers run inside a
    /// `handler` span (`event`, `shard`) only where a subscriber enables DEBUG for this module (e.g.
    /// `RUST_LOG=info,nostrum_core::dispatch=debug`): a span per event would cost more than a small
    /// handler.
    pub async fn dispatch(&self, ctx: &Context, event: Event, keys: EventKeys) {
        let stats = &self.0.stats;
        stats.events.fetch_add(1, Ordering::Relaxed);
        let kind = event.kind();
        // What no one handles is dropped here, without touching the snapshot.
        if !self.events().contains(kind) {
            return;
        }
        let snapshot = self.snapshot();
        let event = if snapshot.subscribed.contains(kind) {
            let consumers_want = snapshot
                .consumers
                .iter()
                .any(|registered| registered.events.contains(kind));
            match self.feed_subscribers(kind, event, consumers_want) {
                Some(event) => event,
                None => return,
            }
        } else {
            event
        };
        let takes = |registered: &&Registered| registered.events.contains(kind);
        let takers = snapshot.consumers.iter().filter(takes).count();
        let mut share = crate::__private::Share::new(event, takers);
        let shard = ctx.shard().id().number;
        let spawn = |future, permit| {
            stats.tasks_spawned.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(guard(
                future,
                kind,
                shard,
                permit,
                Arc::clone(&stats.panics),
            ));
        };
        for registered in snapshot.consumers.iter().filter(takes) {
            let Some(future) = registered.consumer.dispatch(ctx, share.next()) else {
                continue;
            };
            stats.handlers.fetch_add(1, Ordering::Relaxed);
            let permit = match &registered.permits {
                Some(permits) => match registered.slot(permits, kind).await {
                    Some(permit) => Some(permit),
                    None => {
                        stats.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                },
                None => None,
            };
            match registered.tasking {
                Tasking::PerEvent if !registered.slow.contains(kind) => {
                    let started = Instant::now();
                    let polled = poll_once(future, kind, shard);
                    let took = started.elapsed();
                    if registered
                        .slow
                        .record(kind, took > Tasking::SLOW_FIRST_POLL)
                    {
                        tracing::warn!(
                            event = kind.name(),
                            shard,
                            ?took,
                            "a handler blocked the dispatcher before its first await, again and \
                             again; its handlers of this event get a task up front from now on"
                        );
                    }
                    match polled {
                        FirstPoll::Done { panicked } => {
                            if panicked {
                                stats.panics.fetch_add(1, Ordering::Relaxed);
                            }
                            drop(permit);
                        }
                        FirstPoll::Pending(future) => spawn(future, permit),
                    }
                }
                Tasking::PerEvent | Tasking::AlwaysSpawn => spawn(future, permit),
                Tasking::Inline => {
                    // In the dispatcher's own future: no task, no reference to the counter to keep.
                    if run_caught(future, kind, shard).await {
                        stats.panics.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(permit);
                }
                Tasking::Ordered(order) => {
                    let guarded = guard(future, kind, shard, permit, Arc::clone(&stats.panics));
                    let key = match order {
                        OrderKey::Channel => keys.channel_id.map_or(0, Id::get),
                        OrderKey::Guild => keys.guild_id.map_or(0, Id::get),
                        OrderKey::Shard => 0,
                    };
                    if let Some(queues) = &registered.queues
                        && queues.push((u64::from(shard), key), Box::pin(guarded))
                    {
                        stats.tasks_spawned.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }

    /// Sends the event to the subscriptions that want it; returns it for the consumers (or `None` when
    /// no consumer wants it).
    fn feed_subscribers(
        &self,
        kind: EventKind,
        event: Event,
        consumers_want: bool,
    ) -> Option<Event> {
        let mut subscribers = self
            .0
            .subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let before = subscribers.len();
        subscribers.retain(|subscriber| !subscriber.tx.is_closed());
        let mut event = Some(event);
        let wanting: Vec<usize> = (0..subscribers.len())
            .filter(|index| subscribers[*index].events.contains(kind))
            .collect();
        for (position, index) in wanting.iter().enumerate() {
            let last = position + 1 == wanting.len() && !consumers_want;
            let payload = if last { event.take() } else { event.clone() };
            if let Some(payload) = payload {
                let _ = subscribers[*index].tx.send(payload);
            }
        }
        let changed = subscribers.len() != before;
        drop(subscribers);
        if changed {
            self.update(|_| {});
        }
        if consumers_want { event } else { None }
    }
}

/// What the dispatcher's poll of a handler left.
enum FirstPoll {
    /// The handler finished (or panicked) in the poll.
    Done { panicked: bool },
    /// It waits: the rest runs in a task.
    Pending(HandlerFuture),
}

/// Polls a handler once on the dispatcher's task, with a waker that does nothing: if it is pending,
/// the task it moves into polls it again at once and its wakers are registered there. A panic is
/// caught and logged with the event's name and shard, as in [`run_caught`].
fn poll_once(mut future: HandlerFuture, kind: EventKind, shard: u32) -> FirstPoll {
    let span = tracing::debug_span!("handler", event = kind.name(), shard);
    let _entered = (!span.is_disabled()).then(|| span.enter());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(())) => FirstPoll::Done { panicked: false },
        Ok(Poll::Pending) => FirstPoll::Pending(future),
        Err(panic) => {
            tracing::error!(
                event = kind.name(),
                shard,
                panic = panic_message(&*panic),
                "event handler panicked"
            );
            FirstPoll::Done { panicked: true }
        }
    }
}

/// Runs a handler's future in its own task, catching and logging a panic with the event's name and
/// shard, and counting it.
async fn guard(
    future: HandlerFuture,
    kind: EventKind,
    shard: u32,
    permit: Option<OwnedSemaphorePermit>,
    panics: Arc<AtomicU64>,
) {
    if run_caught(future, kind, shard).await {
        panics.fetch_add(1, Ordering::Relaxed);
    }
    drop(permit);
}

/// Runs a handler's future; a panic is caught and logged with the event's name and shard. Returns
/// whether it panicked.
///
/// The handler runs in a `handler` span (`event`, `shard`) only when a subscriber enables it, at
/// DEBUG level (e.g. `RUST_LOG=info,nostrum_core::dispatch=debug`): creating and entering a span for
/// every event costs more than a small handler, and the panic log names the event and shard anyway.
async fn run_caught(future: HandlerFuture, kind: EventKind, shard: u32) -> bool {
    let span = tracing::debug_span!("handler", event = kind.name(), shard);
    let caught = AssertUnwindSafe(future).catch_unwind();
    let result = if span.is_disabled() {
        caught.await
    } else {
        caught.instrument(span).await
    };
    let Err(panic) = result else {
        return false;
    };
    tracing::error!(
        event = kind.name(),
        shard,
        panic = panic_message(&*panic),
        "event handler panicked"
    );
    true
}
