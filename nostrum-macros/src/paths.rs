//! Every path the macros emit, in one place.

use proc_macro2::TokenStream;
use quote::quote;

pub(crate) fn krate() -> TokenStream {
    quote!(::nostrum_core)
}

pub(crate) fn private() -> TokenStream {
    quote!(::nostrum_core::__private)
}
