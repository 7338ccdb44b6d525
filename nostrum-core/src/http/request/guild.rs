//! Channel, member, role, ban and current-user builders, each field checked as Discord documents.

use serde_json::{Map, Value};
use twilight_model::channel::Channel;
use twilight_model::guild::{Member, Permissions, Role};
use twilight_model::http::permission_overwrite::PermissionOverwrite;
use twilight_model::id::Id;
use twilight_model::id::marker::{ChannelMarker, GuildMarker, RoleMarker, UserMarker};
use twilight_model::user::CurrentUser;
use twilight_model::util::Timestamp;

use super::{Request, check_chars, check_items, check_range};
use crate::http::route::Route;
use crate::http::{Http, HttpError, routes};

/// The body of a builder, its reason, and the first mistake found.
#[derive(Debug, Default)]
struct Fields {
    body: Map<String, Value>,
    reason: Option<String>,
    error: Option<HttpError>,
}

impl Fields {
    fn set(&mut self, key: &str, value: impl serde::Serialize, check: Result<(), HttpError>) {
        if let Err(err) = check {
            self.error.get_or_insert(err);
        }
        let value = serde_json::to_value(value).unwrap_or(Value::Null);
        self.body.insert(key.to_owned(), value);
    }

    fn request<'a, T>(
        self,
        http: &'a Http,
        route: &'static Route,
        params: Vec<String>,
    ) -> Request<'a, T> {
        let mut request = Request::new(http, route, params)
            .with_reason(self.reason)
            .with_body(Value::Object(self.body));
        if let Some(err) = self.error {
            request.fail(err);
        }
        request
    }
}

/// Defines a builder over [`Fields`] with a `reason` setter and its `IntoFuture`.
macro_rules! builder {
    ($(#[$doc:meta])* $name:ident -> $out:ty, $route:ident, [$($id:ident: $marker:ident),*]) => {
        $(#[$doc])*
        #[derive(Debug)]
        #[must_use = "a request does nothing until it is awaited"]
        pub struct $name<'a> {
            http: &'a Http,
            $($id: Id<$marker>,)*
            fields: Fields,
        }

        impl<'a> $name<'a> {
            pub(crate) fn new(http: &'a Http $(, $id: Id<$marker>)*) -> Self {
                Self { http, $($id,)* fields: Fields::default() }
            }

            /// The audit-log reason (at most 512 characters).
            pub fn reason(mut self, reason: impl Into<String>) -> Self {
                self.fields.reason = Some(reason.into());
                self
            }

            fn request(self) -> Request<'a, $out> {
                self.fields.request(self.http, &routes::$route, vec![$(self.$id.to_string()),*])
            }
        }

        into_future!($name, $out);
    };
}

builder!(
    /// `PATCH /channels/{channel_id}`: only what is set changes.
    UpdateChannel -> Channel, UPDATE_CHANNEL, [channel_id: ChannelMarker]
);

impl UpdateChannel<'_> {
    /// The name, 1 to 100 characters.
    pub fn name(mut self, name: &str) -> Self {
        self.fields
            .set("name", name, check_chars("name", name, 1, 100));
        self
    }

    /// The topic, at most 1,024 characters (4,096 in forum and media channels).
    pub fn topic(mut self, topic: Option<&str>) -> Self {
        let check = check_chars("topic", topic.unwrap_or(""), 0, 4096);
        self.fields.set("topic", topic, check);
        self
    }

    /// Whether it is age-restricted.
    pub fn nsfw(mut self, nsfw: bool) -> Self {
        self.fields.set("nsfw", nsfw, Ok(()));
        self
    }

    /// Slow mode: seconds between a user's messages, 0 to 21,600.
    pub fn rate_limit_per_user(mut self, seconds: u16) -> Self {
        let check = check_range("rate_limit_per_user", i64::from(seconds), 0, 21_600);
        self.fields.set("rate_limit_per_user", seconds, check);
        self
    }

    /// The position in the list.
    pub fn position(mut self, position: u32) -> Self {
        self.fields.set("position", position, Ok(()));
        self
    }

    /// The category (`None`: none).
    pub fn parent_id(mut self, parent_id: Option<Id<ChannelMarker>>) -> Self {
        self.fields.set("parent_id", parent_id, Ok(()));
        self
    }

    /// A voice channel's bitrate, at least 8,000.
    pub fn bitrate(mut self, bitrate: u32) -> Self {
        let check = check_range("bitrate", i64::from(bitrate), 8_000, 384_000);
        self.fields.set("bitrate", bitrate, check);
        self
    }

    /// A voice channel's user limit, 0 (none) to 99 (10,000 for stage channels).
    pub fn user_limit(mut self, user_limit: u16) -> Self {
        let check = check_range("user_limit", i64::from(user_limit), 0, 10_000);
        self.fields.set("user_limit", user_limit, check);
        self
    }

    /// Replaces the permission overwrites (at most 100).
    pub fn permission_overwrites(mut self, overwrites: &[PermissionOverwrite]) -> Self {
        let check = check_items("permission_overwrites", overwrites.len(), 0, 100);
        self.fields.set("permission_overwrites", overwrites, check);
        self
    }
}

builder!(
    /// `PATCH /guilds/{guild_id}/members/{user_id}`: only what is set changes. Discord answers the
    /// member, or nothing (`None`) when nothing changed.
    UpdateGuildMember -> Option<Member>, UPDATE_GUILD_MEMBER, [guild_id: GuildMarker, user_id: UserMarker]
);

impl UpdateGuildMember<'_> {
    /// The nickname, 1 to 32 characters; `None` removes it.
    pub fn nick(mut self, nick: Option<&str>) -> Self {
        let check = nick.map_or(Ok(()), |n| check_chars("nick", n, 1, 32));
        self.fields.set("nick", nick, check);
        self
    }

    /// Replaces the roles (at most 350).
    pub fn roles(mut self, roles: &[Id<RoleMarker>]) -> Self {
        let check = check_items("roles", roles.len(), 0, 350);
        self.fields.set("roles", roles, check);
        self
    }

    /// Server mute in voice.
    pub fn mute(mut self, mute: bool) -> Self {
        self.fields.set("mute", mute, Ok(()));
        self
    }

    /// Server deafen in voice.
    pub fn deaf(mut self, deaf: bool) -> Self {
        self.fields.set("deaf", deaf, Ok(()));
        self
    }

    /// Moves the member to a voice channel; `None` disconnects them.
    pub fn channel_id(mut self, channel_id: Option<Id<ChannelMarker>>) -> Self {
        self.fields.set("channel_id", channel_id, Ok(()));
        self
    }

    /// Times the member out until then (at most 28 days ahead); `None` ends a timeout.
    pub fn communication_disabled_until(mut self, until: Option<Timestamp>) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let check = until.map_or(Ok(()), |t| {
            check_range(
                "communication_disabled_until (seconds ahead)",
                t.as_secs() - now,
                i64::MIN,
                28 * 86_400,
            )
        });
        self.fields
            .set("communication_disabled_until", until, check);
        self
    }
}

/// A role's fields, shared by create and update.
macro_rules! role_setters {
    ($name:ident) => {
        impl $name<'_> {
            /// The name, 1 to 100 characters.
            pub fn name(mut self, name: &str) -> Self {
                self.fields
                    .set("name", name, check_chars("name", name, 1, 100));
                self
            }

            /// The permissions.
            pub fn permissions(mut self, permissions: Permissions) -> Self {
                self.fields.set("permissions", permissions, Ok(()));
                self
            }

            /// The colour, `0x000000` to `0xFFFFFF`.
            pub fn color(mut self, color: u32) -> Self {
                let check = check_range("color", i64::from(color), 0, 0xFF_FFFF);
                self.fields.set("color", color, check);
                self
            }

            /// Whether it is shown apart in the member list.
            pub fn hoist(mut self, hoist: bool) -> Self {
                self.fields.set("hoist", hoist, Ok(()));
                self
            }

            /// Whether anyone may mention it.
            pub fn mentionable(mut self, mentionable: bool) -> Self {
                self.fields.set("mentionable", mentionable, Ok(()));
                self
            }

            /// A unicode emoji as its icon.
            pub fn unicode_emoji(mut self, emoji: &str) -> Self {
                let check = check_chars("unicode_emoji", emoji, 1, 100);
                self.fields.set("unicode_emoji", emoji, check);
                self
            }
        }
    };
}

builder!(
    /// `POST /guilds/{guild_id}/roles`.
    CreateGuildRole -> Role, CREATE_GUILD_ROLE, [guild_id: GuildMarker]
);
role_setters!(CreateGuildRole);

builder!(
    /// `PATCH /guilds/{guild_id}/roles/{role_id}`: only what is set changes.
    UpdateGuildRole -> Role, UPDATE_GUILD_ROLE, [guild_id: GuildMarker, role_id: RoleMarker]
);
role_setters!(UpdateGuildRole);

builder!(
    /// `PUT /guilds/{guild_id}/bans/{user_id}`.
    BanUser -> (), BAN_USER_FROM_GUILD, [guild_id: GuildMarker, user_id: UserMarker]
);

impl BanUser<'_> {
    /// Deletes the user's messages of that many seconds back, 0 to 604,800 (7 days).
    pub fn delete_message_seconds(mut self, seconds: u32) -> Self {
        let check = check_range("delete_message_seconds", i64::from(seconds), 0, 604_800);
        self.fields.set("delete_message_seconds", seconds, check);
        self
    }
}

/// `GET /guilds/{guild_id}/members`: needs the GUILD_MEMBERS intent.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListGuildMembers<'a> {
    http: &'a Http,
    guild_id: Id<GuildMarker>,
    limit: Option<u16>,
    after: Option<Id<UserMarker>>,
}

impl<'a> ListGuildMembers<'a> {
    /// How many, 1 to 1,000.
    pub fn limit(mut self, limit: u16) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Members with a greater user id than this.
    pub fn after(mut self, user_id: Id<UserMarker>) -> Self {
        self.after = Some(user_id);
        self
    }

    fn request(self) -> Request<'a, Vec<Member>> {
        let mut request = Request::new(
            self.http,
            &routes::LIST_GUILD_MEMBERS,
            vec![self.guild_id.to_string()],
        );
        if let Some(limit) = self.limit {
            if let Err(err) = check_range("limit", i64::from(limit), 1, 1000) {
                request.fail(err);
            }
            request = request.query("limit", limit);
        }
        if let Some(after) = self.after {
            request = request.query("after", after);
        }
        request
    }
}

into_future!(ListGuildMembers, Vec<Member>);

/// `PATCH /users/@me`: the bot's own user.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct UpdateCurrentUser<'a> {
    http: &'a Http,
    fields: Fields,
}

impl<'a> UpdateCurrentUser<'a> {
    /// The username, 2 to 32 characters.
    pub fn username(mut self, username: &str) -> Self {
        let check = check_chars("username", username, 2, 32);
        self.fields.set("username", username, check);
        self
    }

    /// The avatar as a data URI (`data:image/png;base64,...`); `None` removes it.
    pub fn avatar(mut self, avatar: Option<&str>) -> Self {
        self.fields.set("avatar", avatar, Ok(()));
        self
    }

    /// The banner as a data URI; `None` removes it.
    pub fn banner(mut self, banner: Option<&str>) -> Self {
        self.fields.set("banner", banner, Ok(()));
        self
    }

    fn request(self) -> Request<'a, CurrentUser> {
        self.fields
            .request(self.http, &routes::UPDATE_MY_USER, vec![])
    }
}

into_future!(UpdateCurrentUser, CurrentUser);

builder!(
    /// `PATCH /guilds/{guild_id}/members/@me`: the bot's own member.
    UpdateCurrentMember -> Member, UPDATE_MY_GUILD_MEMBER, [guild_id: GuildMarker]
);

impl UpdateCurrentMember<'_> {
    /// The nickname, 1 to 32 characters; `None` removes it.
    pub fn nick(mut self, nick: Option<&str>) -> Self {
        let check = nick.map_or(Ok(()), |n| check_chars("nick", n, 1, 32));
        self.fields.set("nick", nick, check);
        self
    }
}

impl Http {
    /// `PATCH /channels/{channel_id}`: see [`UpdateChannel`].
    pub fn update_channel(&self, channel_id: Id<ChannelMarker>) -> UpdateChannel<'_> {
        UpdateChannel::new(self, channel_id)
    }

    /// `PATCH /guilds/{guild_id}/members/{user_id}`: see [`UpdateGuildMember`].
    pub fn update_guild_member(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> UpdateGuildMember<'_> {
        UpdateGuildMember::new(self, guild_id, user_id)
    }

    /// `POST /guilds/{guild_id}/roles`: see [`CreateGuildRole`].
    pub fn create_guild_role(&self, guild_id: Id<GuildMarker>) -> CreateGuildRole<'_> {
        CreateGuildRole::new(self, guild_id)
    }

    /// `PATCH /guilds/{guild_id}/roles/{role_id}`: see [`UpdateGuildRole`].
    pub fn update_guild_role(
        &self,
        guild_id: Id<GuildMarker>,
        role_id: Id<RoleMarker>,
    ) -> UpdateGuildRole<'_> {
        UpdateGuildRole::new(self, guild_id, role_id)
    }

    /// `PUT /guilds/{guild_id}/bans/{user_id}`: see [`BanUser`].
    pub fn ban_user_from_guild(
        &self,
        guild_id: Id<GuildMarker>,
        user_id: Id<UserMarker>,
    ) -> BanUser<'_> {
        BanUser::new(self, guild_id, user_id)
    }

    /// `GET /guilds/{guild_id}/members`: see [`ListGuildMembers`].
    pub fn list_guild_members(&self, guild_id: Id<GuildMarker>) -> ListGuildMembers<'_> {
        ListGuildMembers {
            http: self,
            guild_id,
            limit: None,
            after: None,
        }
    }

    /// `PATCH /users/@me`: see [`UpdateCurrentUser`].
    pub fn update_my_user(&self) -> UpdateCurrentUser<'_> {
        UpdateCurrentUser {
            http: self,
            fields: Fields::default(),
        }
    }

    /// `PATCH /guilds/{guild_id}/members/@me`: see [`UpdateCurrentMember`].
    pub fn update_my_guild_member(&self, guild_id: Id<GuildMarker>) -> UpdateCurrentMember<'_> {
        UpdateCurrentMember::new(self, guild_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fields_are_checked_on_await() {
        let http = Http::builder(Some("t".into()))
            .api_base("http://127.0.0.1:9")
            .build();
        let g = Id::new(1);
        let err = http
            .update_guild_member(g, Id::new(2))
            .nick(Some(&"n".repeat(33)))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nick is 33"), "{err}");
        let err = http.update_channel(Id::new(1)).name("").await.unwrap_err();
        assert!(err.to_string().contains("name is 0"), "{err}");
        let err = http
            .create_guild_role(g)
            .color(0x100_0000)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("color"), "{err}");
        let err = http
            .ban_user_from_guild(g, Id::new(2))
            .delete_message_seconds(604_801)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("delete_message_seconds"), "{err}");
        let err = http.list_guild_members(g).limit(0).await.unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        let err = http.update_my_user().username("x").await.unwrap_err();
        assert!(err.to_string().contains("username is 1"), "{err}");
        let far = Timestamp::from_secs(4_000_000_000).unwrap();
        let err = http
            .update_guild_member(g, Id::new(2))
            .communication_disabled_until(Some(far))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("communication_disabled_until"),
            "{err}"
        );
    }
}
