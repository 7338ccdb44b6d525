//! One open socket and its protocol state: heartbeat timer, identify turn, limiter, inflater.

use std::{fmt, future::Future, pin::Pin, sync::OnceLock};

use http::Uri;
use tokio::{
    net::TcpStream,
    sync::mpsc,
    time::{Duration, Instant, Sleep, sleep, sleep_until, timeout},
};
use tokio_websockets::{ClientBuilder, Connector, Limits, MaybeTlsStream, WebSocketStream};

use super::{
    GatewayConfig, command::Command, compression::Decompressor, ratelimiter::CommandRatelimiter,
};

/// Time allowed to open the socket (TCP, TLS and the WebSocket handshake).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Time allowed between the socket opening and HELLO.
pub(crate) const HELLO_TIMEOUT: Duration = Duration::from_secs(20);

/// The WebSocket stream of a connection.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
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
        let ws = match timeout(CONNECT_TIMEOUT, connect(&url, limit)).await {
            Ok(Ok(ws)) => ws,
            Ok(Err(error)) => return Err(error),
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

/// TCP (without Nagle's delay), TLS for `wss://`, then the WebSocket handshake; messages and
/// frames over `limit` bytes end the connection with `PayloadTooLong`.
pub async fn connect(url: &str, limit: usize) -> Result<Socket, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid gateway URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => return Err("the gateway URL is neither ws:// nor wss://".to_owned()),
    };
    let host = uri
        .host()
        .ok_or("the gateway URL has no host")?
        // An IPv6 literal keeps its brackets in the URI, not in the lookup nor in TLS.
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    // What tungstenite did with `disable_nagle`: heartbeats and commands leave at once.
    let _ = tcp.set_nodelay(true);
    let stream = if tls {
        connector()?.wrap(host, tcp).await
    } else {
        Connector::Plain.wrap(host, tcp).await
    }
    .map_err(|e| e.to_string())?;
    let (ws, _response) = ClientBuilder::from_uri(uri)
        .limits(Limits::default().max_payload_len(Some(limit)))
        .connect_on(stream)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// The TLS connector (webpki roots, the crypto provider rustls gets from its features), built
/// once: the root store is not parsed again on every reconnect.
fn connector() -> Result<&'static Connector, String> {
    static CONNECTOR: OnceLock<Connector> = OnceLock::new();
    if let Some(connector) = CONNECTOR.get() {
        return Ok(connector);
    }
    let connector = Connector::new().map_err(|e| e.to_string())?;
    Ok(CONNECTOR.get_or_init(|| connector))
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

#[cfg(test)]
mod tests {
    use tokio::{io::AsyncWriteExt, net::TcpListener};

    use super::{connect, connector};

    #[test]
    fn tls_connector_builds_without_an_installed_provider() {
        // rustls must find its one crypto provider (ring) from its features, or this panics.
        assert!(connector().is_ok());
        assert!(std::ptr::eq(connector().unwrap(), connector().unwrap()));
    }

    #[tokio::test]
    async fn wss_to_a_server_without_tls_is_an_error_not_a_panic() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let error = connect(&format!("wss://{addr}/?v=10"), 1 << 20)
            .await
            .expect_err("no TLS on the other side");
        assert!(!error.is_empty());
    }

    #[tokio::test]
    async fn other_schemes_and_bad_urls_are_errors() {
        for url in ["http://127.0.0.1:1/", "127.0.0.1:1", "ws://", "wss://[::1"] {
            assert!(connect(url, 1 << 20).await.is_err(), "{url}");
        }
    }
}
