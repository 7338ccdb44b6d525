//! The runtime of a Discord bot SDK in the spirit of Nostrum: the event model generated from one
//! table, consumers and their tasking, the gateway, REST, and a local Discord to test against.
//!
//! ```no_run
//! use nostrum_core::prelude::*;
//!
//! struct Bot;
//!
//! #[consumer]
//! impl Bot {
//!     async fn on_message_create(&self, ctx: Context, msg: Message) -> Result<(), BoxError> {
//!         if msg.content == "!ping" {
//!             ctx.http().create_message(msg.channel_id).content("pyongyang!").await?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     Client::builder(std::env::var("DISCORD_TOKEN")?).consumer(Bot).run().await?;
//!     Ok(())
//! }
//! ```

#![recursion_limit = "256"]

// The macros emit `::nostrum_core::` paths; this makes them resolve inside the crate too.
#[allow(unused_extern_crates)]
extern crate self as nostrum_core;

pub mod cache;
pub mod client;
mod consumer;
mod context;
pub mod dispatch;
pub mod event;
pub mod gateway;
pub mod http;
pub mod local;
pub mod prelude;
mod token;

#[doc(hidden)]
pub mod __private;

pub use client::{Client, ClientBuilder, ClientError, Shards};
pub use consumer::Consumer;
pub use context::{Context, ShardContext};
pub use event::{Deleted, Event, EventKind, EventSet, UnknownEvent, Update};
pub use token::Token;
pub use twilight_model::gateway::Intents;

/// Turns the `on_<event>` async methods of an `impl` block into an implementation of [`Consumer`].
///
/// Handlers are named `on_` + the snake_case of Discord's dispatch name (`MESSAGE_REACTION_ADD` ->
/// `on_message_reaction_add`), or carry `#[on(EVENT)]`. Each takes `(&self, ctx: Context, payload)` or
/// `(&self, payload)` and returns `()` or `Result<(), E>` with `E: Display` (an error is logged with the
/// event's name). `async fn on_event(&self, ctx, event: Event)` takes every event no specific handler
/// of the consumer takes. Methods without `on_` and without `#[on]` pass through untouched.
///
/// ```
/// use nostrum_core::prelude::*;
///
/// struct Bot;
///
/// #[consumer]
/// impl Bot {
///     async fn on_ready(&self, ready: Ready) {
///         println!("{} is ready", ready.user.name);
///     }
///
///     #[on(MESSAGE_CREATE)]
///     async fn log(&self, msg: Message) -> Result<(), std::fmt::Error> {
///         println!("{}", msg.content);
///         Ok(())
///     }
///
///     fn helper(&self) {}
/// }
/// ```
pub use nostrum_macros::consumer;

/// Composes consumers: every field of the struct is a consumer and gets the events it handles; the
/// struct's events and intents are the union (`#[consumer(skip)]` leaves a field out).
pub use nostrum_macros::Consumer;

/// The Discord types, from twilight-model.
pub use twilight_model as model;

/// A boxed error, for handlers that return `Result<(), BoxError>`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
