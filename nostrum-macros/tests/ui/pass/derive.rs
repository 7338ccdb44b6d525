// `#[derive(Consumer)]`: composition of two consumers, a skipped field that is not one.
use nostrum_core::prelude::*;

struct Pings;

#[consumer]
impl Pings {
    async fn on_message_create(&self, _msg: Message) {}
}

struct Members;

#[consumer]
impl Members {
    async fn on_guild_member_add(&self, _member: MemberAdd) {}
    async fn on_message_create(&self, _msg: Message) {}
}

#[derive(Consumer)]
struct Bot {
    pings: Pings,
    members: Members,
    #[consumer(skip)]
    config: String,
}

#[derive(Consumer)]
struct Nested(Bot, #[consumer(skip)] u64);

fn main() {
    let events = <Bot as Consumer>::EVENTS;
    assert!(events.contains(EventKind::MessageCreate));
    assert!(events.contains(EventKind::GuildMemberAdd));
    assert_eq!(events.len(), 2);
    assert!(<Bot as Consumer>::INTENTS.contains(Intents::GUILD_MEMBERS | Intents::GUILD_MESSAGES));
    assert_eq!(<Nested as Consumer>::EVENTS, events);
    let bot = Bot { pings: Pings, members: Members, config: String::new() };
    let _ = (bot.pings, bot.members, bot.config);
}
