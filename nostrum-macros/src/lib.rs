//! Procedural macros of `nostrum-core`: `#[consumer]`, `#[derive(Consumer)]` and the event table.
//!
//! Use them through `nostrum_core` (`nostrum_core::consumer`, `nostrum_core::Consumer`); the paths they
//! emit are absolute `::nostrum_core::` paths (see `paths.rs`).
//!
//! Layout, after serde_derive: `parse.rs` reads syntax only, `model.rs` validates and collects every
//! error with its span, `expand.rs` is the only place that writes code for `#[consumer]`.

use proc_macro::TokenStream;

mod derive;
mod event_table;
mod expand;
mod model;
mod parse;
mod paths;
mod table;

/// Turns the `on_<event>` async methods of an `impl` block into an implementation of `Consumer`.
///
/// See `nostrum_core::consumer` for the documentation and examples.
#[proc_macro_attribute]
pub fn consumer(args: TokenStream, input: TokenStream) -> TokenStream {
    expand::consumer(args.into(), input.into()).into()
}

/// Composes consumers: each field of the struct is a consumer and gets the events it handles.
///
/// See `nostrum_core::Consumer` for the documentation and examples.
#[proc_macro_derive(Consumer, attributes(consumer))]
pub fn derive_consumer(input: TokenStream) -> TokenStream {
    derive::consumer(input.into()).into()
}

/// Generates `Event`, `EventKind` and the per-kind payload markers inside `nostrum-core`. Not for users.
#[doc(hidden)]
#[proc_macro]
pub fn __event_table(input: TokenStream) -> TokenStream {
    event_table::expand(input.into()).into()
}
