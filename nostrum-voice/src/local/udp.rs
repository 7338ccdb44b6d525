//! The local voice server's UDP side: IP discovery answers, and RTP opened with the session key.

use std::sync::Arc;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::XChaCha20Poly1305;
use tokio::time::Instant;

use super::{ReceivedPacket, Shared};

/// The server's own AEAD, written apart from the client's `crypto` module.
pub(super) enum ServerCipher {
    Aes(Box<Aes256Gcm>),
    XChaCha(Box<XChaCha20Poly1305>),
}

impl ServerCipher {
    pub(super) fn new(mode: &str, key: &[u8; 32]) -> Option<Self> {
        match mode {
            "aead_aes256_gcm_rtpsize" => Aes256Gcm::new_from_slice(key)
                .ok()
                .map(|c| Self::Aes(Box::new(c))),
            "aead_xchacha20_poly1305_rtpsize" => XChaCha20Poly1305::new_from_slice(key)
                .ok()
                .map(|c| Self::XChaCha(Box::new(c))),
            _ => None,
        }
    }

    fn nonce(&self, suffix: [u8; 4]) -> Vec<u8> {
        let len = match self {
            Self::Aes(_) => 12,
            Self::XChaCha(_) => 24,
        };
        let mut nonce = vec![0; len];
        nonce[..4].copy_from_slice(&suffix);
        nonce
    }

    /// An RTP packet (no extension) carrying `frame`, sealed.
    pub(super) fn seal(
        &self,
        seq: u16,
        ts: u32,
        ssrc: u32,
        frame: &[u8],
        n: u32,
    ) -> Option<Vec<u8>> {
        let mut packet = vec![0x80, 0x78];
        packet.extend_from_slice(&seq.to_be_bytes());
        packet.extend_from_slice(&ts.to_be_bytes());
        packet.extend_from_slice(&ssrc.to_be_bytes());
        let mut body = frame.to_vec();
        let nonce = self.nonce(n.to_be_bytes());
        let tag = match self {
            Self::Aes(c) => c
                .encrypt_in_place_detached(nonce.as_slice().into(), &packet, &mut body)
                .ok()?
                .to_vec(),
            Self::XChaCha(c) => c
                .encrypt_in_place_detached(nonce.as_slice().into(), &packet, &mut body)
                .ok()?
                .to_vec(),
        };
        packet.extend_from_slice(&body);
        packet.extend_from_slice(&tag);
        packet.extend_from_slice(&n.to_be_bytes());
        Some(packet)
    }

    /// Opens an rtpsize packet: `(seq, timestamp, ssrc, payload)`.
    fn open(&self, data: &[u8]) -> Option<(u16, u32, u32, Vec<u8>)> {
        if data.len() < 12 || data[0] >> 6 != 2 {
            return None;
        }
        let mut clear = 12 + 4 * usize::from(data[0] & 0x0F);
        let mut skip = 0;
        if data[0] & 0x10 != 0 {
            clear += 4;
            let words = data.get(clear - 2..clear)?;
            skip = 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        }
        let body_end = data.len().checked_sub(20)?;
        if body_end < clear {
            return None;
        }
        let tag = &data[body_end..body_end + 16];
        let nonce = self.nonce(data[body_end + 16..].try_into().ok()?);
        let mut body = data[clear..body_end].to_vec();
        let aad = &data[..clear];
        match self {
            Self::Aes(c) => c
                .decrypt_in_place_detached(nonce.as_slice().into(), aad, &mut body, tag.into())
                .ok()?,
            Self::XChaCha(c) => c
                .decrypt_in_place_detached(nonce.as_slice().into(), aad, &mut body, tag.into())
                .ok()?,
        }
        let payload = body.get(skip..)?.to_vec();
        let seq = u16::from_be_bytes([data[2], data[3]]);
        let ts = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
        let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        Some((seq, ts, ssrc, payload))
    }
}

pub(super) async fn serve(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((len, from)) = shared.socket.recv_from(&mut buf).await else {
            continue;
        };
        let data = &buf[..len];
        let at = Instant::now();
        if len == 74 && data[..4] == [0, 1, 0, 70] {
            let mut answer = vec![0u8; 74];
            answer[..4].copy_from_slice(&[0, 2, 0, 70]);
            answer[4..8].copy_from_slice(&data[4..8]);
            let ip = from.ip().to_string();
            answer[8..8 + ip.len()].copy_from_slice(ip.as_bytes());
            answer[72..74].copy_from_slice(&from.port().to_be_bytes());
            {
                let mut state = shared.lock();
                state.client_addr = Some(from);
                state.stats.discoveries += 1;
            }
            let _ = shared.socket.send_to(&answer, from).await;
            shared.notify();
            continue;
        }
        let mut state = shared.lock();
        let latest = state.stats.identifies;
        let opened = match state.keys.iter().find(|(addr, _, _)| *addr == from) {
            Some((_, session, cipher)) => cipher.open(data).map(|opened| (opened, *session)),
            None => state
                .cipher
                .as_ref()
                .and_then(|c| c.open(data))
                .map(|o| (o, latest)),
        };
        match opened {
            Some(((sequence, timestamp, ssrc, opus), session)) => {
                #[cfg(feature = "dave")]
                let opus = match state.dave.as_mut().map(|dave| dave.open(&opus)) {
                    None => opus,
                    Some(Some((plain, e2ee))) => {
                        if e2ee {
                            state.stats.e2ee_frames += 1;
                        } else {
                            state.stats.passthrough_frames += 1;
                        }
                        plain
                    }
                    Some(None) => {
                        state.stats.rejected += 1;
                        drop(state);
                        shared.notify();
                        continue;
                    }
                };
                if session == latest {
                    state.client_addr = Some(from);
                }
                state.received.push(ReceivedPacket {
                    sequence,
                    timestamp,
                    ssrc,
                    session,
                    opus,
                    at,
                });
            }
            None => state.stats.rejected += 1,
        }
        drop(state);
        shared.notify();
    }
}
