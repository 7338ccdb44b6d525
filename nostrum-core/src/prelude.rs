//! What a bot names most: `use nostrum_core::prelude::*;`.

pub use std::time::Duration;

pub use crate::client::Shards;
pub use crate::dispatch::{ConsumerOptions, OrderKey, Tasking};
pub use crate::event::payload::*;
pub use crate::{
    BoxError, Client, Consumer, Context, Event, EventKind, EventSet, Intents, consumer,
};
pub use twilight_model::id::Id;
pub use twilight_model::id::marker::{
    ApplicationMarker, ChannelMarker, EmojiMarker, GuildMarker, MessageMarker, RoleMarker,
    UserMarker,
};
