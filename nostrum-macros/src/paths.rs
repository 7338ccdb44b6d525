//! Every path the macros emit, in one place.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::quote;

pub(crate) fn krate() -> TokenStream {
    quote!(::nostrum_core)
}

pub(crate) fn private() -> TokenStream {
    quote!(::nostrum_core::__private)
}

/// `tokens` with every span set to `span`: interpolated paths keep the span they were built with, and
/// rustc points a call's "required by a bound" at its callee's path.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(group) = &tree {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                tree = TokenTree::Group(respanned);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}
