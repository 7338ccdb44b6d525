//! Permission computation in the order Discord documents, as pure functions over their inputs.
//!
//! The order (Discord's "Permission Hierarchy" and "Permission Overwrites"):
//!
//! 1. base: the guild owner has every permission; otherwise the `@everyone` role's permissions OR the
//!    member's roles' permissions, and `ADMINISTRATOR` there grants every permission;
//! 2. in a channel, an administrator (or the owner) keeps every permission; otherwise the `@everyone`
//!    overwrite (deny, then allow), then the member's role overwrites combined (all their denies
//!    OR-ed and applied, then all their allows OR-ed and applied), then the member's own overwrite;
//! 3. a timed-out member keeps only `VIEW_CHANNEL` and `READ_MESSAGE_HISTORY` (administrators and the
//!    owner are exempt);
//! 4. implicit permissions: without `VIEW_CHANNEL` a member has nothing in the channel; without
//!    `SEND_MESSAGES` in a (non-thread) text channel, no `MENTION_EVERYONE`, `SEND_TTS_MESSAGES`,
//!    `ATTACH_FILES` or `EMBED_LINKS`.
//!
//! Nostrum merges every overwrite (`@everyone`, roles, member) in one step, so an `@everyone` allow
//! beats a role deny and a role allow beats a member deny; Discord applies them in three steps.
//!
//! ```
//! use nostrum_core::cache::permissions::{base_permissions, channel_permissions};
//! use nostrum_core::model::channel::permission_overwrite::{PermissionOverwrite, PermissionOverwriteType};
//! use nostrum_core::model::guild::Permissions;
//! use nostrum_core::model::id::Id;
//!
//! let (guild, owner, user, role) = (Id::new(1), Id::new(2), Id::new(3), Id::new(4));
//! let base = base_permissions(user, owner, Permissions::VIEW_CHANNEL | Permissions::SEND_MESSAGES, []);
//! let overwrites = [PermissionOverwrite {
//!     allow: Permissions::empty(),
//!     deny: Permissions::SEND_MESSAGES,
//!     id: role.cast(),
//!     kind: PermissionOverwriteType::Role,
//! }];
//! let perms = channel_permissions(base, guild, user, &[role], &overwrites, false);
//! assert_eq!(perms, Permissions::VIEW_CHANNEL);
//! ```

use twilight_model::channel::permission_overwrite::PermissionOverwrite;
use twilight_model::guild::Permissions;
use twilight_model::id::Id;
use twilight_model::id::marker::{GuildMarker, RoleMarker, UserMarker};

/// What a timed-out member keeps.
pub const TIMED_OUT_ALLOWED: Permissions =
    Permissions::VIEW_CHANNEL.union(Permissions::READ_MESSAGE_HISTORY);

/// What a member loses in a text channel without `SEND_MESSAGES`.
pub const NEEDS_SEND_MESSAGES: Permissions = Permissions::MENTION_EVERYONE
    .union(Permissions::SEND_TTS_MESSAGES)
    .union(Permissions::ATTACH_FILES)
    .union(Permissions::EMBED_LINKS);

/// Step 1: a member's base permissions in the guild, before channel overwrites and timeouts.
///
/// `everyone` is the `@everyone` role's permissions, `roles` those of the member's other roles. The
/// owner, and any member whose permissions include `ADMINISTRATOR`, gets [`Permissions::all`].
pub fn base_permissions(
    user_id: Id<UserMarker>,
    owner_id: Id<UserMarker>,
    everyone: Permissions,
    roles: impl IntoIterator<Item = Permissions>,
) -> Permissions {
    if user_id == owner_id {
        return Permissions::all();
    }
    let permissions = roles.into_iter().fold(everyone, |acc, role| acc | role);
    if permissions.contains(Permissions::ADMINISTRATOR) {
        Permissions::all()
    } else {
        permissions
    }
}

/// A member's permissions in the guild: [`base_permissions`], then the timeout rule.
pub fn guild_permissions(
    user_id: Id<UserMarker>,
    owner_id: Id<UserMarker>,
    everyone: Permissions,
    roles: impl IntoIterator<Item = Permissions>,
    timed_out: bool,
) -> Permissions {
    apply_timeout(
        base_permissions(user_id, owner_id, everyone, roles),
        timed_out,
    )
}

/// Step 2: `base` (from [`base_permissions`]) with a channel's overwrites applied in the documented
/// order, then the timeout rule. Implicit permissions are left to [`apply_implicit`], which needs the
/// channel's kind.
///
/// The `@everyone` overwrite is the one whose id is the guild's; role overwrites are those whose id is
/// one of `member_roles`; the member overwrite is the one whose id is the user's.
pub fn channel_permissions(
    base: Permissions,
    guild_id: Id<GuildMarker>,
    user_id: Id<UserMarker>,
    member_roles: &[Id<RoleMarker>],
    overwrites: &[PermissionOverwrite],
    timed_out: bool,
) -> Permissions {
    if base.contains(Permissions::ADMINISTRATOR) {
        return Permissions::all();
    }
    let mut permissions = base;
    if let Some(everyone) = overwrites.iter().find(|o| o.id == guild_id.cast()) {
        permissions = (permissions & !everyone.deny) | everyone.allow;
    }
    let (allow, deny) = overwrites
        .iter()
        .filter(|o| o.id != guild_id.cast() && member_roles.iter().any(|r| o.id == r.cast()))
        .fold(
            (Permissions::empty(), Permissions::empty()),
            |(allow, deny), o| (allow | o.allow, deny | o.deny),
        );
    permissions = (permissions & !deny) | allow;
    if let Some(member) = overwrites.iter().find(|o| o.id == user_id.cast()) {
        permissions = (permissions & !member.deny) | member.allow;
    }
    apply_timeout(permissions, timed_out)
}

/// Step 3: a timed-out member keeps only [`TIMED_OUT_ALLOWED`], unless an administrator (or owner).
pub fn apply_timeout(permissions: Permissions, timed_out: bool) -> Permissions {
    if timed_out && !permissions.contains(Permissions::ADMINISTRATOR) {
        permissions & TIMED_OUT_ALLOWED
    } else {
        permissions
    }
}

/// Step 4: implicit permissions. Without `VIEW_CHANNEL`, nothing; in a text channel that is not a
/// thread, without `SEND_MESSAGES`, none of [`NEEDS_SEND_MESSAGES`]. Administrators are exempt.
pub fn apply_implicit(permissions: Permissions, thread: bool) -> Permissions {
    if permissions.contains(Permissions::ADMINISTRATOR) {
        permissions
    } else if !permissions.contains(Permissions::VIEW_CHANNEL) {
        Permissions::empty()
    } else if !thread && !permissions.contains(Permissions::SEND_MESSAGES) {
        permissions - NEEDS_SEND_MESSAGES
    } else {
        permissions
    }
}

/// Nostrum's single-step merge, kept to show where it differs from Discord's order.
#[cfg(test)]
fn nostrum_merge(
    base: Permissions,
    guild_id: Id<GuildMarker>,
    user_id: Id<UserMarker>,
    member_roles: &[Id<RoleMarker>],
    overwrites: &[PermissionOverwrite],
) -> Permissions {
    let (allow, deny) = overwrites
        .iter()
        .filter(|o| {
            o.id == guild_id.cast()
                || o.id == user_id.cast()
                || member_roles.iter().any(|r| o.id == r.cast())
        })
        .fold(
            (Permissions::empty(), Permissions::empty()),
            |(allow, deny), o| (allow | o.allow, deny | o.deny),
        );
    (base & !deny) | allow
}

#[cfg(test)]
mod tests {
    use super::*;
    use twilight_model::channel::permission_overwrite::PermissionOverwriteType;

    const GUILD: Id<GuildMarker> = Id::new(100);
    const OWNER: Id<UserMarker> = Id::new(1);
    const USER: Id<UserMarker> = Id::new(2);
    const ROLE_A: Id<RoleMarker> = Id::new(10);
    const ROLE_B: Id<RoleMarker> = Id::new(11);
    const OTHER_ROLE: Id<RoleMarker> = Id::new(12);

    const VIEW: Permissions = Permissions::VIEW_CHANNEL;
    const SEND: Permissions = Permissions::SEND_MESSAGES;
    const HISTORY: Permissions = Permissions::READ_MESSAGE_HISTORY;
    const KICK: Permissions = Permissions::KICK_MEMBERS;

    fn everyone(allow: Permissions, deny: Permissions) -> PermissionOverwrite {
        PermissionOverwrite {
            allow,
            deny,
            id: GUILD.cast(),
            kind: PermissionOverwriteType::Role,
        }
    }

    fn role(id: Id<RoleMarker>, allow: Permissions, deny: Permissions) -> PermissionOverwrite {
        PermissionOverwrite {
            allow,
            deny,
            id: id.cast(),
            kind: PermissionOverwriteType::Role,
        }
    }

    fn member(allow: Permissions, deny: Permissions) -> PermissionOverwrite {
        PermissionOverwrite {
            allow,
            deny,
            id: USER.cast(),
            kind: PermissionOverwriteType::Member,
        }
    }

    const NONE: Permissions = Permissions::empty();

    #[test]
    fn base_is_everyone_or_roles() {
        assert_eq!(base_permissions(USER, OWNER, VIEW, []), VIEW);
        assert_eq!(
            base_permissions(USER, OWNER, VIEW, [SEND, KICK]),
            VIEW | SEND | KICK
        );
        assert_eq!(base_permissions(USER, OWNER, NONE, []), NONE);
    }

    #[test]
    fn administrator_in_any_role_grants_all() {
        assert_eq!(
            base_permissions(USER, OWNER, VIEW, [Permissions::ADMINISTRATOR]),
            Permissions::all()
        );
        assert_eq!(
            base_permissions(USER, OWNER, Permissions::ADMINISTRATOR, []),
            Permissions::all()
        );
        // Overwrites cannot take anything from an administrator.
        let base = base_permissions(USER, OWNER, Permissions::ADMINISTRATOR, []);
        let overwrites = [everyone(NONE, VIEW), member(NONE, Permissions::all())];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[], &overwrites, false),
            Permissions::all()
        );
    }

    #[test]
    fn the_owner_has_all_whatever_the_roles_and_overwrites() {
        let base = base_permissions(OWNER, OWNER, NONE, []);
        assert_eq!(base, Permissions::all());
        let overwrites = [everyone(NONE, VIEW | SEND)];
        assert_eq!(
            channel_permissions(base, GUILD, OWNER, &[], &overwrites, true),
            Permissions::all()
        );
        assert_eq!(
            guild_permissions(OWNER, OWNER, NONE, [], true),
            Permissions::all()
        );
    }

    #[test]
    fn everyone_overwrite_denies_then_allows() {
        let base = VIEW | SEND;
        let overwrites = [everyone(HISTORY, SEND)];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[], &overwrites, false),
            VIEW | HISTORY
        );
        // The same bit both denied and allowed by one overwrite ends allowed (deny, then allow).
        let overwrites = [everyone(SEND, SEND)];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[], &overwrites, false),
            base
        );
    }

    #[test]
    fn role_overwrites_combine_denies_then_allows() {
        let base = VIEW | SEND;
        // One role denies SEND, another allows it: the combined allow wins over the combined deny.
        let overwrites = [role(ROLE_A, NONE, SEND), role(ROLE_B, SEND, NONE)];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[ROLE_A, ROLE_B], &overwrites, false),
            VIEW | SEND
        );
        // In either order of the overwrites.
        let overwrites = [role(ROLE_B, SEND, NONE), role(ROLE_A, NONE, SEND)];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[ROLE_A, ROLE_B], &overwrites, false),
            VIEW | SEND
        );
        // Overwrites of roles the member lacks do not count.
        let overwrites = [role(OTHER_ROLE, NONE, VIEW)];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[ROLE_A], &overwrites, false),
            base
        );
    }

    #[test]
    fn a_role_deny_beats_the_everyone_allow_where_nostrum_says_otherwise() {
        let base = VIEW;
        let overwrites = [everyone(SEND, NONE), role(ROLE_A, NONE, SEND)];
        let documented = channel_permissions(base, GUILD, USER, &[ROLE_A], &overwrites, false);
        assert_eq!(documented, VIEW);
        assert_eq!(
            nostrum_merge(base, GUILD, USER, &[ROLE_A], &overwrites),
            VIEW | SEND,
            "Nostrum's one-step merge lets the @everyone allow win"
        );
    }

    #[test]
    fn the_member_overwrite_comes_last() {
        let base = VIEW | SEND;
        // A role allows, the member overwrite denies: denied (Nostrum: allowed).
        let overwrites = [role(ROLE_A, SEND, NONE), member(NONE, SEND)];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[ROLE_A], &overwrites, false),
            VIEW
        );
        assert_eq!(
            nostrum_merge(base, GUILD, USER, &[ROLE_A], &overwrites),
            VIEW | SEND
        );
        // The @everyone overwrite denies, the member overwrite allows: allowed.
        let overwrites = [everyone(NONE, VIEW), member(VIEW, NONE)];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[], &overwrites, false),
            VIEW | SEND
        );
        // Another member's overwrite does not count.
        let other = PermissionOverwrite {
            id: Id::new(999),
            ..member(NONE, VIEW)
        };
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[], &[other], false),
            base
        );
    }

    #[test]
    fn timed_out_members_keep_view_and_history() {
        let base = VIEW | SEND | HISTORY | KICK;
        assert_eq!(
            guild_permissions(USER, OWNER, base, [], true),
            VIEW | HISTORY
        );
        assert_eq!(guild_permissions(USER, OWNER, base, [], false), base);
        let overwrites = [role(ROLE_A, Permissions::CONNECT, NONE)];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[ROLE_A], &overwrites, true),
            VIEW | HISTORY
        );
        // An overwrite denying VIEW still applies to a timed-out member.
        let overwrites = [everyone(NONE, VIEW)];
        assert_eq!(
            channel_permissions(base, GUILD, USER, &[], &overwrites, true),
            HISTORY
        );
        // Administrators are exempt.
        assert_eq!(
            guild_permissions(USER, OWNER, VIEW, [Permissions::ADMINISTRATOR], true),
            Permissions::all()
        );
    }

    #[test]
    fn implicit_permissions() {
        let perms = SEND | HISTORY | Permissions::EMBED_LINKS;
        assert_eq!(
            apply_implicit(perms, false),
            NONE,
            "no VIEW_CHANNEL, nothing"
        );
        let perms = VIEW | Permissions::EMBED_LINKS | Permissions::ATTACH_FILES | HISTORY;
        assert_eq!(apply_implicit(perms, false), VIEW | HISTORY);
        assert_eq!(
            apply_implicit(perms, true),
            perms,
            "threads use SEND_MESSAGES_IN_THREADS"
        );
        assert_eq!(apply_implicit(perms | SEND, false), perms | SEND);
        assert_eq!(
            apply_implicit(Permissions::all(), false),
            Permissions::all()
        );
    }
}
