//! Parsers for the payloads whose twilight-model derive buffers JSON before it types it.
//!
//! `#[serde(untagged)]` and `#[serde(flatten)]` make serde read a value into its private `Content`
//! tree and then type it from that tree: every string and number is stored, then read again. For
//! the payloads below that doubles or triples the cost of the parse (GUILD_CREATE: about 7x a walk
//! of its JSON against 2-3x for a derive without them), and a large guild's `Content` tree is much
//! of the start-up's peak heap. These build the same twilight-model values from the JSON text
//! without that tree: where the derive would try one type and then another, they try each on the
//! text itself.
//!
//! Each gives what the derive gives whenever it succeeds (the tests compare them on every
//! payload we have); when it fails, the caller falls back to the derive, so errors and the lenient
//! path are unchanged.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use twilight_model::gateway::payload::incoming::{GuildCreate, MemberAdd};
use twilight_model::gateway::presence::{Presence, UserOrId};
use twilight_model::guild::{Guild, Member, UnavailableGuild};
use twilight_model::id::Id;
use twilight_model::id::marker::{GuildMarker, UserMarker};
use twilight_model::user::User;

/// GUILD_CREATE. The derive (`untagged`: `Unavailable`, then `Available`) buffers the whole guild,
/// members and presences included. Here the guild is typed from the text; an available guild
/// that says `"unavailable": true` is `Unavailable`, as the derive would make it (its first
/// variant matches), and a payload that is no `Guild` is tried as an `UnavailableGuild`.
pub(crate) fn guild_create(raw: &str) -> serde_json::Result<GuildCreate> {
    match serde_json::from_str::<Guild>(raw) {
        Ok(guild) if guild.unavailable == Some(true) => {
            Ok(GuildCreate::Unavailable(UnavailableGuild {
                id: guild.id,
                unavailable: true,
            }))
        }
        Ok(guild) => Ok(GuildCreate::Available(guild)),
        Err(error) => serde_json::from_str::<UnavailableGuild>(raw)
            .map(GuildCreate::Unavailable)
            .map_err(|_| error),
    }
}

/// GUILD_MEMBER_ADD. The derive flattens the member beside `guild_id`, which buffers it. A
/// `Member` has no `guild_id` and ignores keys it does not know, so both are read from the text.
pub(crate) fn member_add(raw: &str) -> serde_json::Result<MemberAdd> {
    #[derive(Deserialize)]
    struct GuildOnly {
        guild_id: Id<GuildMarker>,
    }
    let member = serde_json::from_str::<Member>(raw)?;
    let GuildOnly { guild_id } = serde_json::from_str(raw)?;
    Ok(MemberAdd { guild_id, member })
}

/// PRESENCE_UPDATE. `Presence` is derived field by field here so that `user` (an untagged
/// `UserOrId`: a full `User`, else `{ "id" }`) is borrowed as raw JSON and typed from it.
pub(crate) fn presence(raw: &str) -> serde_json::Result<Presence> {
    let mut de = serde_json::Deserializer::from_str(raw);
    let presence = de::Deserializer::deserialize_map(&mut de, PresenceVisitor)?;
    de.end()?;
    Ok(presence)
}

/// `UserOrId` from its JSON: a `User` if it is one, else the id alone. Most presences carry only
/// the id: a `User` needs a `username` string, so without one the id is all there is, found
/// without building the error a failed `User` parse costs.
fn user_or_id(raw: &str) -> serde_json::Result<UserOrId> {
    #[derive(Deserialize)]
    struct Probe<'a> {
        id: Id<UserMarker>,
        #[serde(borrow)]
        username: Option<&'a RawValue>,
    }
    let Probe { id, username } = serde_json::from_str(raw)?;
    if username.is_none() {
        return Ok(UserOrId::UserId { id });
    }
    Ok(serde_json::from_str::<User>(raw).map_or(UserOrId::UserId { id }, UserOrId::User))
}

struct PresenceVisitor;

impl<'de> Visitor<'de> for PresenceVisitor {
    type Value = Presence;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct Presence")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Presence, A::Error> {
        let mut activities = None;
        let mut client_status = None;
        let mut guild_id = None;
        let mut status = None;
        let mut user = None;
        fn once<T, E: de::Error>(slot: &Option<T>, field: &'static str) -> Result<(), E> {
            match slot {
                Some(_) => Err(E::duplicate_field(field)),
                None => Ok(()),
            }
        }
        // A key with escapes is not borrowed: an error here, and the caller's derive reads it.
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "activities" => {
                    once(&activities, "activities")?;
                    activities = Some(map.next_value()?);
                }
                "client_status" => {
                    once(&client_status, "client_status")?;
                    client_status = Some(map.next_value()?);
                }
                "guild_id" => {
                    once(&guild_id, "guild_id")?;
                    guild_id = Some(map.next_value()?);
                }
                "status" => {
                    once(&status, "status")?;
                    status = Some(map.next_value()?);
                }
                "user" => {
                    once(&user, "user")?;
                    let raw = map.next_value::<&'de RawValue>()?;
                    user = Some(user_or_id(raw.get()).map_err(de::Error::custom)?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Presence {
            activities: activities.unwrap_or_default(),
            client_status: client_status
                .ok_or_else(|| de::Error::missing_field("client_status"))?,
            guild_id: guild_id.ok_or_else(|| de::Error::missing_field("guild_id"))?,
            status: status.ok_or_else(|| de::Error::missing_field("status"))?,
            user: user.ok_or_else(|| de::Error::missing_field("user"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::json;
    use std::fmt::Debug;

    /// The direct parse and the derive agree: both fail, or both give the same value.
    fn agree<T: DeserializeOwned + PartialEq + Debug>(
        direct: fn(&str) -> serde_json::Result<T>,
        raw: &str,
    ) {
        match (direct(raw), serde_json::from_str::<T>(raw)) {
            (Ok(direct), Ok(derived)) => assert_eq!(direct, derived, "{raw}"),
            (Err(_), Err(_)) => {}
            (direct, derived) => panic!("{raw}\ndirect: {direct:?}\nderive: {derived:?}"),
        }
    }

    fn user() -> serde_json::Value {
        json!({"id": "7", "username": "u", "discriminator": "0", "avatar": null,
               "global_name": "U", "public_flags": 0})
    }

    #[test]
    fn presence_agrees_with_the_derive() {
        let status = json!({"desktop": "online"});
        for d in [
            json!({"user": {"id": "7"}, "guild_id": "1", "status": "online", "client_status": status, "activities": []}),
            json!({"user": user(), "guild_id": "1", "status": "idle", "client_status": status}),
            json!({"user": {"id": "7", "username": "partial"}, "guild_id": "1", "status": "dnd",
                   "client_status": {}, "activities": [{"name": "game", "type": 0, "created_at": 1}],
                   "nick": "ignored"}),
            json!({"user": {"id": "nope"}, "guild_id": "1", "status": "online", "client_status": status}),
            json!({"user": {"id": "7"}, "status": "online", "client_status": status}),
            json!({"user": 7, "guild_id": "1", "status": "online", "client_status": status}),
            json!({"user": {"id": "7", "username": null}, "guild_id": "1", "status": "online", "client_status": status}),
            json!({"user": {"id": "7", "username": 5}, "guild_id": "1", "status": "online", "client_status": status}),
            json!({"user": {"username": "u"}, "guild_id": "1", "status": "online", "client_status": status}),
            json!({"user": {"id": "7", "username": "u", "discriminator": "0"}, "guild_id": "1", "status": "online", "client_status": status}),
            json!({"user": {"id": "7"}, "guild_id": "1", "status": "away", "client_status": status}),
            json!({"user": {"id": "7"}, "guild_id": "1", "status": "online", "client_status": status, "activities": null}),
            json!([1, 2]),
            json!(null),
        ] {
            agree(presence, &d.to_string());
        }
        // Repeated keys and an escaped key: the derive's verdict (the caller falls back to it).
        for raw in [
            r#"{"user":{"id":"7"},"user":{"id":"8"},"guild_id":"1","status":"online","client_status":{}}"#,
            r#"{"us\u0065r":{"id":"7"},"guild_id":"1","status":"online","client_status":{}}"#,
        ] {
            assert!(presence(raw).is_err(), "{raw}");
        }
        let parsed =
            presence(r#"{"user":{"id":"7"},"guild_id":"1","status":"online","client_status":{}} "#)
                .unwrap();
        assert_eq!(parsed.user, UserOrId::UserId { id: Id::new(7) });
    }

    #[test]
    fn member_add_agrees_with_the_derive() {
        let member = |extra: serde_json::Value| {
            let mut m = json!({"guild_id": "1", "user": user(), "roles": ["5"], "joined_at": "2021-01-01T00:00:00.000000+00:00",
                               "deaf": false, "mute": false, "flags": 0, "nick": null, "pending": false});
            for (k, v) in extra.as_object().unwrap() {
                m[k] = v.clone();
            }
            m
        };
        for d in [
            member(json!({})),
            member(
                json!({"avatar": null, "premium_since": null, "communication_disabled_until": null}),
            ),
            member(json!({"guild_id": "x"})),
            member(json!({"user": null})),
            member(json!({"new_field_2030": [1]})),
            json!({"user": user(), "roles": [], "deaf": false, "mute": false, "flags": 0}),
            json!("member"),
        ] {
            agree(member_add, &d.to_string());
        }
    }

    #[test]
    fn guild_create_agrees_with_the_derive() {
        for d in [
            json!({"id": "1", "unavailable": true}),
            json!({"id": "1", "unavailable": false}),
            json!({"id": "1"}),
            json!({"id": "x", "unavailable": true}),
            json!({"unavailable": true}),
        ] {
            agree(guild_create, &d.to_string());
        }
    }
}
