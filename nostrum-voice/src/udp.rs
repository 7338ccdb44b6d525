//! The client's UDP side: IP discovery and the transport (socket, cipher, SSRC) audio goes over.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::crypto::Cipher;
use crate::error::{VoiceError, VoiceErrorKind};

/// Length of an IP discovery request or response.
pub(crate) const DISCOVERY_LEN: usize = 74;

/// The socket, cipher and SSRC of one voice session.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    pub(crate) socket: Arc<UdpSocket>,
    pub(crate) cipher: Cipher,
    pub(crate) ssrc: u32,
}

impl Transport {
    pub(crate) fn new(socket: UdpSocket, cipher: Cipher, ssrc: u32) -> Self {
        Self {
            socket: Arc::new(socket),
            cipher,
            ssrc,
        }
    }
}

/// An IP discovery request for `ssrc`.
pub(crate) fn discovery_request(ssrc: u32) -> [u8; DISCOVERY_LEN] {
    let mut out = [0; DISCOVERY_LEN];
    out[..4].copy_from_slice(&[0, 1, 0, 70]);
    out[4..8].copy_from_slice(&ssrc.to_be_bytes());
    out
}

/// Reads an IP discovery response: our address as the server sees it.
pub(crate) fn parse_discovery(data: &[u8]) -> Result<SocketAddr, VoiceError> {
    let bad = || VoiceError::new(VoiceErrorKind::IpDiscovery);
    if data.len() != DISCOVERY_LEN || data[..4] != [0, 2, 0, 70] {
        return Err(bad());
    }
    let address = &data[8..72];
    let end = address
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(address.len());
    let ip: IpAddr = std::str::from_utf8(&address[..end])
        .ok()
        .and_then(|ip| ip.parse().ok())
        .ok_or_else(bad)?;
    let port = u16::from_be_bytes([data[72], data[73]]);
    Ok(SocketAddr::new(ip, port))
}

/// Binds a socket, connects it to the voice server and discovers our external address
/// (three tries, one second each).
pub(crate) async fn discover(
    ip: &str,
    port: u16,
    ssrc: u32,
) -> Result<(UdpSocket, SocketAddr), VoiceError> {
    let udp = |error: std::io::Error| VoiceError::with_source(VoiceErrorKind::Udp, error);
    let server: IpAddr = ip
        .parse()
        .map_err(|_| VoiceError::protocol(format!("READY ip {ip:?} is not an address")))?;
    let bind: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0"
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    } else {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    };
    let socket = UdpSocket::bind(bind).await.map_err(udp)?;
    socket.connect((server, port)).await.map_err(udp)?;
    let request = discovery_request(ssrc);
    let mut buf = [0u8; 512];
    for _ in 0..3 {
        socket.send(&request).await.map_err(udp)?;
        let answer = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                let len = socket.recv(&mut buf).await?;
                if let Ok(addr) = parse_discovery(&buf[..len]) {
                    return Ok::<_, std::io::Error>(addr);
                }
            }
        })
        .await;
        match answer {
            Ok(Ok(addr)) => return Ok((socket, addr)),
            Ok(Err(error)) => return Err(udp(error)),
            Err(_) => {}
        }
    }
    Err(VoiceError::new(VoiceErrorKind::IpDiscovery))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_round_trip_and_garbage() {
        let mut answer = discovery_request(7);
        answer[1] = 2;
        answer[8..17].copy_from_slice(b"127.0.0.1");
        answer[72..].copy_from_slice(&5000u16.to_be_bytes());
        assert_eq!(
            parse_discovery(&answer).unwrap(),
            "127.0.0.1:5000".parse().unwrap()
        );
        assert!(parse_discovery(&answer[..73]).is_err());
        assert!(parse_discovery(&discovery_request(7)).is_err());
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..2_000 {
            let mut bytes = answer;
            bytes[rng.usize(8..72)] = rng.u8(..);
            let _ = parse_discovery(&bytes);
        }
    }
}
