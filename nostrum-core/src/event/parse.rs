//! Lenient payload parsing: what Discord omits, where the docs give a default, does not lose an event.
//!
//! The fast path is one `serde_json::from_str` into the payload type. Only when that fails does the
//! slow path fill documented defaults into a JSON value and try again; what still fails becomes
//! `Event::Unknown` with a warning (see [`Event::from_dispatch`](super::Event::from_dispatch)).

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::EventKind;

/// Why a payload could not be typed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    /// The kind is not a gateway dispatch (a voice or runtime event).
    #[error("{} is not a gateway dispatch", .0.name())]
    NotADispatch(EventKind),
    /// The JSON did not fit the type, even with documented defaults filled in.
    #[error("{kind} payload did not parse: {err}", kind = .0.name(), err = .1)]
    Json(EventKind, #[source] serde_json::Error),
}

/// Parses `raw` as `T`; on failure, fills documented defaults and tries once more.
pub(crate) fn payload<T: DeserializeOwned>(kind: EventKind, raw: &str) -> Result<T, PayloadError> {
    let first = match serde_json::from_str::<T>(raw) {
        Ok(value) => return Ok(value),
        Err(err) => err,
    };
    lenient(kind, raw, first)
}

/// [`payload`] with a faster parser for `T` first (see [`direct`](super::direct)); when it fails,
/// `payload` itself, so errors and the lenient path are the derive's.
pub(crate) fn payload_with<T: DeserializeOwned>(
    kind: EventKind,
    raw: &str,
    direct: fn(&str) -> serde_json::Result<T>,
) -> Result<T, PayloadError> {
    direct(raw).or_else(|_| payload(kind, raw))
}

/// The slow path of [`payload`], after `first` failed.
fn lenient<T: DeserializeOwned>(
    kind: EventKind,
    raw: &str,
    first: serde_json::Error,
) -> Result<T, PayloadError> {
    let Ok(mut value) = serde_json::from_str::<Value>(raw) else {
        return Err(PayloadError::Json(kind, first));
    };
    if !fill_defaults(&mut value) {
        return Err(PayloadError::Json(kind, first));
    }
    serde_json::from_value(value).map_err(|_| PayloadError::Json(kind, first))
}

/// Fills, in every object of the tree, the fields real payloads omit and the docs give defaults for.
/// Returns whether it changed anything.
pub(crate) fn fill_defaults(value: &mut Value) -> bool {
    match value {
        Value::Object(map) => {
            let mut changed = false;
            for child in map.values_mut() {
                changed |= fill_defaults(child);
            }
            changed | fill_object(map)
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| fill_defaults(item) | changed),
        _ => false,
    }
}

fn insert(map: &mut Map<String, Value>, key: &str, value: Value) -> bool {
    if map.contains_key(key) {
        false
    } else {
        map.insert(key.to_owned(), value);
        true
    }
}

fn fill_object(map: &mut Map<String, Value>) -> bool {
    let mut changed = false;
    let keys = |list: &[&str]| list.iter().all(|key| map.contains_key(*key));
    let is_member =
        map.contains_key("roles") && (map.contains_key("joined_at") || map.contains_key("user"));
    let is_message =
        keys(&["id", "channel_id"]) && (map.contains_key("author") || map.contains_key("embeds"));
    let is_interaction = keys(&["application_id", "token", "type"]);
    let is_role = keys(&["permissions", "position", "name"])
        && !map.contains_key("joined_at")
        && !map.contains_key("type");
    let is_guild = map.contains_key("verification_level") || map.contains_key("premium_tier");
    let is_user = keys(&["username", "id"]);
    // A member: `roles` and `joined_at`.
    if is_member {
        changed |= insert(map, "flags", Value::from(0));
        changed |= insert(map, "deaf", Value::Bool(false));
        changed |= insert(map, "mute", Value::Bool(false));
    }
    // A role: `permissions`, `position`, `name`, without `joined_at`.
    if is_role {
        let color = map.get("color").cloned().unwrap_or(Value::from(0));
        changed |= insert(map, "color", color.clone());
        changed |= insert(
            map,
            "colors",
            serde_json::json!({ "primary_color": color, "secondary_color": null, "tertiary_color": null }),
        );
        changed |= insert(map, "flags", Value::from(0));
        changed |= insert(map, "hoist", Value::Bool(false));
        changed |= insert(map, "managed", Value::Bool(false));
        changed |= insert(map, "mentionable", Value::Bool(false));
    }
    // A guild: `premium_tier` or `verification_level`.
    if is_guild {
        changed |= insert(map, "premium_progress_bar_enabled", Value::Bool(false));
        changed |= insert(map, "nsfw_level", Value::from(0));
        changed |= insert(map, "mfa_level", Value::from(0));
        changed |= insert(map, "premium_tier", Value::from(0));
        changed |= insert(map, "explicit_content_filter", Value::from(0));
        changed |= insert(map, "default_message_notifications", Value::from(0));
        changed |= insert(map, "system_channel_flags", Value::from(0));
        changed |= insert(map, "features", Value::Array(Vec::new()));
        changed |= insert(map, "emojis", Value::Array(Vec::new()));
        changed |= insert(map, "roles", Value::Array(Vec::new()));
        changed |= insert(map, "afk_timeout", Value::from(300));
        changed |= insert(map, "preferred_locale", Value::from("en-US"));
    }
    // A message (partial MESSAGE_UPDATEs omit the lists).
    if is_message {
        for list in [
            "attachments",
            "embeds",
            "mentions",
            "mention_roles",
            "components",
            "sticker_items",
        ] {
            changed |= insert(map, list, Value::Array(Vec::new()));
        }
        changed |= insert(map, "mention_everyone", Value::Bool(false));
        changed |= insert(map, "pinned", Value::Bool(false));
        changed |= insert(map, "tts", Value::Bool(false));
    }
    // An interaction: the attachment size limit arrived in 2025; older payloads lack it.
    if is_interaction {
        changed |= insert(map, "attachment_size_limit", Value::from(10_485_760));
    }
    // A user: `username` and `id`.
    if is_user {
        changed |= insert(map, "discriminator", Value::from("0"));
        changed |= insert(map, "avatar", Value::Null);
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use twilight_model::guild::{Member, Role};

    #[test]
    fn a_member_without_flags_parses_with_the_default() {
        let raw = r#"{"user":{"id":"1","username":"a","discriminator":"0","avatar":null},
            "roles":[],"joined_at":"2021-01-01T00:00:00.000000+00:00","deaf":false,"mute":false}"#;
        assert!(
            serde_json::from_str::<Member>(raw).is_err(),
            "twilight-model wants `flags`"
        );
        let member: Member = payload(EventKind::GuildMemberAdd, raw).expect("lenient parse");
        assert_eq!(member.flags.bits(), 0);
    }

    #[test]
    fn a_role_without_colors_takes_its_color() {
        let raw = r#"{"id":"2","name":"r","color":255,"hoist":true,"position":1,"permissions":"8",
            "managed":false,"mentionable":false}"#;
        let role: Role = payload(EventKind::GuildRoleCreate, raw).expect("lenient parse");
        assert_eq!(role.colors.primary_color, 255);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for raw in ["", "{", "[1,2", "null", r#"{"roles":5}"#, "\u{0}"] {
            assert!(payload::<Member>(EventKind::GuildMemberAdd, raw).is_err());
        }
    }
}
