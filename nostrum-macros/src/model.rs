//! Validation: turns the parsed block into handlers bound to events, collecting every error with its span.

use proc_macro2::Span;
use syn::{FnArg, Ident, ImplItemFn, ReturnType, Type};

use crate::parse::{Input, Method};
use crate::table::{self, EventDef};

/// A handler of one event.
pub(crate) struct Handler {
    pub(crate) def: &'static EventDef,
    pub(crate) method: Ident,
    pub(crate) takes_ctx: bool,
    pub(crate) payload: Type,
}

/// `async fn on_event(&self, ctx, event: Event)`: every event no specific handler takes.
pub(crate) struct CatchAll {
    pub(crate) method: Ident,
    pub(crate) takes_ctx: bool,
    pub(crate) payload: Type,
}

pub(crate) struct Model {
    pub(crate) handlers: Vec<Handler>,
    pub(crate) catch_all: Option<CatchAll>,
}

/// Collects errors; all of them are reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        self.add(syn::Error::new(span, message));
    }

    pub(crate) fn add(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        self.0.map_or(Ok(()), Err)
    }
}

pub(crate) fn model(input: &Input) -> Result<Model, syn::Error> {
    let mut errors = Errors::default();
    let mut handlers: Vec<Handler> = Vec::new();
    let mut catch_all = None;
    let mut seen_methods: Vec<Ident> = Vec::new();

    for Method { func, on } in &input.methods {
        let name = func.sig.ident.clone();
        let name_str = name.to_string();
        if seen_methods.contains(&name) {
            // Only handlers: a duplicate ordinary method is rustc's to report. `expand` drops this
            // definition so that rustc does not report the handler a second time.
            if is_handler(func, on) {
                errors.push(
                    name.span(),
                    format!("the same handler twice: `{name}` is already defined in this block"),
                );
            }
            continue;
        }
        seen_methods.push(name.clone());

        let mut defs: Vec<(&'static EventDef, Span)> = Vec::new();
        for attr in on {
            match attr {
                Ok(event) => match table::by_name(&event.to_string()) {
                    Some(def) => {
                        if defs.iter().any(|(seen, _)| seen.name == def.name) {
                            errors.push(
                                event.span(),
                                format!(
                                    "the same handler twice: `{name}` already handles {}",
                                    def.name
                                ),
                            );
                        } else {
                            defs.push((def, event.span()));
                        }
                    }
                    None => {
                        let suggestion = table::closest_handler(&format!(
                            "on_{}",
                            event.to_string().to_ascii_lowercase()
                        ))
                        .and_then(|handler| table::by_handler(&handler))
                        .map(|def| format!("; did you mean `{}`?", def.name))
                        .unwrap_or_default();
                        errors.push(event.span(), format!("unknown event `{event}`{suggestion}"));
                    }
                },
                Err(err) => errors.add(syn::Error::new(
                    err.span(),
                    "expected an event name: `#[on(MESSAGE_CREATE)]`",
                )),
            }
        }

        let is_catch_all = defs.is_empty() && name_str == "on_event";
        if defs.is_empty() && !is_catch_all {
            if !name_str.starts_with("on_") {
                continue; // an ordinary method: passed through untouched
            }
            match table::by_handler(&name_str) {
                Some(def) => defs.push((def, name.span())),
                None => {
                    let suggestion = table::closest_handler(&name_str)
                        .map(|handler| format!("; did you mean `{handler}`?"))
                        .unwrap_or_else(|| {
                            "; handlers are `on_` + the snake_case of a dispatch name, or use `#[on(EVENT)]`".to_owned()
                        });
                    errors.push(
                        name.span(),
                        format!("unknown event handler `{name}`{suggestion}"),
                    );
                    continue;
                }
            }
        }

        let Some((takes_ctx, payload)) = signature(func, &mut errors) else {
            continue;
        };
        if is_catch_all {
            catch_all = Some(CatchAll {
                method: name,
                takes_ctx,
                payload,
            });
            continue;
        }
        for (def, _) in defs {
            handlers.push(Handler {
                def,
                method: name.clone(),
                takes_ctx,
                payload: payload.clone(),
            });
        }
    }
    errors.finish()?;
    Ok(Model {
        handlers,
        catch_all,
    })
}

/// Whether a method is an event handler: `on_*` or carrying `#[on(..)]`.
pub(crate) fn is_handler(func: &ImplItemFn, on: &[syn::Result<Ident>]) -> bool {
    !on.is_empty() || func.sig.ident.to_string().starts_with("on_")
}

/// The handlers whose name an earlier method of the block already took, as indices into
/// `input.methods`.
pub(crate) fn duplicate_handlers(input: &Input) -> Vec<usize> {
    let methods = &input.methods;
    (0..methods.len())
        .filter(|&index| {
            let Method { func, on } = &methods[index];
            is_handler(func, on)
                && methods[..index]
                    .iter()
                    .any(|earlier| earlier.func.sig.ident == func.sig.ident)
        })
        .collect()
}

/// Checks `async fn name(&self, [ctx: Context,] payload: T) [-> R]`; returns whether it takes a context
/// and the payload type.
fn signature(func: &ImplItemFn, errors: &mut Errors) -> Option<(bool, Type)> {
    let sig = &func.sig;
    let name = &sig.ident;
    let mut ok = true;
    if sig.asyncness.is_none() {
        errors.push(
            sig.fn_token.span,
            format!("event handler `{name}` must be an `async fn`"),
        );
        ok = false;
    }
    if !sig.generics.params.is_empty() {
        errors.add(syn::Error::new_spanned(
            &sig.generics,
            format!("event handler `{name}` cannot be generic"),
        ));
        ok = false;
    }
    if let Some(variadic) = &sig.variadic {
        errors.add(syn::Error::new_spanned(
            variadic,
            "event handlers cannot be variadic",
        ));
        ok = false;
    }
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_some() && receiver.mutability.is_none() => {}
        Some(FnArg::Receiver(receiver)) => {
            errors.add(syn::Error::new_spanned(
                receiver,
                format!("event handler `{name}` must take `&self`: handlers run concurrently"),
            ));
            ok = false;
        }
        _ => {
            errors.push(
                sig.paren_token.span.join(),
                format!("event handler `{name}` must take `&self` first"),
            );
            return None;
        }
    }
    let rest: Vec<&FnArg> = inputs.collect();
    let types: Vec<Type> = rest
        .iter()
        .filter_map(|arg| match arg {
            FnArg::Typed(typed) => Some((*typed.ty).clone()),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let (takes_ctx, payload) = match types.as_slice() {
        [payload] => (false, payload.clone()),
        [_ctx, payload] => (true, payload.clone()),
        _ => {
            errors.push(
                sig.paren_token.span.join(),
                format!(
                    "wrong number of arguments for event handler `{name}`: expected `(&self, ctx: Context, payload)` or `(&self, payload)`, found {} after `&self`",
                    types.len()
                ),
            );
            return None;
        }
    };
    if let ReturnType::Type(_, ty) = &sig.output
        && let Type::ImplTrait(_) = **ty
    {
        errors.add(syn::Error::new_spanned(
            ty,
            "event handlers return `()` or `Result<(), E>`",
        ));
        ok = false;
    }
    ok.then_some((takes_ctx, payload))
}
