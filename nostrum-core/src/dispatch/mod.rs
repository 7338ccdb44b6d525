//! Dispatch: broadcasts each event to every consumer that handles it, under each consumer's tasking.
//!
//! It knows events, consumers and tasking, and nothing of JSON or sockets.

mod group;
mod ordered;
mod subscribe;
#[cfg(test)]
mod tests;

pub use group::{
    ConsumerGroup, ConsumerId, ConsumerOptions, DispatchStats, EventKeys, OrderKey, Tasking,
};
pub use subscribe::Subscription;

use std::any::Any;

/// The message of a caught panic, for the log.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("<non-string panic payload>")
}
