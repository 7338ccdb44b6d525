//! The client side of the voice WebSocket (v8): framing, the handshake, resume and close codes.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_websockets::Message;

use crate::connection::ConnectionInfo;
use crate::crypto::{Cipher, CryptoMode};
use crate::error::{VoiceError, VoiceErrorKind};
use crate::udp::{self, Transport};

pub(crate) type Ws = nostrum_core::gateway::WsSocket;

/// Voice gateway opcodes this client uses.
pub(crate) mod op {
    pub(crate) const IDENTIFY: u8 = 0;
    pub(crate) const SELECT_PROTOCOL: u8 = 1;
    pub(crate) const READY: u8 = 2;
    pub(crate) const HEARTBEAT: u8 = 3;
    pub(crate) const SESSION_DESCRIPTION: u8 = 4;
    pub(crate) const SPEAKING: u8 = 5;
    pub(crate) const HEARTBEAT_ACK: u8 = 6;
    pub(crate) const RESUME: u8 = 7;
    pub(crate) const HELLO: u8 = 8;
    pub(crate) const RESUMED: u8 = 9;
    pub(crate) const CLIENTS_CONNECT: u8 = 11;
    pub(crate) const CLIENT_DISCONNECT: u8 = 13;
}

/// How long each handshake step may take.
pub(crate) const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a close frame may take to leave.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A JSON message of the voice gateway.
#[derive(Debug)]
pub(crate) struct GatewayMsg {
    pub(crate) op: u8,
    pub(crate) d: Value,
    pub(crate) seq: Option<i64>,
    /// The payload of a binary (DAVE) message; `d` is null then.
    pub(crate) binary: Option<Vec<u8>>,
}

/// What the socket yielded.
#[derive(Debug)]
pub(crate) enum Incoming {
    Msg(GatewayMsg),
    /// The socket closed, with the close code if there was one.
    Closed(Option<u16>),
}

/// What to do after the socket closed with a code.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum CloseAction {
    /// Reconnect and resume (v8 replays what was missed).
    Resume,
    /// The session is gone: a new handshake is needed.
    Reidentify,
    /// Stop: reconnecting would not help.
    Fatal,
}

/// Classifies a voice close code.
pub(crate) fn close_action(code: Option<u16>) -> CloseAction {
    match code {
        Some(4006 | 4009) => CloseAction::Reidentify,
        Some(4001..=4005 | 4011 | 4012 | 4014 | 4016 | 4017 | 4020..=4022) => CloseAction::Fatal,
        _ => CloseAction::Resume,
    }
}

/// What a voice close code means (Discord's descriptions).
pub(crate) fn close_reason(code: u16) -> &'static str {
    match code {
        4001 => "unknown opcode",
        4002 => "failed to decode payload",
        4003 => "not authenticated",
        4004 => "authentication failed",
        4005 => "already authenticated",
        4006 => "session no longer valid",
        4009 => "session timeout",
        4011 => "server not found",
        4012 => "unknown protocol",
        4014 => "disconnected (kicked, or the main gateway session dropped)",
        4015 => "voice server crashed",
        4016 => "unknown encryption mode",
        4017 => "E2EE/DAVE protocol required",
        4020 => "bad request",
        4021 => "disconnected: rate limited",
        4022 => "disconnected: call terminated",
        _ => "unknown close code",
    }
}

/// The error for a fatal close.
pub(crate) fn fatal_close(code: Option<u16>) -> VoiceError {
    let code = code.unwrap_or(0);
    VoiceError::new(VoiceErrorKind::FatalClose {
        code,
        reason: close_reason(code).to_owned(),
    })
}

/// The WebSocket URL of a voice `endpoint`: `wss://` unless it names a scheme, with `?v=8`.
pub(crate) fn url(endpoint: &str) -> String {
    let base = if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("wss://{endpoint}")
    };
    let base = base.trim_end_matches('/');
    format!("{base}/?v=8")
}

pub(crate) async fn open(endpoint: &str) -> Result<Ws, VoiceError> {
    match tokio::time::timeout(STEP_TIMEOUT, connect(&url(endpoint))).await {
        Ok(result) => result,
        Err(_) => Err(VoiceError::new(VoiceErrorKind::Timeout)),
    }
}

/// TCP (without Nagle's delay), TLS for `wss://`, then the WebSocket handshake: the gateway's own
/// connect, with tungstenite's old 64 MiB message limit.
///
/// The socket is tokio-websockets, which logs no frames: IDENTIFY and RESUME carry the voice token
/// and the session id, and must not end up in a TRACE log.
async fn connect(url: &str) -> Result<Ws, VoiceError> {
    nostrum_core::gateway::ws_connect(url, 64 << 20)
        .await
        .map_err(|error| VoiceError::with_source(VoiceErrorKind::WebSocket, error))
}

pub(crate) async fn send(ws: &mut Ws, op: u8, d: Value) -> Result<(), VoiceError> {
    let text = json!({"op": op, "d": d}).to_string();
    ws.send(Message::text(text))
        .await
        .map_err(|error| VoiceError::with_source(VoiceErrorKind::WebSocket, error))
}

/// Sends a binary (DAVE) message: opcode, then payload.
pub(crate) async fn send_binary(ws: &mut Ws, op: u8, payload: &[u8]) -> Result<(), VoiceError> {
    let mut frame = Vec::with_capacity(payload.len() + 1);
    frame.push(op);
    frame.extend_from_slice(payload);
    ws.send(Message::binary(frame))
        .await
        .map_err(|error| VoiceError::with_source(VoiceErrorKind::WebSocket, error))
}

/// Sends a close frame without a code and flushes it (bounded); the caller then drops the socket
/// without waiting for the server's answer.
pub(crate) async fn close(ws: &mut Ws) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.send(Message::close(None, ""))).await;
}

/// The next message (JSON, or binary with its sequence number and opcode), or the close.
/// tokio-websockets answers pings and close frames itself.
pub(crate) async fn recv(ws: &mut Ws) -> Result<Incoming, VoiceError> {
    loop {
        let message = match ws.next().await {
            None => return Ok(Incoming::Closed(None)),
            Some(Err(error)) => {
                tracing::debug!(%error, "voice websocket error");
                return Ok(Incoming::Closed(None));
            }
            Some(Ok(message)) => message,
        };
        if let Some(text) = message.as_text() {
            return parse(text).map(Incoming::Msg);
        }
        if message.is_binary() {
            let data = message.as_payload();
            if data.len() >= 3 {
                return Ok(Incoming::Msg(GatewayMsg {
                    op: data[2],
                    d: Value::Null,
                    seq: Some(i64::from(u16::from_be_bytes([data[0], data[1]]))),
                    binary: Some(data[3..].to_vec()),
                }));
            }
            continue;
        }
        if let Some((code, _reason)) = message.as_close() {
            // A close frame without a body has no code (`as_close` says 1005 for it).
            let code = (!message.as_payload().is_empty()).then(|| u16::from(code));
            // tokio-websockets queued the answering close frame: send it before the socket is
            // dropped, so the closing handshake completes.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, ws.flush()).await;
            return Ok(Incoming::Closed(code));
        }
    }
}

fn parse(text: &str) -> Result<GatewayMsg, VoiceError> {
    let value: Value = serde_json::from_str(text).map_err(|error| {
        VoiceError::with_source(
            VoiceErrorKind::Protocol {
                reason: "bad JSON".into(),
            },
            error,
        )
    })?;
    let op = value
        .get("op")
        .and_then(Value::as_u64)
        .and_then(|op| u8::try_from(op).ok())
        .ok_or_else(|| VoiceError::protocol("message without op"))?;
    Ok(GatewayMsg {
        op,
        seq: value.get("seq").and_then(Value::as_i64),
        d: value.get("d").cloned().unwrap_or(Value::Null),
        binary: None,
    })
}

/// A gateway ready for the session loop.
#[derive(Debug)]
pub(crate) struct Established {
    pub(crate) ws: Ws,
    pub(crate) heartbeat: Duration,
    pub(crate) transport: Transport,
    pub(crate) seq_ack: Option<i64>,
    /// SESSION DESCRIPTION's `dave_protocol_version` (0: no end-to-end encryption).
    pub(crate) dave_version: u16,
    /// Messages that arrived during the handshake (speaking, clients connect), in order.
    pub(crate) backlog: Vec<GatewayMsg>,
}

/// Waits for a message of `want`, keeping others in `backlog`. A close is an error.
async fn expect(
    ws: &mut Ws,
    want: u8,
    seq_ack: &mut Option<i64>,
    backlog: &mut Vec<GatewayMsg>,
) -> Result<GatewayMsg, VoiceError> {
    let step = async {
        loop {
            match recv(ws).await? {
                Incoming::Closed(code) => {
                    return Err(match close_action(code) {
                        CloseAction::Fatal => fatal_close(code),
                        _ => VoiceError::protocol(format!("closed with {code:?} during handshake")),
                    });
                }
                Incoming::Msg(msg) => {
                    if msg.seq.is_some() {
                        *seq_ack = msg.seq;
                    }
                    if msg.op == want {
                        return Ok(msg);
                    }
                    if msg.op != op::HEARTBEAT_ACK {
                        backlog.push(msg);
                    }
                }
            }
        }
    };
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .map_err(|_| VoiceError::new(VoiceErrorKind::Timeout))?
}

fn heartbeat_of(hello: &GatewayMsg) -> Result<Duration, VoiceError> {
    hello
        .d
        .get("heartbeat_interval")
        .and_then(Value::as_f64)
        .filter(|ms| *ms > 0.0 && ms.is_finite())
        .map(|ms| Duration::from_secs_f64(ms / 1000.0))
        .ok_or_else(|| VoiceError::protocol("HELLO without heartbeat_interval"))
}

/// The whole handshake: HELLO, IDENTIFY, READY, IP discovery, SELECT PROTOCOL, SESSION DESCRIPTION.
pub(crate) async fn establish(info: &ConnectionInfo) -> Result<Established, VoiceError> {
    let mut ws = open(&info.endpoint).await?;
    let (mut seq_ack, mut backlog) = (None, Vec::new());
    let hello = expect(&mut ws, op::HELLO, &mut seq_ack, &mut backlog).await?;
    let heartbeat = heartbeat_of(&hello)?;
    let identify = json!({
        "server_id": info.guild_id.to_string(),
        "user_id": info.user_id.to_string(),
        "session_id": info.session_id,
        "token": info.token,
        "max_dave_protocol_version": crate::dave::MAX_VERSION,
    });
    send(&mut ws, op::IDENTIFY, identify).await?;
    let ready = expect(&mut ws, op::READY, &mut seq_ack, &mut backlog).await?;
    let field = |name: &str| ready.d.get(name).cloned().unwrap_or(Value::Null);
    let ssrc = field("ssrc").as_u64().and_then(|n| u32::try_from(n).ok());
    let ip = field("ip").as_str().map(str::to_owned);
    let port = field("port").as_u64().and_then(|n| u16::try_from(n).ok());
    let modes: Vec<String> = field("modes")
        .as_array()
        .map(|modes| {
            modes
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let (Some(ssrc), Some(ip), Some(port)) = (ssrc, ip, port) else {
        return Err(VoiceError::protocol("READY without ssrc, ip or port"));
    };
    let mode = CryptoMode::choose(&modes)?;
    let (socket, external) = udp::discover(&ip, port, ssrc).await?;
    let select = json!({
        "protocol": "udp",
        "data": {"address": external.ip().to_string(), "port": external.port(), "mode": mode.name()},
    });
    send(&mut ws, op::SELECT_PROTOCOL, select).await?;
    let description = expect(&mut ws, op::SESSION_DESCRIPTION, &mut seq_ack, &mut backlog).await?;
    let key: Vec<u8> = description
        .d
        .get("secret_key")
        .and_then(Value::as_array)
        .map(|key| {
            key.iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect()
        })
        .unwrap_or_default();
    let chosen = description
        .d
        .get("mode")
        .and_then(Value::as_str)
        .unwrap_or(mode.name());
    let cipher = Cipher::new(CryptoMode::from_name(chosen)?, &key)?;
    let dave_version = description
        .d
        .get("dave_protocol_version")
        .and_then(Value::as_u64)
        .and_then(|v| u16::try_from(v).ok())
        .unwrap_or(0);
    Ok(Established {
        ws,
        heartbeat,
        transport: Transport::new(socket, cipher, ssrc),
        seq_ack,
        dave_version,
        backlog,
    })
}

/// Reconnects and resumes: HELLO, RESUME with `seq_ack`, RESUMED. Replayed messages land in
/// `backlog`.
pub(crate) async fn resume(
    info: &ConnectionInfo,
    seq_ack: &mut Option<i64>,
    backlog: &mut Vec<GatewayMsg>,
) -> Result<(Ws, Duration), VoiceError> {
    let mut ws = open(&info.endpoint).await?;
    let hello = expect(&mut ws, op::HELLO, seq_ack, backlog).await?;
    let heartbeat = heartbeat_of(&hello)?;
    let resume = json!({
        "server_id": info.guild_id.to_string(),
        "session_id": info.session_id,
        "token": info.token,
        "seq_ack": seq_ack,
    });
    send(&mut ws, op::RESUME, resume).await?;
    expect(&mut ws, op::RESUMED, seq_ack, backlog).await?;
    Ok((ws, heartbeat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            url("sweetwater-12345.discord.media:2048"),
            "wss://sweetwater-12345.discord.media:2048/?v=8"
        );
        assert_eq!(url("ws://127.0.0.1:9/"), "ws://127.0.0.1:9/?v=8");
    }

    #[test]
    fn close_codes() {
        assert_eq!(close_action(None), CloseAction::Resume);
        assert_eq!(close_action(Some(4015)), CloseAction::Resume);
        assert_eq!(close_action(Some(1006)), CloseAction::Resume);
        assert_eq!(close_action(Some(4006)), CloseAction::Reidentify);
        for code in [4004, 4014, 4016, 4017, 4021, 4022] {
            assert_eq!(close_action(Some(code)), CloseAction::Fatal, "{code}");
        }
        assert!(
            fatal_close(Some(4004))
                .to_string()
                .contains("authentication failed")
        );
    }

    #[tokio::test]
    async fn wss_to_a_server_without_tls_is_an_error_not_a_panic() {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let error = open(&addr.to_string()).await.expect_err("no TLS there");
        assert_eq!(error.kind(), &VoiceErrorKind::WebSocket);
    }

    #[tokio::test]
    async fn other_schemes_and_bad_urls_are_errors() {
        for endpoint in [
            "http://127.0.0.1:1",
            "ws://",
            "wss://[::1",
            "ws://127.0.0.1:1",
        ] {
            assert!(open(endpoint).await.is_err(), "{endpoint}");
        }
    }

    #[tokio::test]
    async fn close_codes_and_frames_from_the_server() {
        use tokio_websockets::{CloseCode, ServerBuilder};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("ws://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            for close in [Some(4006), Some(4015), None] {
                let (stream, _) = listener.accept().await.unwrap();
                let (_, mut ws) = ServerBuilder::new().accept(stream).await.unwrap();
                let binary = Message::binary(vec![0, 7, 25, 1, 2, 3]);
                let text = Message::text(r#"{"op": 8, "d": {"heartbeat_interval": 1}}"#);
                ws.send(Message::binary(vec![0, 1])).await.unwrap(); // Too short: skipped.
                ws.send(binary).await.unwrap();
                ws.send(text).await.unwrap();
                let code = close.map(|code| CloseCode::try_from(code).unwrap());
                ws.send(Message::close(code, "bye")).await.unwrap();
                // The client answers the close.
                let answer = ws.next().await.unwrap().unwrap();
                assert!(answer.is_close());
            }
        });
        for want in [Some(4006), Some(4015), None] {
            let mut ws = open(&endpoint).await.unwrap();
            let Incoming::Msg(dave) = recv(&mut ws).await.unwrap() else {
                panic!("a binary message");
            };
            assert_eq!((dave.op, dave.seq), (25, Some(7)));
            assert_eq!(dave.binary.as_deref(), Some(&[1, 2, 3][..]));
            let Incoming::Msg(hello) = recv(&mut ws).await.unwrap() else {
                panic!("a text message");
            };
            assert_eq!((hello.op, hello.binary), (op::HELLO, None));
            let Incoming::Closed(code) = recv(&mut ws).await.unwrap() else {
                panic!("the close");
            };
            assert_eq!(code, want);
        }
    }

    #[test]
    fn garbage_messages_error() {
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"d": 1}"#).is_err());
        assert!(parse(r#"{"op": 999}"#).is_err());
        let msg = parse(r#"{"op": 5, "d": {"ssrc": 1}, "seq": 10}"#).unwrap();
        assert_eq!((msg.op, msg.seq), (5, Some(10)));
    }
}
