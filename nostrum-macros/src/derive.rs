//! `#[derive(Consumer)]`: a struct whose fields are consumers handles the union of their events.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{Data, DeriveInput, Fields};

use crate::paths::{krate, private};

pub(crate) fn consumer(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(tokens) => tokens,
        Err(err) => err.to_compile_error(),
    }
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let krate = krate();
    let private = private();
    let input: DeriveInput = syn::parse2(input)?;
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Consumer)] goes on a struct whose fields are consumers",
        ));
    };
    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();

    let mut fields = Vec::new();
    for (index, field) in data.fields.iter().enumerate() {
        let mut skip = false;
        for attr in field
            .attrs
            .iter()
            .filter(|attr| attr.path().is_ident("consumer"))
        {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("skip") {
                    skip = true;
                    Ok(())
                } else {
                    Err(meta.error("expected `#[consumer(skip)]`"))
                }
            })?;
        }
        if skip {
            continue;
        }
        let access = match &field.ident {
            Some(ident) => quote!(#ident),
            None => {
                let index = syn::Index::from(index);
                quote!(#index)
            }
        };
        fields.push((
            access,
            field.ty.clone(),
            format_ident!("__nostrum_field_{}", index),
        ));
    }
    if fields.is_empty() && !matches!(data.fields, Fields::Unit) {
        return Err(syn::Error::new_spanned(
            name,
            "#[derive(Consumer)] needs at least one consumer field",
        ));
    }
    let types: Vec<_> = fields.iter().map(|(_, ty, _)| ty).collect();
    let dispatches = fields.iter().map(|(access, ty, getter)| {
        quote! {
            if <#ty as #krate::Consumer>::EVENTS.contains(__kind) {
                fn #getter #impl_generics (outer: &#name #ty_generics) -> &#ty #where_clause { &outer.#access }
                let __event = __share.next();
                let __project = #private::Compose::new(__project, #getter as fn(&#name #ty_generics) -> &#ty);
                if let ::core::option::Option::Some(__future) =
                    <#ty as #krate::Consumer>::__dispatch(__owner, __project, __ctx, __event)
                {
                    __futures.push(__future);
                }
            }
        }
    });
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Consumer for #name #ty_generics #where_clause {
            const EVENTS: #krate::EventSet = #krate::EventSet::EMPTY #(.union(<#types as #krate::Consumer>::EVENTS))*;
            const INTENTS: #krate::Intents = #krate::Intents::from_bits_retain(
                0 #(| <#types as #krate::Consumer>::INTENTS.bits())*
            );

            fn __dispatch<__O, __P>(
                __owner: &::std::sync::Arc<__O>,
                __project: __P,
                __ctx: &#krate::Context,
                __event: #krate::Event,
            ) -> ::core::option::Option<#private::HandlerFuture>
            where
                __O: ::core::marker::Send + ::core::marker::Sync + 'static,
                __P: #private::Project<__O, Target = Self>,
            {
                let __kind = __event.kind();
                let __takers = 0usize #(+ usize::from(<#types as #krate::Consumer>::EVENTS.contains(__kind)))*;
                if __takers == 0 {
                    return ::core::option::Option::None;
                }
                let mut __share = #private::Share::new(__event, __takers);
                let mut __futures = ::std::vec::Vec::with_capacity(__takers);
                #(#dispatches)*
                #private::join(__futures)
            }
        }
    })
}
