//! The shard manager: each shard's state and latency; stop, start and restart at run time.

use std::time::Duration;

use nostrum_core::gateway::{ShardId, ShardStatus};
use nostrum_core::local::{LocalConfig, LocalDiscord};
use nostrum_core::prelude::*;

struct Quiet;

#[consumer]
impl Quiet {
    async fn on_ready(&self, _ready: Ready) {}
}

async fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn shards_report_state_and_restart_at_run_time() {
    let discord = LocalDiscord::start(LocalConfig {
        shards: 2,
        max_concurrency: 2,
        heartbeat_interval: Duration::from_millis(200),
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    let client = Client::builder(discord.token())
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
        .shards(Shards::Fixed(2))
        .consumer(Quiet)
        .build();
    let manager = client.shards().clone();
    let run = tokio::spawn(client.run());
    assert!(discord.wait_for_ready(0, 1, Duration::from_secs(10)).await);
    assert!(discord.wait_for_ready(1, 1, Duration::from_secs(10)).await);
    assert!(
        wait_until(|| {
            let info = manager.info();
            info.len() == 2
                && info
                    .iter()
                    .all(|shard| shard.status == ShardStatus::Connected && shard.latency.is_some())
        })
        .await,
        "both shards connected with a measured latency: {:?}",
        manager.info()
    );
    assert_eq!(manager.info()[1].id, ShardId::new(1, 2));

    assert!(manager.stop(1));
    assert!(wait_until(|| manager.info().len() == 1).await);
    assert!(!manager.stop(1), "already stopped");

    assert!(manager.start(ShardId::new(1, 2)));
    assert!(
        discord.wait_for_ready(1, 2, Duration::from_secs(10)).await,
        "shard 1 identified again"
    );

    assert!(manager.restart(0));
    assert!(
        discord.wait_for_ready(0, 2, Duration::from_secs(10)).await,
        "shard 0 identified again"
    );
    assert_eq!(discord.identifies().len(), 4);
    assert!(
        !run.is_finished(),
        "stopping and starting shards does not end run()"
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
