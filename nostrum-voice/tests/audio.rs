//! PCM, files, ffmpeg, seek and volume played through the local voice server; decode on receive.
//! MP3, FLAC and Ogg Vorbis are decoded in-process (symphonia) from committed fixtures
//! (tests/fixtures/README.md), so ffmpeg is not needed for them.

use std::time::Duration;

use nostrum_voice::local::{LocalVoiceConfig, LocalVoiceServer, ReceivedPacket};
use nostrum_voice::{
    ConnectionInfo, Track, TrackEnd, TrackHandle, VoiceConnection, VoiceErrorKind, VoiceEvent,
};

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

async fn connected() -> (LocalVoiceServer, VoiceConnection) {
    let server = LocalVoiceServer::start(LocalVoiceConfig::default())
        .await
        .unwrap();
    let connection = VoiceConnection::connect(info(&server)).await.unwrap();
    (server, connection)
}

/// A sine of `freq` Hz at half scale, `rate` Hz, `channels` interleaved, `seconds` long.
fn sine(freq: f64, rate: u32, channels: usize, seconds: f64) -> Vec<i16> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n)
        .flat_map(|i| {
            let v = (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin();
            std::iter::repeat_n((v * 16_000.0) as i16, channels)
        })
        .collect()
}

/// A 16-bit PCM RIFF/WAVE file.
fn wav(samples: &[i16], rate: u32, channels: u16) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// Plays `track` to its end; returns the audio frames received (the silence tail removed).
async fn play_all(
    server: &LocalVoiceServer,
    connection: &VoiceConnection,
    track: Track,
) -> Vec<ReceivedPacket> {
    play_from(server, connection, track, 0).await
}

/// Plays `track` to its end; returns the audio frames received from packet `from` on.
async fn play_from(
    server: &LocalVoiceServer,
    connection: &VoiceConnection,
    track: Track,
    from: usize,
) -> Vec<ReceivedPacket> {
    let handle = connection.play(track);
    let end = tokio::time::timeout(Duration::from_secs(15), handle.ended())
        .await
        .unwrap();
    assert!(matches!(end, TrackEnd::Finished), "{end:?}");
    frames_after(server, from).await
}

/// Waits for the five silence frames, then returns the audio frames from `from` on.
async fn frames_after(server: &LocalVoiceServer, from: usize) -> Vec<ReceivedPacket> {
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

/// Decodes frames with libopus to the left channel.
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

/// The dominant frequency by zero crossings, and the RMS, of a 48 kHz signal.
fn frequency_and_rms(signal: &[i16]) -> (f64, f64) {
    let crossings = signal
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    let seconds = signal.len() as f64 / 48_000.0;
    let rms =
        (signal.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / signal.len() as f64).sqrt();
    (crossings as f64 / 2.0 / seconds, rms)
}

fn assert_sine_440(left: &[i16]) {
    // Skip the encoder's lookahead and the padded end.
    let middle = &left[4_800..left.len() - 4_800];
    let (freq, rms) = frequency_and_rms(middle);
    assert!((freq - 440.0).abs() < 10.0, "dominant frequency {freq}");
    let want = 16_000.0 / 2f64.sqrt();
    assert!((rms - want).abs() < want * 0.2, "rms {rms}, want {want}");
}

#[tokio::test]
async fn pcm_sine_is_encoded_with_libopus_and_decodes_back() {
    let (server, connection) = connected().await;
    let frames = play_all(
        &server,
        &connection,
        Track::pcm(sine(440.0, 48_000, 2, 1.0)),
    )
    .await;
    assert_eq!(frames.len(), 50, "1 s is 50 frames of 20 ms");
    for pair in frames.windows(2) {
        assert_eq!(pair[1].timestamp, pair[0].timestamp.wrapping_add(960));
    }
    assert_sine_440(&decode_left(&frames));

    let floats: Vec<f32> = sine(440.0, 48_000, 2, 0.5)
        .iter()
        .map(|&s| f32::from(s) / 32_768.0)
        .collect();
    let before = server.received().len();
    let handle = connection.play(Track::pcm_f32(&floats));
    assert!(matches!(handle.ended().await, TrackEnd::Finished));
    assert_eq!(frames_after(&server, before).await.len(), 25);

    let chunks = sine(440.0, 48_000, 2, 0.5)
        .chunks(777)
        .map(|c| Ok(c.to_vec()))
        .collect::<Vec<_>>();
    let before = server.received().len();
    let handle = connection.play(Track::pcm_stream(chunks.into_iter()));
    assert!(matches!(handle.ended().await, TrackEnd::Finished));
    let frames = frames_after(&server, before).await;
    assert_eq!(frames.len(), 25);
    assert_sine_440(&decode_left(&frames));
}

#[tokio::test]
async fn receive_decodes_to_pcm_when_asked() {
    let (server, connection) = connected().await;
    let mut events = connection.events();
    server.speaking(77, 999, 1);
    let mut encoder =
        opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Audio).unwrap();
    let pcm = sine(440.0, 48_000, 2, 0.06);
    let frames: Vec<Vec<u8>> = pcm
        .chunks(1_920)
        .map(|c| encoder.encode_vec(c, 4_000).unwrap())
        .collect();
    assert_eq!(frames.len(), 3);

    let mut next_packet = async || {
        tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if let Ok(VoiceEvent::Packet(packet)) = events.recv().await {
                    return packet;
                }
            }
        })
        .await
        .unwrap()
    };
    assert_eq!(server.send_audio(999, (1, 960), &frames[..1]).await, 1);
    assert!(next_packet().await.pcm.is_none(), "off by default");

    connection.set_decode(true);
    assert_eq!(server.send_audio(999, (2, 1_920), &frames[1..]).await, 2);
    for _ in 0..2 {
        let packet = next_packet().await;
        let pcm = packet.pcm.expect("decoded");
        assert_eq!(pcm.len(), 960 * 2);
        assert!(pcm.iter().any(|&s| s.abs() > 1_000), "not silence");
    }
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("nostrum-voice-{}-{name}", std::process::id()))
}

#[tokio::test]
async fn wav_at_44k_mono_is_decoded_resampled_and_played() {
    let (server, connection) = connected().await;
    // 0.5 s at 44.1 kHz mono: 24,000 samples a channel at 48 kHz, 25 frames.
    let data = wav(&sine(440.0, 44_100, 1, 0.5), 44_100, 1);
    let frames = play_all(&server, &connection, Track::bytes(data.clone()).unwrap()).await;
    assert_eq!(frames.len(), 25);
    assert_sine_440(&decode_left(&frames));

    let path = temp_path("tone.wav");
    std::fs::write(&path, &data).unwrap();
    let before = server.received().len();
    let handle = connection.play(Track::file(&path).await.unwrap());
    assert!(matches!(handle.ended().await, TrackEnd::Finished));
    assert_eq!(frames_after(&server, before).await.len(), 25);
    let _ = std::fs::remove_file(&path);

    let error = Track::bytes(b"definitely not audio".to_vec()).unwrap_err();
    assert!(
        matches!(error.kind(), VoiceErrorKind::Input { .. }),
        "{error}"
    );
    let error = Track::file(temp_path("missing.wav")).await.unwrap_err();
    assert!(
        matches!(error.kind(), VoiceErrorKind::Input { .. }),
        "{error}"
    );
}

fn ffmpeg_installed() -> bool {
    std::process::Command::new("ffmpeg")
        .arg("-version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_a_file_or_says_it_is_missing() {
    let error = Track::ffmpeg_with("nostrum-no-such-ffmpeg", "x.wav").unwrap_err();
    assert_eq!(
        error.kind(),
        &VoiceErrorKind::MissingProgram {
            name: "nostrum-no-such-ffmpeg".into()
        }
    );
    let path = temp_path("ffmpeg.wav");
    // Stereo: ffmpeg's own mono upmix is 3 dB down.
    std::fs::write(&path, wav(&sine(440.0, 44_100, 2, 0.5), 44_100, 2)).unwrap();
    let input = path.to_str().unwrap();
    if !ffmpeg_installed() {
        let error = Track::ffmpeg(input).unwrap_err();
        assert!(matches!(
            error.kind(),
            VoiceErrorKind::MissingProgram { .. }
        ));
        let _ = std::fs::remove_file(&path);
        return;
    }
    let (server, connection) = connected().await;
    let frames = play_all(&server, &connection, Track::ffmpeg(input).unwrap()).await;
    assert!((25..=26).contains(&frames.len()), "{}", frames.len());
    assert_sine_440(&decode_left(&frames));

    let handle = connection.play(Track::ffmpeg(&format!("{input}.missing")).unwrap());
    let end = handle.ended().await;
    assert!(matches!(end, TrackEnd::Failed(_)), "{end:?}");
    let _ = std::fs::remove_file(&path);
}

async fn wait_frames(server: &LocalVoiceServer, n: usize) {
    assert!(
        server
            .wait_for(Duration::from_secs(3), |p, _| p.len() >= n)
            .await
    );
}

async fn seek_and_mute(server: &LocalVoiceServer, handle: &TrackHandle, to: Duration) {
    wait_frames(server, 5).await;
    assert!(handle.set_volume(0.0).await);
    handle.seek(to).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(10), handle.ended())
        .await
        .unwrap();
    assert!(matches!(end, TrackEnd::Finished), "{end:?}");
}

#[tokio::test]
async fn seek_and_volume_on_pcm_and_files() {
    let (server, connection) = connected().await;
    // 4 s of PCM: seeking to 3.6 s leaves 20 frames.
    let handle = connection.play(Track::pcm(sine(440.0, 48_000, 2, 4.0)));
    seek_and_mute(&server, &handle, Duration::from_millis(3_600)).await;
    let frames = frames_after(&server, 0).await;
    assert!(frames.len() < 60, "seeked: {} frames", frames.len());
    let left = decode_left(&frames);
    let (_, rms) = frequency_and_rms(&left[left.len() - 960 * 10..]);
    assert!(rms < 200.0, "muted: rms {rms}");

    let before = server.received().len();
    let data = wav(&sine(440.0, 44_100, 1, 4.0), 44_100, 1);
    let handle = connection.play(Track::bytes(data).unwrap());
    seek_and_mute(&server, &handle, Duration::from_millis(3_600)).await;
    let frames = frames_after(&server, before).await;
    assert!(frames.len() < 60, "seeked: {} frames", frames.len());

    let handle = connection.play(Track::opus_frames(vec![SILENCE.to_vec().into(); 100]));
    assert!(
        !handle.set_volume(0.5).await,
        "pre-encoded Opus has no volume"
    );
    let error = handle.seek(Duration::from_secs(1)).await.unwrap_err();
    assert!(
        matches!(error.kind(), VoiceErrorKind::Input { .. }),
        "{error}"
    );
    handle.stop();
}

/// A stand-in for ffmpeg that takes a second to start, then writes 0.2 s of silence.
#[cfg(unix)]
fn slow_ffmpeg() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = temp_path("slow-ffmpeg.sh");
    let script = "#!/bin/sh\nsleep 1\nhead -c 38400 /dev/zero\n";
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// On a current-thread runtime, waiting for ffmpeg's output must not block the runtime: other
/// tasks (here a 10 ms ticker, in a real bot the gateway and the receiver) go on, and the player
/// still takes commands.
#[cfg(unix)]
#[tokio::test(flavor = "current_thread")]
async fn waiting_for_ffmpeg_blocks_neither_the_runtime_nor_the_player() {
    let program = slow_ffmpeg();
    let (server, connection) = connected().await;
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    let started = tokio::time::Instant::now();
    let handle = connection.play(Track::ffmpeg_with(program.to_str().unwrap(), "x").unwrap());
    let end = tokio::time::timeout(Duration::from_secs(5), handle.ended())
        .await
        .unwrap();
    assert!(matches!(end, TrackEnd::Finished), "{end:?}");
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited");
    let ticked = ticks.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        ticked >= 50,
        "the runtime ran other tasks meanwhile: {ticked} ticks"
    );
    assert_eq!(frames_after(&server, 0).await.len(), 10, "0.2 s of audio");

    // Stopped while waiting for the program's first output: ends at once.
    let handle = connection.play(Track::ffmpeg_with(program.to_str().unwrap(), "x").unwrap());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = tokio::time::Instant::now();
    handle.stop();
    assert!(matches!(handle.ended().await, TrackEnd::Stopped));
    assert!(stopped.elapsed() < Duration::from_millis(500));
    ticker.abort();
    let _ = std::fs::remove_file(&program);
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
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

/// Plays the fixture from its path and from memory; both are 0.5 s: 25 frames (26 when the
/// codec's padding is not trimmed).
async fn plays_fixture(name: &str) {
    let (server, connection) = connected().await;
    let track = Track::file(fixture(name)).await.unwrap();
    let frames = play_all(&server, &connection, track).await;
    assert!(
        (25..=26).contains(&frames.len()),
        "{name}: {} frames",
        frames.len()
    );
    assert_in_order(&frames, connection.ssrc());
    assert_sine_440(&decode_left(&frames));

    let before = server.received().len();
    let data = std::fs::read(fixture(name)).unwrap();
    let again = play_from(&server, &connection, Track::bytes(data).unwrap(), before).await;
    assert_eq!(again.len(), frames.len(), "{name}: same from memory");
    // One RTP stream across tracks: the second track follows the first's silence tail.
    let all = server.received();
    assert_in_order(&all, connection.ssrc());
    assert_sine_440(&decode_left(&again));
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
