//! Runtime helpers for the code the macros generate. Not public API: names may change at any time.

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures::FutureExt;

pub use crate::event::kinds::{self, EventPayload};
use crate::{Context, Event, EventKind};

/// A handler's future, boxed so that the dispatcher can spawn it.
pub type HandlerFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Finds a consumer inside what the runtime holds (itself, or a field of a composed consumer).
pub trait Project<O>: Copy + Send + Sync + 'static {
    /// The consumer found.
    type Target;
    /// Finds it.
    fn get<'a>(&self, owner: &'a O) -> &'a Self::Target;
}

/// The consumer is what the runtime holds.
#[derive(Clone, Copy, Debug)]
pub struct Identity;

impl<O> Project<O> for Identity {
    type Target = O;
    fn get<'a>(&self, owner: &'a O) -> &'a O {
        owner
    }
}

/// A field of what `P` finds.
pub struct Compose<P, M: 'static, F: 'static> {
    outer: P,
    field: fn(&M) -> &F,
}

impl<P, M, F> Compose<P, M, F> {
    /// `field` of what `outer` finds.
    pub fn new(outer: P, field: fn(&M) -> &F) -> Self {
        Self { outer, field }
    }
}

impl<P: Copy, M, F> Clone for Compose<P, M, F> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P: Copy, M, F> Copy for Compose<P, M, F> {}

impl<P, M, F> std::fmt::Debug for Compose<P, M, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Compose")
    }
}

impl<O, P, M, F> Project<O> for Compose<P, M, F>
where
    P: Project<O, Target = M>,
    M: 'static,
    F: 'static,
{
    type Target = F;
    fn get<'a>(&self, owner: &'a O) -> &'a F {
        (self.field)(self.outer.get(owner))
    }
}

/// What a handler may return: `()` or `Result<(), E>` with `E: Display`. An error is logged with the
/// event's name; it is never fatal.
#[diagnostic::on_unimplemented(
    message = "an event handler returns `()` or `Result<(), E>` where `E: Display`, not `{Self}`",
    label = "this handler's return type"
)]
pub trait HandlerOutput {
    /// Logs an error, if any, with the event's name and shard.
    fn report(self, kind: EventKind, shard: u32);
}

impl HandlerOutput for () {
    fn report(self, _kind: EventKind, _shard: u32) {}
}

impl<E: Display> HandlerOutput for Result<(), E> {
    fn report(self, kind: EventKind, shard: u32) {
        if let Err(err) = self {
            tracing::error!(event = kind.name(), shard, error = %err, "event handler returned an error");
        }
    }
}

/// The number of the shard an event came from, for the log.
pub fn shard(ctx: &Context) -> u32 {
    ctx.shard().id().number
}

/// Boxes a handler's future and reports its result (an error is logged with the event's name and
/// shard).
pub fn handler<F>(kind: EventKind, shard: u32, future: F) -> HandlerFuture
where
    F: Future + Send + 'static,
    F::Output: HandlerOutput,
{
    Box::pin(async move { future.await.report(kind, shard) })
}

/// Runs several handlers of one event concurrently in one task; a panic in one is caught and the
/// others run on. Once all are done, the panics are raised again as one (their messages joined), so
/// that the dispatcher logs it with the event's name and shard and counts it once.
pub fn join(mut futures: Vec<HandlerFuture>) -> Option<HandlerFuture> {
    match futures.len() {
        0 => None,
        1 => futures.pop(),
        _ => Some(Box::pin(async move {
            let guarded = futures
                .into_iter()
                .map(|future| AssertUnwindSafe(future).catch_unwind());
            let panics: Vec<String> = futures::future::join_all(guarded)
                .await
                .into_iter()
                .filter_map(Result::err)
                .map(|panic| crate::dispatch::panic_message(&*panic).to_owned())
                .collect();
            if !panics.is_empty() {
                std::panic::resume_unwind(Box::new(panics.join("; ")));
            }
        })),
    }
}

/// Checks a handler's payload type against its event's: `E` is what the event delivers, `U` what the
/// handler declared.
#[diagnostic::on_unimplemented(
    message = "wrong payload type: this event delivers `{Self}`, not `{U}`",
    label = "expected `{Self}`"
)]
pub trait IsPayload<U> {
    /// The payload, as the handler's type.
    fn into_payload(self) -> U;
}

impl<T> IsPayload<T> for T {
    fn into_payload(self) -> T {
        self
    }
}

/// Passes the payload `event` delivers to a handler that declared `U`.
pub fn payload<E: IsPayload<U>, U>(event: E) -> U {
    event.into_payload()
}

/// Hands one event to several takers: clones for all but the last, which gets the original.
#[derive(Debug)]
pub struct Share {
    event: Option<Event>,
    remaining: usize,
}

impl Share {
    /// `takers` will call [`Share::next`].
    pub fn new(event: Event, takers: usize) -> Self {
        Self {
            event: Some(event),
            remaining: takers,
        }
    }

    /// The event for the next taker.
    ///
    /// # Panics
    /// When called more often than the number of takers given to [`Share::new`]; generated code never is.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Event {
        self.remaining = self.remaining.saturating_sub(1);
        if self.remaining == 0 {
            self.event
                .take()
                .expect("Share::next called more often than its takers")
        } else {
            self.event
                .clone()
                .expect("Share::next called more often than its takers")
        }
    }
}
