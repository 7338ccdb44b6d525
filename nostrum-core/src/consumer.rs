//! The `Consumer` trait that `#[consumer]` and `#[derive(Consumer)]` implement.

use std::sync::Arc;

use twilight_model::gateway::Intents;

use crate::__private::{HandlerFuture, Project};
use crate::{Context, Event, EventSet};

/// Something that handles events: implemented by `#[consumer]` on an `impl` block of `on_*` async
/// methods, or by `#[derive(Consumer)]` on a struct of consumers. Writing it by hand is possible but
/// the macros check what a hand-written match would not.
///
/// ```
/// use nostrum_core::prelude::*;
///
/// struct Bot;
///
/// #[consumer]
/// impl Bot {
///     async fn on_message_create(&self, ctx: Context, msg: Message) {
///         let _ = (ctx, msg);
///     }
/// }
///
/// assert!(<Bot as Consumer>::EVENTS.contains(EventKind::MessageCreate));
/// assert!(!<Bot as Consumer>::EVENTS.contains(EventKind::TypingStart));
/// assert!(<Bot as Consumer>::INTENTS.contains(Intents::GUILD_MESSAGES));
/// ```
///
/// Composition, like cogs: every field gets the events it handles.
///
/// ```
/// use nostrum_core::prelude::*;
///
/// struct Pings;
/// #[consumer]
/// impl Pings {
///     async fn on_message_create(&self, _msg: Message) {}
/// }
///
/// struct Members;
/// #[consumer]
/// impl Members {
///     async fn on_guild_member_add(&self, _member: MemberAdd) {}
/// }
///
/// #[derive(Consumer)]
/// struct Bot {
///     pings: Pings,
///     members: Members,
/// }
///
/// assert_eq!(<Bot as Consumer>::EVENTS.len(), 2);
/// assert!(<Bot as Consumer>::INTENTS.contains(Intents::GUILD_MEMBERS));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a consumer",
    label = "not a consumer",
    note = "a consumer is a type with `#[consumer]` on an `impl` block, or a struct with `#[derive(Consumer)]`; mark a field that is not one `#[consumer(skip)]`"
)]
pub trait Consumer: Send + Sync + Sized + 'static {
    /// The events it handles; the gateway skips parsing what no consumer and no cache needs.
    const EVENTS: EventSet;

    /// The gateway intents those events need; the client's default intents are their union.
    const INTENTS: Intents = Self::EVENTS.intents();

    /// The generated dispatch: a match over every [`Event`] variant. Returns the handler's future, or
    /// `None` (the no-op arm: nothing spawned, nothing allocated) for events it does not handle.
    /// `owner` is what the runtime holds and `project` finds this consumer inside it.
    #[doc(hidden)]
    fn __dispatch<O, P>(
        owner: &Arc<O>,
        project: P,
        ctx: &Context,
        event: Event,
    ) -> Option<HandlerFuture>
    where
        O: Send + Sync + 'static,
        P: Project<O, Target = Self>;
}
