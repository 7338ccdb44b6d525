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

#[tokio::test]
async fn moving_to_another_channel_keeps_one_connection_and_the_track_playing() {
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
    let (packets_tx, _packets) = mpsc::unbounded_channel();
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
    let a = discord.channel_ids(guild)[0];
    // The local guild has one channel; its Discord answers op 4 for any channel id.
    let b = a + 1;

    let connection = voice.join(&ctx, guild, a).await.expect("joined A");
    assert_eq!(connection.channel_id().get(), a);
    let mut events = connection.events();
    // 3 s of numbered frames: the move happens in the middle of the track.
    let frames: Vec<Bytes> = (0..150u8)
        .map(|i| Bytes::from(vec![0xFC, i, i, i]))
        .collect();
    let track = connection.play(Track::opus_frames(frames.clone()));
    assert!(
        voice_server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= 25)
            .await
    );

    // Op 4 with channel B; the local Discord answers with a new VOICE_STATE_UPDATE and
    // VOICE_SERVER_UPDATE, and the same connection makes a new voice session.
    let moved = voice.join(&ctx, guild, b).await.expect("moved to B");
    assert!(std::sync::Arc::ptr_eq(&moved, &connection), "one per guild");
    assert_eq!(connection.channel_id().get(), b);
    assert!(voice.get(guild).is_some_and(|c| c.channel_id().get() == b));
    let ready = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(nostrum_voice::VoiceEvent::Ready(ready)) = events.recv().await {
                return ready;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(ready.channel_id.get(), b);

    let end = tokio::time::timeout(Duration::from_secs(10), track.ended())
        .await
        .unwrap();
    assert!(matches!(end, TrackEnd::Finished), "{end:?}");
    assert!(
        voice_server
            .wait_for(Duration::from_secs(3), |p, s| p.len() >= 155
                && s.open_connections == 1)
            .await,
        "the old voice socket is closed: {:?}",
        voice_server.stats()
    );
    let stats = voice_server.stats();
    assert_eq!(stats.identifies, 2);
    assert_eq!(stats.rejected, 0);

    // Every frame once, in order, one RTP stream across both sessions; the track's end and its
    // silence tail went on the new session.
    let received = voice_server.received();
    assert_eq!(received.len(), 155);
    for (i, packet) in received.iter().enumerate() {
        if i < 150 {
            assert_eq!(packet.opus, frames[i], "frame {i}");
        }
        if i > 0 {
            let prev = &received[i - 1];
            assert_eq!(packet.sequence, prev.sequence.wrapping_add(1), "seq at {i}");
            assert_eq!(
                packet.timestamp,
                prev.timestamp.wrapping_add(960),
                "ts at {i}"
            );
            assert!(
                packet.session >= prev.session,
                "no frame of A after B's at {i}"
            );
        }
    }
    let on_a = received.iter().filter(|p| p.session == 1).count();
    assert!((25..150).contains(&on_a), "{on_a} frames on A");
    assert!(received[on_a..].iter().all(|p| p.session == 2));

    voice.leave(&ctx, guild).unwrap();
    drop((moved, connection));
    assert!(
        voice_server
            .wait_for(Duration::from_secs(3), |_, s| s.open_connections == 0)
            .await
    );
    manager.shutdown().await;
    run.abort();
}
