//! End to end: a VoiceConnection against the LocalVoiceServer, over real sockets on loopback.

use std::time::Duration;

use bytes::Bytes;
use nostrum_voice::local::{LocalVoiceConfig, LocalVoiceServer};
use nostrum_voice::{
    ConnectionInfo, ConnectionStatus, CryptoMode, Track, TrackEnd, TrackState, VoiceConnection,
    VoiceErrorKind, VoiceEvent,
};
use tokio::sync::broadcast;

const SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];

fn info(server: &LocalVoiceServer) -> ConnectionInfo {
    ConnectionInfo {
        endpoint: server.endpoint().to_owned(),
        session_id: "voice-session".to_owned(),
        token: server.token().to_owned(),
        guild_id: 41_771_983_423_143_937,
        user_id: 104_694_319_306_248_192,
        channel_id: 127_121_515_262_115_840,
    }
}

async fn server_with(modes: &[&str], heartbeat: Duration) -> LocalVoiceServer {
    let config = LocalVoiceConfig {
        modes: modes.iter().map(|m| m.to_string()).collect(),
        heartbeat_interval: heartbeat,
        ..LocalVoiceConfig::default()
    };
    LocalVoiceServer::start(config).await.unwrap()
}

/// "Opus" frames for transport checks: a TOC byte and a frame number.
fn frames(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut frame = vec![0xFC, (i >> 8) as u8, i as u8];
            frame.extend(std::iter::repeat_n(i as u8, 40 + i % 80));
            frame
        })
        .collect()
}

/// Ogg's CRC-32, written here apart from the crate's.
fn crc(page: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &byte in page {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

fn ogg_page(flags: u8, granule: u64, seq: u32, packets: &[Vec<u8>]) -> Vec<u8> {
    let mut table = Vec::new();
    for packet in packets {
        table.extend(std::iter::repeat_n(255u8, packet.len() / 255));
        table.push((packet.len() % 255) as u8);
    }
    let mut page = b"OggS\0".to_vec();
    page.push(flags);
    page.extend_from_slice(&granule.to_le_bytes());
    page.extend_from_slice(&0x1234_5678u32.to_le_bytes());
    page.extend_from_slice(&seq.to_le_bytes());
    page.extend_from_slice(&[0; 4]);
    page.push(table.len() as u8);
    page.extend_from_slice(&table);
    for packet in packets {
        page.extend_from_slice(packet);
    }
    let sum = crc(&page);
    page[22..26].copy_from_slice(&sum.to_le_bytes());
    page
}

/// An Ogg/Opus stream: OpusHead, OpusTags, then the frames 50 to a page.
fn ogg_opus(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut head = b"OpusHead".to_vec();
    head.extend_from_slice(&[1, 2, 0x38, 0x01, 0x80, 0xBB, 0, 0, 0, 0, 0]);
    let mut tags = b"OpusTags".to_vec();
    tags.extend_from_slice(&[4, 0, 0, 0, b't', b'e', b's', b't', 0, 0, 0, 0]);
    let mut out = ogg_page(2, 0, 0, &[head]);
    out.extend(ogg_page(0, 0, 1, &[tags]));
    for (i, chunk) in frames.chunks(50).enumerate() {
        let last = (i + 1) * 50 >= frames.len();
        let granule = (312 + 960 * (i + 1) * 50) as u64;
        out.extend(ogg_page(
            if last { 4 } else { 0 },
            granule,
            i as u32 + 2,
            chunk,
        ));
    }
    out
}

async fn next_event(
    events: &mut broadcast::Receiver<VoiceEvent>,
    mut want: impl FnMut(&VoiceEvent) -> bool,
) -> VoiceEvent {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.recv().await.expect("events closed");
            if want(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event did not come")
}

async fn plays_five_seconds_of_ogg_opus(mode: CryptoMode) {
    let server = server_with(&[mode.name(), "xsalsa20_poly1305"], Duration::from_secs(5)).await;
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    assert_eq!(connection.mode(), mode);
    assert_eq!(server.stats().mode.as_deref(), Some(mode.name()));

    let sent = frames(250);
    let track = connection.play(Track::ogg_opus(ogg_opus(&sent)).unwrap());
    let end = tokio::time::timeout(Duration::from_secs(10), track.ended())
        .await
        .unwrap();
    assert!(matches!(end, TrackEnd::Finished), "{end:?}");
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= 255)
            .await
    );

    let received = server.received();
    assert_eq!(received.len(), 255, "250 frames and 5 silence frames");
    assert_eq!(server.stats().rejected, 0);
    for (i, packet) in received.iter().enumerate() {
        assert_eq!(packet.ssrc, connection.ssrc());
        if i > 0 {
            let prev = &received[i - 1];
            assert_eq!(packet.sequence, prev.sequence.wrapping_add(1), "seq at {i}");
            assert_eq!(
                packet.timestamp,
                prev.timestamp.wrapping_add(960),
                "ts at {i}"
            );
        }
        if i < 250 {
            assert_eq!(packet.opus, sent[i], "frame {i}");
        } else {
            assert_eq!(packet.opus, SILENCE);
        }
    }
    // Paced on the 20 ms clock: 249 intervals of 20 ms between the first and the last frame.
    let span = received[249].at - received[0].at;
    assert!(
        span > Duration::from_millis(4_850) && span < Duration::from_millis(5_500),
        "{span:?}"
    );
    let speaking = server.stats().speaking;
    assert_eq!(speaking.first().map(|s| s.0), Some(1));
    assert!(speaking[0].1 <= received[0].at, "SPEAKING precedes audio");
    assert!(
        server
            .wait_for(Duration::from_secs(2), |_, s| s
                .speaking
                .last()
                .map(|s| s.0)
                == Some(0))
            .await
    );
}

#[tokio::test]
async fn aes256_gcm_plays_ogg_opus_in_order() {
    plays_five_seconds_of_ogg_opus(CryptoMode::Aes256GcmRtpSize).await;
}

#[tokio::test]
async fn xchacha20_plays_ogg_opus_in_order() {
    plays_five_seconds_of_ogg_opus(CryptoMode::XChaCha20Poly1305RtpSize).await;
}

#[tokio::test]
async fn prefers_aes_and_listens_by_user() {
    let server = LocalVoiceServer::start(LocalVoiceConfig::default())
        .await
        .unwrap();
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    assert_eq!(connection.mode(), CryptoMode::Aes256GcmRtpSize);
    let mut events = connection.events();

    server.clients_connect(&[77]);
    let joined = next_event(&mut events, |e| matches!(e, VoiceEvent::ClientsConnect(_))).await;
    assert!(matches!(joined, VoiceEvent::ClientsConnect(ids) if ids[0].get() == 77));
    server.speaking(77, 999, 1);
    let speaking = next_event(&mut events, |e| matches!(e, VoiceEvent::Speaking(_))).await;
    assert!(
        matches!(speaking, VoiceEvent::Speaking(s) if s.ssrc == 999 && s.user_id.map(|u| u.get()) == Some(77))
    );

    let audio = frames(10);
    assert_eq!(server.send_audio(999, (65_530, 7_000), &audio).await, 10);
    for (i, frame) in audio.iter().enumerate() {
        let event = next_event(&mut events, |e| matches!(e, VoiceEvent::Packet(_))).await;
        let VoiceEvent::Packet(packet) = event else {
            unreachable!()
        };
        assert_eq!(packet.user_id.map(|u| u.get()), Some(77));
        assert_eq!(packet.ssrc, 999);
        assert_eq!(packet.sequence, 65_530u16.wrapping_add(i as u16));
        assert_eq!(packet.timestamp, 7_000 + 960 * i as u32);
        assert_eq!(&packet.opus[..], &frame[..]);
        assert!(VoiceEvent::Packet(packet).into_event().is_some());
    }
    server.client_disconnect(77);
    let left = next_event(&mut events, |e| {
        matches!(e, VoiceEvent::ClientDisconnect(_))
    })
    .await;
    assert!(matches!(left, VoiceEvent::ClientDisconnect(id) if id.get() == 77));
}

#[tokio::test]
async fn resumes_with_seq_ack_and_gets_missed_messages() {
    let server = server_with(
        &["aead_xchacha20_poly1305_rtpsize"],
        Duration::from_millis(100),
    )
    .await;
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    let mut events = connection.events();
    // READY is seq 1, SESSION DESCRIPTION seq 2: heartbeats acknowledge 2.
    assert!(
        server
            .wait_for(Duration::from_secs(3), |_, s| s
                .heartbeats
                .iter()
                .any(|h| h.seq_ack == Some(2)))
            .await
    );
    server.drop_connection();
    server.speaking(55, 1_234, 1); // seq 3, sent while the client is away
    let resumed = next_event(&mut events, |e| matches!(e, VoiceEvent::Resumed)).await;
    assert!(matches!(resumed, VoiceEvent::Resumed));
    let replayed = next_event(&mut events, |e| matches!(e, VoiceEvent::Speaking(_))).await;
    assert!(matches!(replayed, VoiceEvent::Speaking(s) if s.ssrc == 1_234));
    let stats = server.stats();
    assert_eq!(stats.resumes, vec![Some(2)]);
    assert_eq!(stats.identifies, 1);
    assert!(matches!(connection.status(), ConnectionStatus::Connected));

    // Audio still flows on the same session.
    let track = connection.play(Track::opus_frames(vec![Bytes::from_static(b"\xFCabc"); 5]));
    assert!(matches!(track.ended().await, TrackEnd::Finished));
    assert!(
        server
            .wait_for(Duration::from_secs(2), |p, _| p.len() >= 10)
            .await
    );
}

#[tokio::test]
async fn fatal_close_and_bad_token_stop_with_typed_errors() {
    let server = LocalVoiceServer::start(LocalVoiceConfig::default())
        .await
        .unwrap();
    let mut bad = info(&server);
    bad.token = "wrong".to_owned();
    let error = VoiceConnection::connect(bad).await.unwrap_err();
    assert_eq!(
        error.kind(),
        &VoiceErrorKind::FatalClose {
            code: 4004,
            reason: "authentication failed".into()
        }
    );

    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    server.close_with(4014);
    let error = tokio::time::timeout(Duration::from_secs(5), connection.closed())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(error.kind(), VoiceErrorKind::FatalClose { code: 4014, .. }),
        "{error}"
    );
    assert_eq!(server.stats().resumes.len(), 0);

    let retired = server_with(
        &["xsalsa20_poly1305", "xsalsa20_poly1305_lite"],
        Duration::from_secs(5),
    )
    .await;
    let error = VoiceConnection::connect(info(&retired)).await.unwrap_err();
    assert!(
        matches!(error.kind(), VoiceErrorKind::NoSupportedMode { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn pause_resume_stop() {
    let server = LocalVoiceServer::start(LocalVoiceConfig::default())
        .await
        .unwrap();
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    let frames: Vec<Bytes> = frames(500).into_iter().map(Bytes::from).collect();
    let track = connection.play(Track::opus_frames(frames));
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= 5)
            .await
    );
    track.pause();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(track.state(), TrackState::Paused));
    let paused_at = server.received().len();
    assert_eq!(&server.received()[paused_at - 1].opus[..], SILENCE);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.received().len(),
        paused_at,
        "nothing sent while paused"
    );
    track.resume();
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= paused_at + 5)
            .await
    );
    track.stop();
    assert!(matches!(track.ended().await, TrackEnd::Stopped));
    let received = server.received();
    for pair in received.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
    }
    // Replacing a track ends the old one.
    let first = connection.play(Track::opus_frames(vec![Bytes::from_static(b"\xFC1"); 100]));
    let second = connection.play(Track::opus_frames(vec![Bytes::from_static(b"\xFC2"); 3]));
    assert!(matches!(first.ended().await, TrackEnd::Replaced));
    assert!(matches!(second.ended().await, TrackEnd::Finished));
}

#[tokio::test]
async fn session_invalid_identifies_anew_and_zombie_resumes() {
    let server = server_with(&["aead_aes256_gcm_rtpsize"], Duration::from_millis(100)).await;
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    let mut events = connection.events();

    server.stop_heartbeat_acks();
    next_event(&mut events, |e| matches!(e, VoiceEvent::Resumed)).await;
    assert_eq!(server.stats().resumes.len(), 1);

    server.close_with(4006);
    let ready = next_event(&mut events, |e| matches!(e, VoiceEvent::Ready(_))).await;
    assert!(matches!(ready, VoiceEvent::Ready(r) if r.mode == "aead_aes256_gcm_rtpsize"));
    assert_eq!(server.stats().identifies, 2);
    let track = connection.play(Track::opus_frames(vec![Bytes::from_static(b"\xFCnew"); 3]));
    assert!(matches!(track.ended().await, TrackEnd::Finished));
    assert!(
        server
            .wait_for(Duration::from_secs(2), |p, _| p.len() >= 8)
            .await
    );
    assert_eq!(server.stats().rejected, 0, "the new key is used");
}

#[tokio::test]
async fn ogg_opus_seeks_to_the_nearest_packet_while_playing() {
    let server = LocalVoiceServer::start(LocalVoiceConfig::default())
        .await
        .unwrap();
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    let sent = frames(250);
    let track = connection.play(Track::ogg_opus(ogg_opus(&sent)).unwrap());
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= 5)
            .await
    );
    // 4.01 s is nearer to frame 200 (4.00 s) than to 201 (4.02 s).
    track.seek(Duration::from_millis(4_010)).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), track.ended())
        .await
        .unwrap();
    assert!(matches!(end, TrackEnd::Finished), "{end:?}");
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= 5
                && p[p.len() - 5..].iter().all(|p| p.opus == SILENCE))
            .await
    );
    let mut received = server.received();
    received.truncate(received.len() - 5);
    let jump = received
        .iter()
        .position(|p| p.opus == sent[200])
        .expect("frame 200 was sent");
    assert!((5..60).contains(&jump), "seeked after {jump} frames");
    for (i, packet) in received.iter().enumerate() {
        let want = if i < jump { i } else { 200 + i - jump };
        assert_eq!(packet.opus, sent[want], "packet {i}");
    }
    assert_eq!(received.len() - jump, 50, "frames 200..250 after the seek");
    for pair in received.windows(2) {
        assert_eq!(pair[1].sequence, pair[0].sequence.wrapping_add(1));
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(960));
    }
}
