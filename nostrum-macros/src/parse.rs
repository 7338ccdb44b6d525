//! Syntax only: reads the `impl` block and the `#[on(..)]` attributes, validates nothing.

use proc_macro2::TokenStream;
use syn::{Attribute, Ident, ImplItem, ImplItemFn, ItemImpl};

/// A method of the block with the `#[on(..)]` attributes it carried.
pub(crate) struct Method {
    pub(crate) func: ImplItemFn,
    /// The event names given in `#[on(NAME)]`, or the attribute's error.
    pub(crate) on: Vec<syn::Result<Ident>>,
}

/// What `#[consumer]` was put on.
pub(crate) struct Input {
    /// The block without the `#[on]` attributes, which are not real attributes and must not be emitted.
    pub(crate) item: ItemImpl,
    pub(crate) methods: Vec<Method>,
}

pub(crate) fn input(tokens: TokenStream) -> syn::Result<Input> {
    let mut item: ItemImpl = syn::parse2(tokens)?;
    let mut methods = Vec::new();
    for impl_item in &mut item.items {
        if let ImplItem::Fn(func) = impl_item {
            let on = take_on_attributes(&mut func.attrs);
            methods.push(Method {
                func: func.clone(),
                on,
            });
        }
    }
    Ok(Input { item, methods })
}

fn take_on_attributes(attrs: &mut Vec<Attribute>) -> Vec<syn::Result<Ident>> {
    let mut on = Vec::new();
    attrs.retain(|attr| {
        if attr.path().is_ident("on") {
            on.push(attr.parse_args::<Ident>());
            false
        } else {
            true
        }
    });
    on
}
