//! The only place that writes code for `#[consumer]`: from the validated model to `impl Consumer`.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::event_table::{boxed, variant};
use crate::model::{self, CatchAll, Handler, Model};
use crate::parse;
use crate::paths::{krate, private, respan};
use crate::table::{EVENTS, EventDef, Shape};

pub(crate) fn consumer(args: TokenStream, input: TokenStream) -> TokenStream {
    let parsed = match parse::input(input.clone()) {
        Ok(parsed) => parsed,
        // Not an impl block: say so, and keep the user's item so the editor keeps working.
        Err(err) => {
            let err = syn::Error::new(
                err.span(),
                "#[consumer] goes on an `impl` block: `#[consumer] impl Bot { .. }`",
            );
            let err = err.to_compile_error();
            return quote!(#input #err);
        }
    };
    let mut errors = model::Errors::default();
    if !args.is_empty() {
        errors.add(syn::Error::new_spanned(
            &args,
            "#[consumer] takes no arguments",
        ));
    }
    let item = &parsed.item;
    let model = model::model(&parsed);
    match (model, errors.finish()) {
        (Ok(model), Ok(())) => {
            let implementation = implementation(item, &model);
            quote! {
                #item
                #[doc(hidden)]
                const _: () = { #implementation };
            }
        }
        (model, args) => {
            let mut errors = model::Errors::default();
            if let Err(err) = model {
                errors.add(err);
            }
            if let Err(err) = args {
                errors.add(err);
            }
            let err = errors.finish().err().map(|err| err.to_compile_error());
            let item = without_duplicate_handlers(&parsed);
            quote!(#item #err)
        }
    }
}

/// The block without the handlers defined twice: they are reported already and rustc would report
/// them again.
fn without_duplicate_handlers(parsed: &parse::Input) -> syn::ItemImpl {
    let duplicates = model::duplicate_handlers(parsed);
    let mut item = parsed.item.clone();
    let mut index = 0;
    item.items.retain(|impl_item| {
        let syn::ImplItem::Fn(_) = impl_item else {
            return true;
        };
        index += 1;
        !duplicates.contains(&(index - 1))
    });
    item
}

fn implementation(item: &syn::ItemImpl, model: &Model) -> TokenStream {
    let krate = krate();
    let private = private();
    let self_ty = &item.self_ty;
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();

    let handled: Vec<&'static EventDef> = EVENTS
        .iter()
        .filter(|def| model.handlers.iter().any(|h| h.def.name == def.name))
        .collect();
    let handled_kinds = handled.iter().map(|def| variant(def));

    let mut arms: Vec<TokenStream> = handled.iter().map(|def| handled_arm(def, model)).collect();
    let unhandled: Vec<&EventDef> = EVENTS
        .iter()
        .filter(|def| !handled.iter().any(|h| h.name == def.name))
        .collect();
    if !unhandled.is_empty() {
        let patterns = unhandled.iter().map(|def| pattern(def, quote!(_)));
        arms.push(match &model.catch_all {
            Some(catch_all) => {
                let call = catch_all_call(catch_all);
                quote!(__event @ (#(#patterns)|*) => ::core::option::Option::Some(#call))
            }
            // The default no-op arm: spawns nothing, allocates nothing.
            None => quote!(#(#patterns)|* => ::core::option::Option::None),
        });
    }
    let events = if model.catch_all.is_some() {
        quote!(#krate::EventSet::ALL)
    } else {
        quote!(#krate::EventSet::EMPTY #(.with(#krate::EventKind::#handled_kinds))*)
    };

    quote! {
        #[automatically_derived]
        impl #impl_generics #krate::Consumer for #self_ty #where_clause {
            const EVENTS: #krate::EventSet = #events;

            #[allow(clippy::too_many_lines, unused_variables)]
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
                match __event {
                    #(#arms,)*
                }
            }
        }
    }
}

/// `Event::MessageCreate(binding)`, or the struct pattern of `Unknown`.
fn pattern(def: &EventDef, binding: TokenStream) -> TokenStream {
    let krate = krate();
    let variant = variant(def);
    match def.shape {
        Shape::Unknown => quote!(#krate::Event::Unknown { .. }),
        _ => quote!(#krate::Event::#variant(#binding)),
    }
}

fn handled_arm(def: &EventDef, model: &Model) -> TokenStream {
    let krate = krate();
    let private = private();
    let handlers: Vec<&Handler> = model
        .handlers
        .iter()
        .filter(|h| h.def.name == def.name)
        .collect();
    let (pattern, take) = match def.shape {
        Shape::Unknown => (
            quote!(#krate::Event::Unknown { name: __name, raw: __raw }),
            quote!(let __payload = #krate::UnknownEvent { name: __name, raw: __raw };),
        ),
        _ => {
            let variant = variant(def);
            let take = if boxed(def) {
                quote!(let __payload = *__payload;)
            } else {
                quote!()
            };
            (quote!(#krate::Event::#variant(__payload)), take)
        }
    };
    let last = handlers.len() - 1;
    let calls = handlers.iter().enumerate().map(|(index, handler)| {
        let payload = if index == last {
            quote!(__payload)
        } else {
            quote!(::core::clone::Clone::clone(&__payload))
        };
        handler_call(def, handler, payload)
    });
    if handlers.len() == 1 {
        quote!(#pattern => { #take ::core::option::Option::Some(#(#calls)*) })
    } else {
        quote!(#pattern => { #take #private::join(::std::vec![#(#calls),*]) })
    }
}

/// A boxed future that runs one handler. Spanned at the user's method, so that "future is not `Send`"
/// and "wrong return type" point at the handler, and a wrong payload type points at its type.
fn handler_call(def: &EventDef, handler: &Handler, payload: TokenStream) -> TokenStream {
    let method = &handler.method;
    let span: Span = method.span();
    // Every path at the handler's name: "future is not `Send`" and "wrong return type" point there.
    let krate = respan(krate(), span);
    let private = respan(private(), span);
    let user_ty = &handler.payload;
    let payload = quote_spanned!(user_ty.span()=> #private::payload::<_, #user_ty>(#payload));
    let kind = variant(def);
    let call = if handler.takes_ctx {
        quote_spanned!(span=> __this.#method(__ctx, __payload).await)
    } else {
        quote_spanned!(span=> __this.#method(__payload).await)
    };
    let ctx = handler
        .takes_ctx
        .then(|| quote!(let __ctx = ::core::clone::Clone::clone(__ctx);));
    quote_spanned! {span=>
        {
            let __owner = ::std::sync::Arc::clone(__owner);
            let __payload = #payload;
            let __shard = #private::shard(__ctx);
            #ctx
            #private::handler(#krate::EventKind::#kind, __shard, async move {
                let __this = #private::Project::get(&__project, &*__owner);
                #call
            })
        }
    }
}

fn catch_all_call(catch_all: &CatchAll) -> TokenStream {
    let method = &catch_all.method;
    let span = method.span();
    let private = respan(private(), span);
    let user_ty = &catch_all.payload;
    let payload = quote_spanned!(user_ty.span()=> #private::payload::<_, #user_ty>(__event));
    let call = if catch_all.takes_ctx {
        quote_spanned!(span=> __this.#method(__ctx, __payload).await)
    } else {
        quote_spanned!(span=> __this.#method(__payload).await)
    };
    let ctx = catch_all
        .takes_ctx
        .then(|| quote!(let __ctx = ::core::clone::Clone::clone(__ctx);));
    quote_spanned! {span=>
        {
            let __kind = __event.kind();
            let __owner = ::std::sync::Arc::clone(__owner);
            let __payload = #payload;
            let __shard = #private::shard(__ctx);
            #ctx
            #private::handler(__kind, __shard, async move {
                let __this = #private::Project::get(&__project, &*__owner);
                #call
            })
        }
    }
}
