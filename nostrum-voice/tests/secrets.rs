//! The voice token and the voice session id are never logged: a voice connection identifies,
//! plays, resumes and identifies anew against the local voice server while a subscriber captures
//! every log line of every crate at TRACE (the `log` records of the dependencies included); then
//! the log may hold neither, in plain text, in hex or as a list of bytes.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use nostrum_voice::local::{LocalVoiceConfig, LocalVoiceServer};
use nostrum_voice::{ConnectionInfo, Track, TrackEnd, VoiceConnection, VoiceEvent};
use tokio::sync::broadcast;

/// The voice token (VOICE_SERVER_UPDATE's): distinctive, so that any trace of it is found.
const TOKEN: &str = "SECRET-VOICE-TOKEN-7f3a.b9c2";
/// The session id of the bot's voice state (VOICE_STATE_UPDATE's).
const SESSION_ID: &str = "SECRET-VOICE-SESSION-d41e8a";
/// What the log may not contain.
const NEEDLES: [&str; 2] = [TOKEN, SESSION_ID];

/// Everything logged by this test binary, at TRACE, from every crate and every target (nothing is
/// filtered out). `try_init` also installs the `log` bridge (tracing-subscriber's `tracing-log`
/// feature), so the `log` records of dependencies are captured too.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    use tracing_subscriber::prelude::*;
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::default();
        let all = Arc::clone(&logs);
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_span_events(FmtSpan::FULL)
                    .with_writer(move || Sink(Arc::clone(&all)))
                    .with_filter(LevelFilter::TRACE),
            )
            .try_init()
            .expect("the first subscriber of this test binary (with the `log` bridge)");
        logs
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The forms a secret may take in a log line: plain, hex (both cases), and the bytes as `Debug`
/// prints a `[u8]` (`83, 69, 67, ...`).
fn forms(needle: &str) -> [String; 4] {
    let hex: String = needle.bytes().map(|b| format!("{b:02x}")).collect();
    let bytes = format!("{:?}", needle.as_bytes());
    let bytes = bytes
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    [needle.to_owned(), hex.to_uppercase(), hex, bytes]
}

/// Fails if the whole log so far holds the token or the session id in any of its forms.
fn assert_no_secret() {
    let logged = String::from_utf8_lossy(&logs().lock().unwrap_or_else(PoisonError::into_inner))
        .into_owned();
    assert!(
        logged.len() > 1000,
        "the capture works: {} bytes",
        logged.len()
    );
    for needle in NEEDLES {
        for form in forms(needle) {
            if let Some(at) = logged.find(&form) {
                let start = logged[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = logged[at..].find('\n').map_or(logged.len(), |i| at + i);
                panic!("the log holds a secret ({form}): {}", &logged[start..end]);
            }
        }
    }
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

/// The whole log at TRACE, every target, while a voice connection identifies (IDENTIFY carries
/// the token and the session id), plays, resumes after a dropped socket (RESUME carries them too)
/// and identifies anew after 4006; both ends of the voice WebSocket are in this process (the
/// local voice server reads the payloads too). With DAVE on, binary frames go both ways.
///
/// This test failed while nostrum-voice used tokio-tungstenite: tungstenite logs every frame it
/// writes and reads at TRACE (`log::trace!` under `tungstenite::protocol`), so IDENTIFY and RESUME
/// printed the token and the session id. Both ends now use tokio-websockets, which logs nothing.
#[tokio::test]
async fn trace_logs_hold_no_voice_token_nor_session_id() {
    logs();
    let config = LocalVoiceConfig {
        token: TOKEN.to_owned(),
        #[cfg(feature = "dave")]
        dave: true,
        ..LocalVoiceConfig::default()
    };
    let server = LocalVoiceServer::start(config).await.unwrap();
    let info = ConnectionInfo {
        endpoint: server.endpoint().to_owned(),
        session_id: SESSION_ID.to_owned(),
        token: TOKEN.to_owned(),
        guild_id: 41_771_983_423_143_937,
        user_id: 104_694_319_306_248_192,
        channel_id: LocalVoiceConfig::default().channel_id,
    };
    let connection = VoiceConnection::connect(info).await.unwrap();
    let mut events = connection.events();
    #[cfg(feature = "dave")]
    assert!(
        server
            .wait_for(Duration::from_secs(10), |_, s| s.dave_transitions == 1)
            .await,
        "the DAVE handshake (binary frames) completes: {:?}",
        server.stats()
    );
    let track = connection.play(Track::opus_frames(vec![Bytes::from_static(b"\xFCabc"); 5]));
    assert!(matches!(track.ended().await, TrackEnd::Finished));

    server.drop_connection();
    next_event(&mut events, |e| matches!(e, VoiceEvent::Resumed)).await;
    server.close_with(4006);
    next_event(&mut events, |e| matches!(e, VoiceEvent::Ready(_))).await;
    let stats = server.stats();
    assert_eq!(stats.identifies, 2, "{stats:?}");
    assert_eq!(stats.resumes.len(), 1, "{stats:?}");
    drop(connection);
    assert!(
        server
            .wait_for(Duration::from_secs(3), |_, s| s.open_connections == 0)
            .await
    );

    assert_no_secret();
}
