//! The Redis key layout of the shared cache, and the Lua scripts that keep it consistent.

use std::fmt::Display;
use std::sync::Arc;

/// Builds every key under one prefix. See the layout in the [module docs](super).
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Available guilds with their own fields cached: what `guild_ids` answers.
    pub(crate) fn guilds(&self) -> String {
        format!("{}:guilds", self.prefix)
    }

    /// Every guild with anything cached: what `warm` loads.
    pub(crate) fn entries(&self) -> String {
        format!("{}:entries", self.prefix)
    }

    pub(crate) fn unavailable(&self) -> String {
        format!("{}:unavailable", self.prefix)
    }

    pub(crate) fn guild(&self, guild: impl Display) -> String {
        format!("{}:guild:{guild}", self.prefix)
    }

    /// A per-guild key: `channels`, `roles` (sets), `members`, `presences`, `voice_states` (hashes
    /// by user id), `emojis`, `stickers`, `stage_instances`, `scheduled_events`,
    /// `soundboard_sounds` (JSON arrays).
    pub(crate) fn of_guild(&self, guild: impl Display, what: &str) -> String {
        format!("{}:guild:{guild}:{what}", self.prefix)
    }

    pub(crate) fn channel(&self, channel: impl Display) -> String {
        format!("{}:channel:{channel}", self.prefix)
    }

    pub(crate) fn channel_messages(&self, channel: impl Display) -> String {
        format!("{}:channel:{channel}:messages", self.prefix)
    }

    pub(crate) fn message(&self, message: impl Display) -> String {
        format!("{}:message:{message}", self.prefix)
    }

    pub(crate) fn role(&self, role: impl Display) -> String {
        format!("{}:role:{role}", self.prefix)
    }

    pub(crate) fn user(&self, user: impl Display) -> String {
        format!("{}:user:{user}", self.prefix)
    }

    pub(crate) fn user_guilds(&self, user: impl Display) -> String {
        format!("{}:user:{user}:guilds", self.prefix)
    }

    pub(crate) fn current_user(&self) -> String {
        format!("{}:current_user", self.prefix)
    }
}

/// The per-guild JSON lists, by the name of their key suffix.
pub(crate) const LISTS: [&str; 5] = [
    "emojis",
    "stickers",
    "stage_instances",
    "scheduled_events",
    "soundboard_sounds",
];

/// Removes everything of a guild. `ARGV`: prefix, guild id. A user leaves with its last member.
pub(crate) const PURGE_GUILD: &str = r"
local p, g = ARGV[1], ARGV[2]
local gk = p .. ':guild:' .. g
for _, c in ipairs(redis.call('SMEMBERS', gk .. ':channels')) do
  local ck = p .. ':channel:' .. c
  for _, m in ipairs(redis.call('LRANGE', ck .. ':messages', 0, -1)) do
    redis.call('DEL', p .. ':message:' .. m)
  end
  redis.call('DEL', ck, ck .. ':messages')
end
for _, r in ipairs(redis.call('SMEMBERS', gk .. ':roles')) do
  redis.call('DEL', p .. ':role:' .. r)
end
for _, u in ipairs(redis.call('HKEYS', gk .. ':members')) do
  local uk = p .. ':user:' .. u
  redis.call('SREM', uk .. ':guilds', g)
  if redis.call('SCARD', uk .. ':guilds') == 0 then redis.call('DEL', uk) end
end
redis.call('DEL', gk, gk .. ':channels', gk .. ':roles', gk .. ':members', gk .. ':presences',
  gk .. ':voice_states', gk .. ':emojis', gk .. ':stickers', gk .. ':stage_instances',
  gk .. ':scheduled_events', gk .. ':soundboard_sounds')
redis.call('SREM', p .. ':guilds', g)
redis.call('SREM', p .. ':entries', g)
return 1
";

/// Removes one member. `ARGV`: prefix, guild id, user id. The user leaves with its last member.
pub(crate) const REMOVE_MEMBER: &str = r"
local p, g, u = ARGV[1], ARGV[2], ARGV[3]
redis.call('HDEL', p .. ':guild:' .. g .. ':members', u)
local uk = p .. ':user:' .. u
redis.call('SREM', uk .. ':guilds', g)
if redis.call('SCARD', uk .. ':guilds') == 0 then redis.call('DEL', uk) end
return 1
";

/// Appends a message to its channel, dropping the oldest beyond the cap. `ARGV`: prefix, channel
/// id, message id, message JSON, cap.
pub(crate) const PUSH_MESSAGE: &str = r"
local p, c, m, json, cap = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local lk = p .. ':channel:' .. c .. ':messages'
redis.call('SET', p .. ':message:' .. m, json)
redis.call('LREM', lk, 0, m)
redis.call('RPUSH', lk, m)
while redis.call('LLEN', lk) > cap do
  local oldest = redis.call('LPOP', lk)
  redis.call('DEL', p .. ':message:' .. oldest)
end
return 1
";

/// Drops a channel's messages. `ARGV`: prefix, channel id.
pub(crate) const DROP_MESSAGES: &str = r"
local p, c = ARGV[1], ARGV[2]
local lk = p .. ':channel:' .. c .. ':messages'
for _, m in ipairs(redis.call('LRANGE', lk, 0, -1)) do
  redis.call('DEL', p .. ':message:' .. m)
end
redis.call('DEL', lk)
return 1
";
