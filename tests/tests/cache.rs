//! The cache sees every event first: a member update hands the consumer the old member beside the new.

use std::time::Duration;

use nostrum_core::cache::{CacheConfig, ResourceType};
use nostrum_core::local::{LocalConfig, LocalDiscord};
use nostrum_core::prelude::*;
use serde_json::json;
use tokio::sync::mpsc;

struct Bot {
    ready: mpsc::UnboundedSender<Context>,
    updates: mpsc::UnboundedSender<(Context, Update<CachedMember, MemberUpdate>)>,
}

#[consumer]
impl Bot {
    async fn on_ready(&self, ctx: Context, _ready: Ready) {
        let _ = self.ready.send(ctx);
    }

    async fn on_guild_member_update(
        &self,
        ctx: Context,
        update: Update<CachedMember, MemberUpdate>,
    ) {
        let _ = self.updates.send((ctx, update));
    }
}

#[tokio::test]
async fn on_guild_member_update_receives_the_old_member() {
    let discord = LocalDiscord::start(LocalConfig::default()).await.unwrap();
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let (updates_tx, mut updates) = mpsc::unbounded_channel();
    let client = Client::builder(discord.token())
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
        .cache(CacheConfig {
            resources: ResourceType::ALL,
            ..CacheConfig::default()
        })
        .consumer(Bot {
            ready: ready_tx,
            updates: updates_tx,
        })
        .build();
    assert!(
        client.intents().contains(Intents::GUILD_MEMBERS),
        "the cache's resources add their intents"
    );
    let manager = client.shards().clone();
    let run = tokio::spawn(client.run());
    let ctx = tokio::time::timeout(Duration::from_secs(10), ready.recv())
        .await
        .unwrap()
        .unwrap();

    let guild = Id::new(discord.guild_ids()[0]);
    let mut cached = None;
    for _ in 0..100 {
        cached = ctx
            .cache()
            .guild_members(guild)
            .into_iter()
            .find(|user| user.get() != discord.bot_user_id());
        if cached.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let user_id = cached.expect("GUILD_CREATE filled the cache with members");
    let before = ctx
        .cache()
        .member(guild, user_id)
        .expect("the member is cached");
    assert_eq!(before.nick, None);
    let user = ctx.cache().user(user_id).expect("its user is cached once");

    discord
        .dispatch(
            0,
            "GUILD_MEMBER_UPDATE",
            json!({
                "guild_id": guild.to_string(),
                "user": { "id": user_id.to_string(), "username": &*user.name, "discriminator": "0", "avatar": null },
                "roles": [], "nick": "renamed", "avatar": null, "joined_at": "2022-01-01T00:00:00.000000+00:00",
                "premium_since": null, "deaf": false, "mute": false, "pending": false,
                "communication_disabled_until": null, "flags": 0
            }),
        )
        .await
        .expect("a live session");
    let (ctx, update) = tokio::time::timeout(Duration::from_secs(5), updates.recv())
        .await
        .unwrap()
        .unwrap();
    let old = update.old.expect("the old member, from the cache");
    assert_eq!(old.user_id, user_id);
    assert_eq!(old.nick, None);
    assert_eq!(update.new.nick.as_deref(), Some("renamed"));
    assert_eq!(
        ctx.cache().member(guild, user_id).unwrap().nick.as_deref(),
        Some("renamed"),
        "cache updated before dispatch"
    );

    manager.shutdown().await;
    assert!(
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .unwrap()
            .unwrap()
            .is_ok()
    );
}
