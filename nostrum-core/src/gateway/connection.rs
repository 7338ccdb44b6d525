//! One open socket and its protocol state: heartbeat timer, identify turn, limiter, inflater.

use std::{fmt, future::Future, pin::Pin};

use tokio::{
    net::TcpStream,
    sync::mpsc,
    time::{Duration, Instant, Sleep, sleep, sleep_until, timeout},
};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::protocol::WebSocketConfig};

use super::{
    GatewayConfig, command::Command, compression::Decompressor, ratelimiter::CommandRatelimiter,
};

/// Time allowed to open the socket (TCP, TLS and the WebSocket handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Time allowed between the socket opening and HELLO.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(20);

/// The WebSocket stream of a connection.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// The pending turn in the identify queue.
pub(crate) type IdentifyWait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One open socket and its protocol state.
pub(crate) struct Connection {
    pub(crate) ws: Socket,
    pub(crate) decompressor: Option<Decompressor>,
    /// Next heartbeat; before HELLO, the HELLO deadline.
    pub(crate) heartbeat_at: Pin<Box<Sleep>>,
    /// Heartbeat interval from HELLO.
    pub(crate) interval: Option<Duration>,
    /// When the heartbeat still waiting for its ACK was sent.
    pub(crate) awaiting_ack: Option<Instant>,
    /// The shard's turn in the identify queue, while waiting for it.
    pub(crate) identify: Option<IdentifyWait>,
    pub(crate) limiter: CommandRatelimiter,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("decompressor", &self.decompressor)
            .field("interval", &self.interval)
            .field("awaiting_ack", &self.awaiting_ack)
            .field("identifying", &self.identify.is_some())
            .field("limiter", &self.limiter)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens the socket at `url` with a fresh decompressor; the error is for the log.
    pub(crate) async fn open(config: &GatewayConfig, url: String) -> Result<Self, String> {
        let limit = config.max_decompressed_frame.max(1 << 20);
        let ws_config = WebSocketConfig::default()
            .max_message_size(Some(limit))
            .max_frame_size(Some(limit));
        let connecting = tokio_tungstenite::connect_async_with_config(url, Some(ws_config), true);
        let ws = match timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok((ws, _response))) => ws,
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_elapsed) => return Err("timed out".to_owned()),
        };
        let decompressor = Decompressor::new(config.compression).map_err(|e| e.to_string())?;
        Ok(Self {
            ws,
            decompressor,
            heartbeat_at: Box::pin(sleep(HELLO_TIMEOUT)),
            interval: None,
            awaiting_ack: None,
            identify: None,
            limiter: CommandRatelimiter::new(),
        })
    }
}

/// Completes when the shard's turn in the identify queue comes (never if it is not waiting).
pub(crate) async fn wait_identify(identify: &mut Option<IdentifyWait>) {
    match identify.as_mut() {
        Some(wait) => wait.await,
        None => std::future::pending().await,
    }
}

/// The next command to send, once the limiter has a permit: the held one first.
pub(crate) async fn next_command(
    held: &mut Option<Command>,
    rx: &mut mpsc::UnboundedReceiver<Command>,
    ready_at: Instant,
) -> Option<Command> {
    sleep_until(ready_at).await;
    if let Some(command) = held.take() {
        return Some(command);
    }
    rx.recv().await
}
