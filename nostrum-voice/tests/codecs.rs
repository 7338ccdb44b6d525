//! MP3, FLAC and Ogg Vorbis decoded in-process (symphonia), encoded with libopus and played to the
//! local voice server: every frame arrives, in order, with RTP timestamps 960 apart, and decodes
//! back to the fixture's 440 Hz tone. The fixtures are committed (tests/fixtures/README.md):
//! ffmpeg is not needed here.

use std::path::PathBuf;
use std::time::Duration;

use nostrum_voice::local::{LocalVoiceConfig, LocalVoiceServer, ReceivedPacket};
use nostrum_voice::{ConnectionInfo, Track, TrackEnd, VoiceConnection};

const SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

async fn connected() -> (LocalVoiceServer, VoiceConnection) {
    let server = LocalVoiceServer::start(LocalVoiceConfig::default())
        .await
        .unwrap();
    let info = ConnectionInfo {
        endpoint: server.endpoint().to_owned(),
        session_id: "codec-session".to_owned(),
        token: server.token().to_owned(),
        guild_id: 41_771_983_423_143_937,
        user_id: 104_694_319_306_248_192,
        channel_id: 127_121_515_262_115_840,
    };
    let connection = VoiceConnection::connect(info).await.unwrap();
    (server, connection)
}

/// Plays `track` to its end and returns the audio frames received from `from` on (the five
/// silence frames of the tail removed).
async fn play(
    server: &LocalVoiceServer,
    connection: &VoiceConnection,
    track: Track,
    from: usize,
) -> Vec<ReceivedPacket> {
    let handle = connection.play(track);
    let end = tokio::time::timeout(Duration::from_secs(10), handle.ended())
        .await
        .unwrap();
    assert!(matches!(end, TrackEnd::Finished), "{end:?}");
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= from + 5
                && p[p.len() - 5..].iter().all(|p| p.opus == SILENCE))
            .await
    );
    let mut received = server.received();
    received.truncate(received.len() - 5);
    received.drain(..from);
    assert_eq!(server.stats().rejected, 0);
    received
}

/// Sequence numbers 1 apart and timestamps 960 apart, from the SSRC of the connection.
fn assert_in_order(frames: &[ReceivedPacket], ssrc: u32) {
    for (i, pair) in frames.windows(2).enumerate() {
        assert_eq!(
            pair[1].sequence,
            pair[0].sequence.wrapping_add(1),
            "seq at {i}"
        );
        assert_eq!(
            pair[1].timestamp,
            pair[0].timestamp.wrapping_add(960),
            "timestamp at {i}"
        );
    }
    assert!(frames.iter().all(|p| p.ssrc == ssrc));
}

/// The left channel, decoded with libopus.
fn decode_left(frames: &[ReceivedPacket]) -> Vec<i16> {
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Stereo).unwrap();
    let mut out = vec![0i16; 5_760 * 2];
    let mut left = Vec::new();
    for frame in frames {
        let n = decoder.decode(&frame.opus, &mut out, false).unwrap();
        assert_eq!(n, 960, "20 ms frames");
        left.extend(out[..n * 2].iter().step_by(2));
    }
    left
}

/// The fixture's tone: 440 Hz (zero crossings) at an RMS of 16,000 / sqrt 2, within 20 %.
fn assert_tone(left: &[i16]) {
    // Skip the encoder's lookahead and the padded end.
    let middle = &left[4_800..left.len() - 4_800];
    let crossings = middle
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    let freq = crossings as f64 / 2.0 / (middle.len() as f64 / 48_000.0);
    let rms =
        (middle.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / middle.len() as f64).sqrt();
    assert!((freq - 440.0).abs() < 10.0, "dominant frequency {freq}");
    let want = 16_000.0 / 2f64.sqrt();
    assert!((rms - want).abs() < want * 0.2, "rms {rms}, want {want}");
}

/// Plays the fixture from its path and from memory; both are 0.5 s: 25 frames (26 when the
/// codec's padding is not trimmed).
async fn plays_fixture(name: &str) {
    let (server, connection) = connected().await;
    let track = Track::file(fixture(name)).await.unwrap();
    let frames = play(&server, &connection, track, 0).await;
    assert!(
        (25..=26).contains(&frames.len()),
        "{name}: {} frames",
        frames.len()
    );
    assert_in_order(&frames, connection.ssrc());
    assert_tone(&decode_left(&frames));

    let before = server.received().len();
    let data = std::fs::read(fixture(name)).unwrap();
    let again = play(&server, &connection, Track::bytes(data).unwrap(), before).await;
    assert_eq!(again.len(), frames.len(), "{name}: same from memory");
    // One RTP stream across tracks: the second track follows the first's silence tail.
    let all = server.received();
    assert_in_order(&all, connection.ssrc());
    assert_tone(&decode_left(&again));
}

#[tokio::test]
async fn mp3_plays_in_order() {
    plays_fixture("tone.mp3").await;
}

#[tokio::test]
async fn flac_plays_in_order() {
    plays_fixture("tone.flac").await;
}

#[tokio::test]
async fn ogg_vorbis_plays_in_order() {
    plays_fixture("tone.ogg").await;
}
