//! The event model, generated from the one event table in `nostrum-macros` (`table.rs`).

mod direct;
pub mod parse;
pub mod payload;
mod set;

pub use parse::PayloadError;
pub use payload::*;
pub use set::EventSet;

use serde_json::value::RawValue;
use twilight_model::gateway::Intents;

nostrum_macros::__event_table!();

impl Event {
    /// Types a gateway dispatch: `name` is its `t`, `raw` its `d`. Never fails and never drops: a name
    /// nobody knows, or a payload that does not parse even leniently, becomes [`Event::Unknown`] with a
    /// `tracing` warning.
    pub fn from_dispatch(name: &str, raw: &RawValue) -> Self {
        match EventKind::from_name(name) {
            Some(kind) if kind.is_dispatch() => match Self::parse_payload(kind, raw.get()) {
                Ok(event) => event,
                Err(err) => {
                    tracing::warn!(event = name, error = %err, "payload did not parse; delivered as Event::Unknown");
                    Self::unknown(name, raw)
                }
            },
            _ => {
                tracing::warn!(
                    event = name,
                    "unknown dispatch; delivered as Event::Unknown"
                );
                Self::unknown(name, raw)
            }
        }
    }

    fn unknown(name: &str, raw: &RawValue) -> Self {
        Self::Unknown {
            name: name.into(),
            raw: raw.to_owned(),
        }
    }

    /// The event's name: Discord's for dispatches (`MESSAGE_CREATE`), the dispatch's own for
    /// [`Event::Unknown`].
    pub fn name(&self) -> &str {
        match self {
            Self::Unknown { name, .. } => name,
            other => other.kind().name(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.name()), Some(kind));
            assert_eq!(
                EventKind::from_handler_name(kind.handler_name()),
                Some(kind)
            );
            assert_eq!(
                kind.handler_name(),
                format!("on_{}", kind.name().to_ascii_lowercase())
            );
        }
        assert_eq!(
            EventKind::MessageReactionAdd.handler_name(),
            "on_message_reaction_add"
        );
        assert_eq!(EventKind::from_name("NOT_AN_EVENT"), None);
    }

    #[test]
    fn intents_follow_the_docs() {
        assert_eq!(
            EventKind::MessageCreate.intents(),
            Intents::GUILD_MESSAGES | Intents::DIRECT_MESSAGES
        );
        assert_eq!(
            EventKind::PresenceUpdate.intents(),
            Intents::GUILD_PRESENCES
        );
        assert!(EventKind::Ready.intents().is_empty());
        assert!(EventKind::InteractionCreate.intents().is_empty());
    }

    #[test]
    fn unknown_names_and_bad_payloads_become_unknown() {
        let raw = RawValue::from_string(r#"{"x":1}"#.to_owned()).unwrap();
        let event = Event::from_dispatch("SOMETHING_NEW", &raw);
        assert!(matches!(&event, Event::Unknown { name, .. } if &**name == "SOMETHING_NEW"));
        assert_eq!(event.kind(), EventKind::Unknown);
        let event = Event::from_dispatch("MESSAGE_CREATE", &raw);
        assert!(
            matches!(&event, Event::Unknown { name, raw } if &**name == "MESSAGE_CREATE" && raw.get() == r#"{"x":1}"#)
        );
        assert_eq!(event.name(), "MESSAGE_CREATE");
    }
}
