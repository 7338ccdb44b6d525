//! Request guild members (op 8) against the local Discord: the chunks are gathered by nonce.

use std::time::Duration;

use nostrum_core::client::MembersRequest;
use nostrum_core::local::{LocalConfig, LocalDiscord};
use nostrum_core::prelude::*;
use tokio::sync::mpsc;

struct Bot {
    ready: mpsc::UnboundedSender<Context>,
}

#[consumer]
impl Bot {
    async fn on_ready(&self, ctx: Context, _ready: Ready) {
        let _ = self.ready.send(ctx);
    }
}

#[tokio::test]
async fn request_guild_members_gathers_every_chunk_and_shutdown_ends_run() {
    let discord = LocalDiscord::start(LocalConfig::default()).await.unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let client = Client::builder(discord.token())
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
        .add_intents(Intents::GUILD_MEMBERS)
        .consumer(Bot { ready: tx })
        .build();
    let manager = client.shards().clone();
    let run = tokio::spawn(client.run());
    let ctx = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();

    let guild = Id::new(discord.guild_ids()[0]);
    let members = ctx
        .request_guild_members(MembersRequest::all(guild))
        .await
        .expect("the chunks arrive");
    assert!(
        members.chunks > 1,
        "the local Discord splits members over several chunks"
    );
    let scripted = discord.requests(); // REST is untouched by a gateway request
    assert!(
        scripted
            .iter()
            .all(|request| !request.path.contains("members"))
    );
    let mut ids: Vec<u64> = members
        .members
        .iter()
        .map(|member| member.user.id.get())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), members.members.len(), "no member twice");
    assert!(members.members.len() >= 2);

    let users = MembersRequest::users(guild, [members.members[0].user.id, Id::new(42)]);
    let some = ctx.request_guild_members(users).await.expect("answered");
    assert_eq!(some.members.len(), 1);
    assert_eq!(some.not_found, [Id::new(42)]);

    manager.shutdown().await;
    let result = tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("run returns on shutdown");
    assert!(result.unwrap().is_ok());
}
