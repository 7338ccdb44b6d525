//! DAVE end to end (feature `dave`): the MLS handshake with the local server's simulated member,
//! then E2EE Opus frames that the member decrypts.
#![cfg(feature = "dave")]

use std::time::Duration;

use bytes::Bytes;
use nostrum_voice::local::{LocalVoiceConfig, LocalVoiceServer, SIMULATED_MEMBER};
use nostrum_voice::{ConnectionInfo, Track, TrackEnd, VoiceConnection, VoiceEvent};

fn info(server: &LocalVoiceServer) -> ConnectionInfo {
    ConnectionInfo {
        endpoint: server.endpoint().to_owned(),
        session_id: "dave-session".to_owned(),
        token: server.token().to_owned(),
        guild_id: 41_771_983_423_143_937,
        user_id: 104_694_319_306_248_192,
        channel_id: LocalVoiceConfig::default().channel_id,
    }
}

fn frames(n: u8) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(vec![0xFC, i, i, i, i, i, i, i]))
        .collect()
}

#[tokio::test]
async fn dave_handshake_then_e2ee_frames() {
    let config = LocalVoiceConfig {
        dave: true,
        ..LocalVoiceConfig::default()
    };
    let server = LocalVoiceServer::start(config).await.unwrap();
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    assert!(
        server
            .wait_for(Duration::from_secs(10), |_, s| s.dave_transitions == 1)
            .await,
        "the MLS handshake completes: {:?}",
        server.stats()
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !connection.is_e2ee() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(connection.is_e2ee());

    let frames = frames(50);
    let track = connection.play(Track::opus_frames(frames.clone()));
    assert!(matches!(track.ended().await, TrackEnd::Finished));
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= 55)
            .await
    );
    let stats = server.stats();
    assert_eq!(stats.e2ee_frames, 50, "{stats:?}");
    assert_eq!(stats.passthrough_frames, 5, "silence passes through");
    let received = server.received();
    for (packet, frame) in received.iter().zip(&frames) {
        assert_eq!(&packet.opus[..], &frame[..]);
    }
}

#[tokio::test]
async fn passthrough_while_transition_pending_then_e2ee_both_ways() {
    let config = LocalVoiceConfig {
        dave: true,
        dave_hold_transition: true,
        ..LocalVoiceConfig::default()
    };
    let server = LocalVoiceServer::start(config).await.unwrap();
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    let mut events = connection.events();
    // Let the MLS handshake reach TRANSITION READY, held back by the server.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!connection.is_e2ee());
    let track = connection.play(Track::opus_frames(frames(10)));
    assert!(matches!(track.ended().await, TrackEnd::Finished));
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= 15)
            .await
    );
    let stats = server.stats();
    assert_eq!(
        (stats.e2ee_frames, stats.passthrough_frames),
        (0, 15),
        "{stats:?}"
    );

    assert!(server.execute_dave_transition());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !connection.is_e2ee() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(connection.is_e2ee());
    let track = connection.play(Track::opus_frames(frames(10)));
    assert!(matches!(track.ended().await, TrackEnd::Finished));
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= 30)
            .await
    );
    assert_eq!(server.stats().e2ee_frames, 10);

    // Listening under DAVE: the simulated member's E2EE frames are decrypted by the client.
    server.speaking(SIMULATED_MEMBER, 31_337, 1);
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(event, VoiceEvent::Speaking(_)) {
            break;
        }
    }
    let sent: Vec<Vec<u8>> = frames(5).iter().map(|f| f.to_vec()).collect();
    assert_eq!(server.send_audio(31_337, (10, 960), &sent).await, 5);
    let mut got = Vec::new();
    while got.len() < 5 {
        let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
        if let VoiceEvent::Packet(packet) = event {
            assert_eq!(packet.user_id.map(|u| u.get()), Some(SIMULATED_MEMBER));
            got.push(packet.opus.to_vec());
        }
    }
    assert_eq!(got, sent);
    assert_eq!(
        server.stats().e2ee_sent,
        5,
        "the frames went E2EE-encrypted"
    );
}
