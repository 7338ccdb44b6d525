//! Transport encryption of voice packets: the rtpsize AEAD modes Discord accepts.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::XChaCha20Poly1305;

use crate::error::{VoiceError, VoiceErrorKind};
use crate::rtp;

/// Bytes of an AEAD authentication tag.
pub const TAG_LEN: usize = 16;
/// Bytes of the incrementing nonce appended to each packet.
pub const NONCE_SUFFIX_LEN: usize = 4;
/// Bytes of a secret key.
pub const KEY_LEN: usize = 32;

/// Names of the modes Discord has retired; asking for one is a [`VoiceErrorKind::RetiredMode`].
const RETIRED: &[&str] = &[
    "xsalsa20_poly1305",
    "xsalsa20_poly1305_suffix",
    "xsalsa20_poly1305_lite",
    "xsalsa20_poly1305_lite_rtpsize",
    "aead_aes256_gcm",
];

/// A transport encryption mode. In order of preference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CryptoMode {
    /// `aead_aes256_gcm_rtpsize`: AES-256-GCM, 12-byte nonce. Preferred.
    Aes256GcmRtpSize,
    /// `aead_xchacha20_poly1305_rtpsize`: XChaCha20-Poly1305, 24-byte nonce. Always offered.
    XChaCha20Poly1305RtpSize,
}

impl CryptoMode {
    /// Every supported mode, most preferred first.
    pub const ALL: [CryptoMode; 2] = [Self::Aes256GcmRtpSize, Self::XChaCha20Poly1305RtpSize];

    /// Discord's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aes256GcmRtpSize => "aead_aes256_gcm_rtpsize",
            Self::XChaCha20Poly1305RtpSize => "aead_xchacha20_poly1305_rtpsize",
        }
    }

    /// The mode called `name`.
    ///
    /// # Errors
    /// [`VoiceErrorKind::RetiredMode`] for the retired modes, [`VoiceErrorKind::UnknownMode`] else.
    pub fn from_name(name: &str) -> Result<Self, VoiceError> {
        if let Some(mode) = Self::ALL.into_iter().find(|mode| mode.name() == name) {
            Ok(mode)
        } else if RETIRED.contains(&name) {
            Err(VoiceError::new(VoiceErrorKind::RetiredMode {
                name: name.to_owned(),
            }))
        } else {
            Err(VoiceError::new(VoiceErrorKind::UnknownMode {
                name: name.to_owned(),
            }))
        }
    }

    /// The best mode among those the server `offered` (READY's `modes`).
    ///
    /// ```
    /// use nostrum_voice::CryptoMode;
    /// let offered = ["aead_xchacha20_poly1305_rtpsize".to_owned(), "aead_aes256_gcm_rtpsize".to_owned()];
    /// assert_eq!(CryptoMode::choose(&offered).unwrap(), CryptoMode::Aes256GcmRtpSize);
    /// ```
    ///
    /// # Errors
    /// [`VoiceErrorKind::NoSupportedMode`] when none is supported (for example only retired ones).
    pub fn choose(offered: &[String]) -> Result<Self, VoiceError> {
        Self::ALL
            .into_iter()
            .find(|mode| offered.iter().any(|name| name == mode.name()))
            .ok_or_else(|| {
                VoiceError::new(VoiceErrorKind::NoSupportedMode {
                    offered: offered.to_vec(),
                })
            })
    }

    /// Bytes of the full AEAD nonce (12 or 24).
    pub fn nonce_len(self) -> usize {
        match self {
            Self::Aes256GcmRtpSize => 12,
            Self::XChaCha20Poly1305RtpSize => 24,
        }
    }
}

/// A keyed cipher for one mode: seals outgoing packets and opens incoming ones.
#[derive(Clone)]
pub struct Cipher {
    mode: CryptoMode,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Aes(Box<Aes256Gcm>),
    XChaCha(Box<XChaCha20Poly1305>),
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("mode", &self.mode)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// A received packet, opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Its RTP header.
    pub header: rtp::RtpHeader,
    /// The payload type.
    pub payload_type: u8,
    /// The decrypted Opus frame (extension body and padding removed).
    pub payload: Vec<u8>,
    /// The 32-bit nonce the sender appended.
    pub nonce: u32,
}

impl Cipher {
    /// A cipher for `mode` with the session's `key` (SESSION_DESCRIPTION's `secret_key`).
    ///
    /// # Errors
    /// [`VoiceErrorKind::BadKey`] when the key is not 32 bytes.
    pub fn new(mode: CryptoMode, key: &[u8]) -> Result<Self, VoiceError> {
        let bad = || VoiceError::new(VoiceErrorKind::BadKey);
        let inner = match mode {
            CryptoMode::Aes256GcmRtpSize => {
                Inner::Aes(Box::new(Aes256Gcm::new_from_slice(key).map_err(|_| bad())?))
            }
            CryptoMode::XChaCha20Poly1305RtpSize => Inner::XChaCha(Box::new(
                XChaCha20Poly1305::new_from_slice(key).map_err(|_| bad())?,
            )),
        };
        Ok(Self { mode, inner })
    }

    /// The mode.
    pub fn mode(&self) -> CryptoMode {
        self.mode
    }

    /// Seals `packet` in place: `packet[..clear_len]` (the RTP header) stays clear and is
    /// authenticated, the rest is encrypted; the tag and `nonce` (4 bytes, big endian) are appended.
    ///
    /// # Errors
    /// [`VoiceErrorKind::PacketTooShort`] when `clear_len` exceeds the packet, or
    /// [`VoiceErrorKind::Encrypt`].
    pub fn seal(
        &self,
        packet: &mut Vec<u8>,
        clear_len: usize,
        nonce: u32,
    ) -> Result<(), VoiceError> {
        if clear_len > packet.len() {
            return Err(VoiceError::new(VoiceErrorKind::PacketTooShort));
        }
        let full = self.full_nonce(nonce);
        let (aad, body) = packet.split_at_mut(clear_len);
        let tag = match &self.inner {
            Inner::Aes(c) => c
                .encrypt_in_place_detached(full[..12].into(), aad, body)
                .map(|t| t.to_vec()),
            Inner::XChaCha(c) => c
                .encrypt_in_place_detached(full[..].into(), aad, body)
                .map(|t| t.to_vec()),
        }
        .map_err(|_| VoiceError::new(VoiceErrorKind::Encrypt))?;
        packet.extend_from_slice(&tag);
        packet.extend_from_slice(&nonce.to_be_bytes());
        Ok(())
    }

    /// Opens a received packet: checks the RTP header, authenticates and decrypts, strips the
    /// header extension body and padding.
    ///
    /// # Errors
    /// [`VoiceErrorKind::PacketTooShort`], [`VoiceErrorKind::NotRtp`] or
    /// [`VoiceErrorKind::Decrypt`]; never panics, whatever the bytes.
    pub fn open(&self, packet: &[u8]) -> Result<Opened, VoiceError> {
        let short = || VoiceError::new(VoiceErrorKind::PacketTooShort);
        let parsed = rtp::parse(packet)?;
        let tail = packet
            .len()
            .checked_sub(parsed.clear_len + TAG_LEN + NONCE_SUFFIX_LEN)
            .ok_or_else(short)?;
        let body_end = parsed.clear_len + tail;
        let tag = &packet[body_end..body_end + TAG_LEN];
        let suffix = &packet[body_end + TAG_LEN..];
        let nonce = u32::from_be_bytes([suffix[0], suffix[1], suffix[2], suffix[3]]);
        let full = self.full_nonce(nonce);
        let aad = &packet[..parsed.clear_len];
        let mut body = packet[parsed.clear_len..body_end].to_vec();
        let ok = match &self.inner {
            Inner::Aes(c) => {
                c.decrypt_in_place_detached(full[..12].into(), aad, &mut body, tag.into())
            }
            Inner::XChaCha(c) => {
                c.decrypt_in_place_detached(full[..].into(), aad, &mut body, tag.into())
            }
        };
        ok.map_err(|_| VoiceError::new(VoiceErrorKind::Decrypt))?;
        if parsed.padding {
            let pad = usize::from(*body.last().ok_or_else(short)?);
            let keep = body.len().checked_sub(pad).ok_or_else(short)?;
            body.truncate(keep);
        }
        if parsed.extension_body > body.len() {
            return Err(short());
        }
        body.drain(..parsed.extension_body);
        Ok(Opened {
            header: parsed.header,
            payload_type: parsed.payload_type,
            payload: body,
            nonce,
        })
    }

    fn full_nonce(&self, nonce: u32) -> [u8; 24] {
        let mut full = [0; 24];
        full[..4].copy_from_slice(&nonce.to_be_bytes());
        full
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;

    fn key() -> Vec<u8> {
        (0..32).collect()
    }

    fn sealed(cipher: &Cipher, payload: &[u8], nonce: u32) -> Vec<u8> {
        let mut packet = RtpHeader {
            sequence: 7,
            timestamp: 960 * 7,
            ssrc: 99,
        }
        .to_bytes()
        .to_vec();
        packet.extend_from_slice(payload);
        cipher.seal(&mut packet, rtp::HEADER_LEN, nonce).unwrap();
        packet
    }

    #[test]
    fn names_and_choice() {
        for mode in CryptoMode::ALL {
            assert_eq!(CryptoMode::from_name(mode.name()).unwrap(), mode);
        }
        let offered: Vec<String> = ["xsalsa20_poly1305", "aead_xchacha20_poly1305_rtpsize"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            CryptoMode::choose(&offered).unwrap(),
            CryptoMode::XChaCha20Poly1305RtpSize
        );
        let retired = CryptoMode::from_name("xsalsa20_poly1305_lite").unwrap_err();
        assert!(matches!(retired.kind(), VoiceErrorKind::RetiredMode { .. }));
        assert!(retired.to_string().contains("retired"));
        let none = CryptoMode::choose(&["xsalsa20_poly1305".to_owned()]).unwrap_err();
        assert!(matches!(
            none.kind(),
            VoiceErrorKind::NoSupportedMode { .. }
        ));
        assert!(matches!(
            CryptoMode::from_name("rot13").unwrap_err().kind(),
            VoiceErrorKind::UnknownMode { .. }
        ));
    }

    #[test]
    fn round_trip_each_mode() {
        for mode in CryptoMode::ALL {
            let cipher = Cipher::new(mode, &key()).unwrap();
            for len in [0, 1, 3, 160, 1275] {
                let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let packet = sealed(&cipher, &payload, 0xFFFF_FFFE);
                assert_eq!(packet.len(), 12 + len + TAG_LEN + 4);
                assert_eq!(&packet[packet.len() - 4..], &[0xFF, 0xFF, 0xFF, 0xFE]);
                let opened = cipher.open(&packet).unwrap();
                assert_eq!(opened.payload, payload, "{mode:?}");
                assert_eq!(opened.header.sequence, 7);
                assert_eq!(opened.header.ssrc, 99);
                assert_eq!(opened.nonce, 0xFFFF_FFFE);
            }
        }
    }

    #[test]
    fn header_is_authenticated_and_extension_stripped() {
        for mode in CryptoMode::ALL {
            let cipher = Cipher::new(mode, &key()).unwrap();
            let mut packet = sealed(&cipher, b"opus", 1);
            packet[3] ^= 1;
            assert_eq!(
                cipher.open(&packet).unwrap_err().kind(),
                &VoiceErrorKind::Decrypt
            );

            // A packet with a one-word extension: header + ext header clear, ext body encrypted.
            let mut packet = RtpHeader {
                sequence: 1,
                timestamp: 2,
                ssrc: 3,
            }
            .to_bytes()
            .to_vec();
            packet[0] |= 0x10;
            packet.extend_from_slice(&[0xBE, 0xDE, 0, 1]);
            packet.extend_from_slice(&[9, 9, 9, 9]);
            packet.extend_from_slice(b"frame");
            cipher.seal(&mut packet, 16, 5).unwrap();
            assert_eq!(cipher.open(&packet).unwrap().payload, b"frame");
        }
    }

    #[test]
    fn wrong_key_and_modes_do_not_open() {
        let aes = Cipher::new(CryptoMode::Aes256GcmRtpSize, &key()).unwrap();
        let xchacha = Cipher::new(CryptoMode::XChaCha20Poly1305RtpSize, &key()).unwrap();
        let other = Cipher::new(CryptoMode::Aes256GcmRtpSize, &[1; 32]).unwrap();
        let packet = sealed(&aes, b"hello", 3);
        assert!(xchacha.open(&packet).is_err());
        assert!(other.open(&packet).is_err());
        assert_eq!(
            Cipher::new(CryptoMode::Aes256GcmRtpSize, &[0; 16])
                .unwrap_err()
                .kind(),
            &VoiceErrorKind::BadKey
        );
    }

    #[test]
    fn short_truncated_garbage_error_never_panic() {
        let mut rng = fastrand::Rng::with_seed(0x5EED);
        for mode in CryptoMode::ALL {
            let cipher = Cipher::new(mode, &key()).unwrap();
            let packet = sealed(&cipher, b"some opus bytes", 9);
            for cut in 0..packet.len() {
                assert!(cipher.open(&packet[..cut]).is_err(), "cut {cut}");
            }
            for _ in 0..5_000 {
                let len = rng.usize(0..80);
                let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
                if rng.bool() && !bytes.is_empty() {
                    bytes[0] = 0x80 | (bytes[0] & 0x3F);
                }
                assert!(cipher.open(&bytes).is_err());
            }
            for _ in 0..2_000 {
                let mut flipped = packet.clone();
                let i = rng.usize(..flipped.len());
                flipped[i] ^= 1 << rng.u8(0..8);
                assert!(cipher.open(&flipped).is_err());
            }
        }
    }
}
