// Update and delete payloads: the cache's old value beside the new one, the deleted cached object.
use nostrum_core::prelude::*;
use nostrum_core::{Deleted, Update};

struct Bot;

#[consumer]
impl Bot {
    async fn on_guild_member_update(&self, u: Update<CachedMember, MemberUpdate>) {
        let _ = u;
    }

    async fn on_message_delete(&self, _ctx: Context, d: Deleted<MessageDelete, CachedMessage>) {
        let _ = d;
    }
}

fn main() {
    let events = <Bot as Consumer>::EVENTS;
    assert!(events.contains(EventKind::GuildMemberUpdate));
    assert!(events.contains(EventKind::MessageDelete));
    assert!(<Bot as Consumer>::INTENTS.contains(Intents::GUILD_MEMBERS));
}
