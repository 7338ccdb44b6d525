//! Expands the event table into `Event`, `EventKind` and the payload markers, inside `nostrum-core`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote};
use syn::Type;

use crate::table::{EVENTS, EventDef, Shape};

fn ty(source: &str) -> Type {
    syn::parse_str(source)
        .unwrap_or_else(|err| panic!("bad type `{source}` in the event table: {err}"))
}

/// The type a handler takes for this event.
pub(crate) fn arg_type(def: &EventDef) -> TokenStream {
    match def.shape {
        Shape::P(t) | Shape::B(t) | Shape::R(t) => {
            let t = ty(t);
            quote!(#t)
        }
        Shape::U(old, new) => {
            let (old, new) = (ty(old), ty(new));
            quote!(Update<#old, #new>)
        }
        Shape::D(event, cached) => {
            let (event, cached) = (ty(event), ty(cached));
            quote!(Deleted<#event, #cached>)
        }
        Shape::Unknown => quote!(UnknownEvent),
    }
}

/// Whether the variant stores its payload in a `Box`.
pub(crate) fn boxed(def: &EventDef) -> bool {
    matches!(def.shape, Shape::B(_) | Shape::U(..) | Shape::D(..))
}

pub(crate) fn variant(def: &EventDef) -> Ident {
    Ident::new(&def.variant(), Span::call_site())
}

pub(crate) fn expand(_input: TokenStream) -> TokenStream {
    let variants = EVENTS.iter().map(|def| {
        let variant = variant(def);
        let name = def.name;
        let handler = def.handler();
        let arg = arg_type(def);
        let doc = format!(
            "`{name}`: handled by `async fn {handler}(&self, ctx: Context, payload: {})`.",
            arg.to_string().replace(' ', "")
        );
        match def.shape {
            Shape::Unknown => quote! {
                #[doc = "A dispatch that no type could hold: an event name the SDK does not know, or a payload"]
                #[doc = "that failed to parse even leniently. Delivered with its raw JSON, never dropped;"]
                #[doc = "handled by `on_unknown(&self, ctx, UnknownEvent)`."]
                Unknown {
                    /// The dispatch name (`t`).
                    name: Box<str>,
                    /// The raw JSON of `d`.
                    raw: Box<RawValue>,
                }
            },
            _ if boxed(def) => quote!(#[doc = #doc] #variant(Box<#arg>)),
            _ => quote!(#[doc = #doc] #variant(#arg)),
        }
    });
    let kinds: Vec<Ident> = EVENTS.iter().map(variant).collect();
    let count = EVENTS.len();
    let names: Vec<&str> = EVENTS.iter().map(|def| def.name).collect();
    let handlers: Vec<String> = EVENTS.iter().map(EventDef::handler).collect();
    let intents: Vec<u64> = EVENTS.iter().map(EventDef::intent_bits).collect();
    let dispatch: Vec<bool> = EVENTS.iter().map(EventDef::is_dispatch).collect();
    let kind_docs = EVENTS.iter().map(|def| format!("`{}`", def.name));

    let kind_arms = EVENTS.iter().map(|def| {
        let variant = variant(def);
        match def.shape {
            Shape::Unknown => quote!(Self::Unknown { .. } => EventKind::Unknown),
            _ => quote!(Self::#variant(_) => EventKind::#variant),
        }
    });

    let parse_arms = EVENTS.iter().filter(|def| def.is_dispatch()).map(|def| {
        let variant = variant(def);
        // The payloads whose derive buffers JSON have a direct parser (nostrum-core's
        // `event::direct`), tried first.
        let direct = match def.name {
            "GUILD_CREATE" => Some(quote!(direct::guild_create)),
            "GUILD_MEMBER_ADD" => Some(quote!(direct::member_add)),
            "PRESENCE_UPDATE" => Some(quote!(direct::presence)),
            _ => None,
        };
        let parse = |t: Type| match &direct {
            Some(direct) => quote!(parse::payload_with::<#t>(kind, raw, #direct)),
            None => quote!(parse::payload::<#t>(kind, raw)),
        };
        let build = match def.shape {
            Shape::P(t) => {
                let parse = parse(ty(t));
                quote!(#parse.map(Self::#variant))
            }
            Shape::B(t) => {
                let parse = parse(ty(t));
                quote!(#parse.map(|p| Self::#variant(Box::new(p))))
            }
            Shape::U(_, new) => {
                let parse = parse(ty(new));
                quote!(#parse.map(|new| Self::#variant(Box::new(Update { old: None, new }))))
            }
            Shape::D(event, _) => {
                let parse = parse(ty(event));
                quote!(#parse.map(|event| Self::#variant(Box::new(Deleted { event, cached: None }))))
            }
            Shape::R(_) | Shape::Unknown => unreachable!("filtered out"),
        };
        quote!(EventKind::#variant => #build)
    });

    let cached_get_arms = EVENTS.iter().filter_map(|def| {
        let variant = variant(def);
        match def.shape {
            Shape::U(..) => Some(quote!(Self::#variant(update) => update.old.as_ref().map(serde_json::to_string))),
            Shape::D(..) => Some(quote!(Self::#variant(deleted) => deleted.cached.as_ref().map(serde_json::to_string))),
            _ => None,
        }
    });
    let cached_set_arms = EVENTS.iter().filter_map(|def| {
        let variant = variant(def);
        match def.shape {
            Shape::U(..) => Some(quote!(Self::#variant(update) => update.old = Some(serde_json::from_str(json)?))),
            Shape::D(..) => Some(quote!(Self::#variant(deleted) => deleted.cached = Some(serde_json::from_str(json)?))),
            _ => None,
        }
    });

    let markers = EVENTS.iter().map(|def| {
        let variant = variant(def);
        let arg = arg_type(def);
        let doc = format!("The type-level name of `{}`.", def.name);
        quote! {
            #[doc = #doc]
            #[derive(Debug)]
            pub struct #variant;
            impl EventPayload for #variant {
                type Arg = #arg;
                const KIND: EventKind = EventKind::#variant;
            }
        }
    });

    let ident_kinds = format_ident!("kinds");
    quote! {
        /// An event, as a consumer receives it. Generated from the event table: one variant per event.
        ///
        /// Updates carry the cached old value beside the new one ([`Update`]); deletes carry the deleted
        /// object when it was cached ([`Deleted`]). A dispatch nobody could type arrives as
        /// [`Event::Unknown`].
        #[derive(Clone, Debug)]
        pub enum Event {
            #(#variants,)*
        }

        /// The kind of an [`Event`], without its payload. Generated from the event table.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum EventKind {
            #(#[doc = #kind_docs] #kinds,)*
        }

        impl EventKind {
            /// Every kind, in table order.
            pub const ALL: [EventKind; #count] = [#(EventKind::#kinds,)*];
            /// How many kinds there are.
            pub const COUNT: usize = #count;

            /// Discord's name: `"MESSAGE_CREATE"`.
            pub const fn name(self) -> &'static str {
                match self { #(Self::#kinds => #names,)* }
            }

            /// The handler that takes it: `"on_message_create"`.
            pub const fn handler_name(self) -> &'static str {
                match self { #(Self::#kinds => #handlers,)* }
            }

            /// The gateway intents that deliver it; any one of them suffices. Empty for events every
            /// bot receives.
            pub const fn intents(self) -> Intents {
                Intents::from_bits_retain(match self { #(Self::#kinds => #intents,)* })
            }

            /// Whether the gateway delivers it as a dispatch (not a voice, runtime or unknown event).
            pub const fn is_dispatch(self) -> bool {
                match self { #(Self::#kinds => #dispatch,)* }
            }

            /// The kind named `name` (`"MESSAGE_CREATE"`).
            pub fn from_name(name: &str) -> Option<Self> {
                match name { #(#names => Some(Self::#kinds),)* _ => None }
            }

            /// The kind whose handler is `handler` (`"on_message_create"`).
            pub fn from_handler_name(handler: &str) -> Option<Self> {
                match handler { #(#handlers => Some(Self::#kinds),)* _ => None }
            }
        }

        impl Event {
            /// The kind of this event.
            pub fn kind(&self) -> EventKind {
                match self { #(#kind_arms,)* }
            }

            /// The cached value an update or delete carries ([`Update::old`], [`Deleted::cached`]) as
            /// JSON, to send the event to another process beside its raw payload; `None` when the
            /// event carries none.
            pub fn cached_json(&self) -> Option<serde_json::Result<String>> {
                match self {
                    #(#cached_get_arms,)*
                    _ => None,
                }
            }

            /// Sets the cached value of an update or delete from the JSON [`cached_json`](Self::cached_json)
            /// wrote (in another process). Events that carry no cached value ignore it.
            ///
            /// # Errors
            /// When the JSON does not hold the cached type of this event.
            pub fn set_cached_json(&mut self, json: &str) -> serde_json::Result<()> {
                match self {
                    #(#cached_set_arms,)*
                    _ => {}
                }
                Ok(())
            }

            /// Parses the payload of a dispatch of kind `kind` (leniently, see [`parse`]).
            pub(crate) fn parse_payload(kind: EventKind, raw: &str) -> Result<Self, parse::PayloadError> {
                match kind {
                    #(#parse_arms,)*
                    _ => Err(parse::PayloadError::NotADispatch(kind)),
                }
            }
        }

        /// Type-level names of the event kinds, which the macros use to check handler signatures.
        #[doc(hidden)]
        pub mod #ident_kinds {
            use super::*;
            /// What a kind's handler takes.
            pub trait EventPayload {
                /// The payload type of the handler.
                type Arg;
                /// The kind.
                const KIND: EventKind;
            }
            #(#markers)*
        }
    }
}
