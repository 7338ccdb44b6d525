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

/// Connects with DAVE on and waits until the first transition made the audio E2EE.
async fn e2ee_connection() -> (LocalVoiceServer, VoiceConnection) {
    let config = LocalVoiceConfig {
        dave: true,
        ..LocalVoiceConfig::default()
    };
    let server = LocalVoiceServer::start(config).await.unwrap();
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !connection.is_e2ee() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(connection.is_e2ee(), "{:?}", server.stats());
    (server, connection)
}

/// Waits for the client's DAVE transition event; returns its protocol version.
async fn transitioned(events: &mut tokio::sync::broadcast::Receiver<VoiceEvent>) -> u16 {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let VoiceEvent::DaveTransition {
                protocol_version, ..
            } = events.recv().await.unwrap()
            {
                return protocol_version;
            }
        }
    })
    .await
    .expect("no DAVE transition")
}

/// Plays `n` frames and waits until they and the five silence frames have arrived; returns the
/// frames received for them (silence removed).
async fn play_frames(
    server: &LocalVoiceServer,
    connection: &VoiceConnection,
    n: u8,
) -> Vec<Vec<u8>> {
    let before = server.received().len();
    let track = connection.play(Track::opus_frames(frames(n)));
    assert!(matches!(track.ended().await, TrackEnd::Finished));
    let want = before + usize::from(n) + 5;
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= want)
            .await,
        "{:?}",
        server.stats()
    );
    let received = server.received();
    received[before..before + usize::from(n)]
        .iter()
        .map(|p| p.opus.clone())
        .collect()
}

fn plain(n: u8) -> Vec<Vec<u8>> {
    frames(n).iter().map(|f| f.to_vec()).collect()
}

#[tokio::test]
async fn epoch_1_recreates_the_group_and_e2ee_goes_on_with_new_keys() {
    let (server, connection) = e2ee_connection().await;
    let mut events = connection.events();
    assert_eq!(play_frames(&server, &connection, 5).await, plain(5));
    assert_eq!(server.stats().e2ee_frames, 5);

    // A new group: the client re-initialises its session, sends a new key package, commits the
    // fresh member's proposal and executes the new transition.
    server.dave_prepare_epoch(1, 1);
    assert_eq!(transitioned(&mut events).await, 1);
    let stats = server.stats();
    assert_eq!(
        (stats.dave_key_packages, stats.dave_transitions),
        (2, 2),
        "{stats:?}"
    );
    assert!(connection.is_e2ee());
    // Only the new group's keys open these: the simulated member was made anew.
    assert_eq!(play_frames(&server, &connection, 5).await, plain(5));
    let stats = server.stats();
    assert_eq!((stats.e2ee_frames, stats.rejected), (10, 0), "{stats:?}");

    // A later epoch of the same group is not a re-initialisation.
    server.dave_prepare_epoch(1, 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.stats().dave_key_packages, 2);
}

#[tokio::test]
async fn downgrade_to_version_0_passes_through_then_upgrade_back() {
    let (server, connection) = e2ee_connection().await;
    let mut events = connection.events();

    // Op 21 to protocol version 0, op 23, op 22: frames pass through unencrypted.
    let id = server.dave_downgrade().unwrap();
    assert_eq!(transitioned(&mut events).await, 0);
    assert!(!connection.is_e2ee());
    assert_eq!(server.stats().dave_transitions, 2);
    assert_eq!(play_frames(&server, &connection, 10).await, plain(10));
    let stats = server.stats();
    assert_eq!(
        (stats.e2ee_frames, stats.passthrough_frames),
        (0, 15),
        "transition {id}: {stats:?}"
    );

    // Back up: op 24 with epoch 1 makes a new group; E2EE again after its transition.
    server.dave_prepare_epoch(1, 1);
    assert_eq!(transitioned(&mut events).await, 1);
    assert!(connection.is_e2ee());
    assert_eq!(play_frames(&server, &connection, 10).await, plain(10));
    let stats = server.stats();
    assert_eq!(
        (stats.e2ee_frames, stats.passthrough_frames, stats.rejected),
        (10, 20, 0),
        "{stats:?}"
    );
    assert_eq!(stats.dave_key_packages, 2);
}

#[tokio::test]
async fn invalid_commit_or_welcome_is_reported_and_the_group_joined_again() {
    let (server, connection) = e2ee_connection().await;
    let mut events = connection.events();
    // Transition ids: 1 the first join, 2 the bad commit, 3 the re-join, 4 the bad welcome, 5.
    for (op, bad_id, rejoin_id) in [(29, 2u16, 3u16), (30, 4, 5)] {
        assert!(server.dave_send_invalid(op));
        let rejoined = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let VoiceEvent::DaveTransition { transition_id, .. } =
                    events.recv().await.unwrap()
                {
                    return transition_id;
                }
            }
        })
        .await
        .expect("re-joined");
        assert_eq!(rejoined, rejoin_id);
        let stats = server.stats();
        assert_eq!(
            stats.dave_invalid.last(),
            Some(&u64::from(bad_id)),
            "op 31 names the bad transition ({op}): {stats:?}"
        );
        assert!(connection.is_e2ee());
        assert_eq!(play_frames(&server, &connection, 5).await, plain(5));
    }
    let stats = server.stats();
    assert_eq!(stats.dave_invalid, vec![2, 4]);
    assert_eq!(stats.dave_key_packages, 3, "a new key package after each");
    assert_eq!((stats.e2ee_frames, stats.rejected), (10, 0), "{stats:?}");
}

#[tokio::test]
async fn a_session_that_began_without_dave_is_upgraded() {
    // The server offers no DAVE at the start (dave_protocol_version 0): frames pass through.
    let server = LocalVoiceServer::start(LocalVoiceConfig::default())
        .await
        .unwrap();
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    let mut events = connection.events();
    assert!(!connection.is_e2ee());
    assert_eq!(play_frames(&server, &connection, 5).await, plain(5));
    assert_eq!(server.stats().e2ee_frames, 0);

    // The call upgrades: the external sender package arrives; the client starts a DAVE session,
    // sends its key package, commits the simulated member's proposal and executes the transition.
    assert!(server.dave_upgrade());
    assert_eq!(transitioned(&mut events).await, 1);
    assert!(connection.is_e2ee());
    assert_eq!(play_frames(&server, &connection, 5).await, plain(5));
    let stats = server.stats();
    assert_eq!(
        (stats.e2ee_frames, stats.rejected, stats.dave_key_packages),
        (5, 0, 1),
        "{stats:?}"
    );
    // Once upgraded, there is nothing to upgrade.
    assert!(!server.dave_upgrade());
}
