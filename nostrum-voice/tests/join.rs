//! Joining through the main gateway: op 4 on the local Discord, its VOICE_STATE_UPDATE and
//! VOICE_SERVER_UPDATE answers, then a voice connection to the local voice server.

use std::time::Duration;

use bytes::Bytes;
use nostrum_core::local::{LocalConfig, LocalDiscord};
use nostrum_core::prelude::*;
use nostrum_voice::local::{LocalVoiceConfig, LocalVoiceServer};
use nostrum_voice::{Track, TrackEnd, Voice};
use tokio::sync::mpsc;

struct Bot {
    ready: mpsc::UnboundedSender<Context>,
    packets: mpsc::UnboundedSender<VoiceIncomingPacket>,
}

#[consumer]
impl Bot {
    async fn on_ready(&self, ctx: Context, _ready: Ready) {
        let _ = self.ready.send(ctx);
    }

    async fn on_voice_incoming_packet(&self, _ctx: Context, packet: VoiceIncomingPacket) {
        let _ = self.packets.send(packet);
    }
}

#[tokio::test]
async fn join_sends_op4_and_connects_with_the_answers() {
    let voice_server = LocalVoiceServer::start(LocalVoiceConfig::default())
        .await
        .unwrap();
    let discord = LocalDiscord::start(LocalConfig {
        voice_endpoint: Some(voice_server.endpoint().to_owned()),
        ..LocalConfig::default()
    })
    .await
    .unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (packets_tx, mut packets) = mpsc::unbounded_channel();
    let client = Client::builder(discord.token())
        .gateway_url(discord.gateway_url())
        .api_base(discord.api_base())
        .consumer(Bot {
            ready: tx,
            packets: packets_tx,
        })
        .build();
    let voice = Voice::subscribed(client.consumers());
    let manager = client.shards().clone();
    let run = tokio::spawn(client.run());
    let ctx = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();

    let guild = discord.guild_ids()[0];
    let channel = discord.channel_ids(guild)[0];
    let connection = voice.join(&ctx, guild, channel).await.expect("joined");
    assert!(voice.get(guild).is_some());
    let track = connection.play(Track::opus_frames(vec![Bytes::from_static(b"\xFCx"); 10]));
    assert!(matches!(track.ended().await, TrackEnd::Finished));
    assert!(
        voice_server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= 15)
            .await
    );
    assert_eq!(voice_server.stats().identifies, 1);

    // Listening: the handler gets the packets, with the speaker mapped from SPEAKING.
    let mut events = connection.events();
    voice_server.speaking(77, 999, 1);
    while !matches!(
        events.recv().await,
        Ok(nostrum_voice::VoiceEvent::Speaking(_))
    ) {}
    let sent = voice_server
        .send_audio(999, (1, 960), &[b"\xFCheard".to_vec()])
        .await;
    assert_eq!(sent, 1);
    let packet = tokio::time::timeout(Duration::from_secs(5), packets.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(packet.user_id.map(|u| u.get()), Some(77));
    assert_eq!(&packet.opus[..], b"\xFCheard");
    assert_eq!(packet.guild_id.get(), guild);

    voice.leave(&ctx, guild).unwrap();
    drop(connection);
    assert!(voice.get(guild).is_none());
    manager.shutdown().await;
    run.abort();
}
