//! The voice error: a kind saying what went wrong, and the cause underneath when there is one.

use std::error::Error as StdError;
use std::fmt;

type Source = Box<dyn StdError + Send + Sync>;

/// An error of voice: connecting, the voice gateway, UDP, encryption or audio input.
///
/// Third-party errors never appear in signatures: they are kept as the [`source`](StdError::source).
#[derive(Debug)]
pub struct VoiceError {
    kind: VoiceErrorKind,
    source: Option<Source>,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VoiceErrorKind {
    /// The server offered no encryption mode this crate supports.
    NoSupportedMode {
        /// The modes offered.
        offered: Vec<String>,
    },
    /// A retired encryption mode (the `xsalsa20_poly1305*` family, or non-rtpsize `aead_aes256_gcm`)
    /// was asked for; Discord no longer accepts them.
    RetiredMode {
        /// The mode's name.
        name: String,
    },
    /// An encryption mode name nobody knows.
    UnknownMode {
        /// The mode's name.
        name: String,
    },
    /// A secret key of the wrong length (32 bytes are needed).
    BadKey,
    /// A packet too short for what it claims to hold.
    PacketTooShort,
    /// A packet that is not RTP version 2.
    NotRtp,
    /// Authentication of an encrypted packet failed (wrong key, or altered bytes).
    Decrypt,
    /// Encryption failed.
    Encrypt,
    /// The voice WebSocket could not be opened, or it failed.
    WebSocket,
    /// A UDP socket error.
    Udp,
    /// IP discovery got no valid answer.
    IpDiscovery,
    /// The server sent something the protocol does not allow at that point.
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// The voice gateway closed with a code after which one must not reconnect.
    FatalClose {
        /// The close code (4004, 4006, 4009, 4011, 4012, 4014, 4016, 4017, 4020, 4021, 4022).
        code: u16,
        /// What the code means.
        reason: String,
    },
    /// A step of the handshake took too long.
    Timeout,
    /// The connection is closed: the driver task has ended.
    Closed,
    /// An audio input could not be read (Ogg framing, missing OpusHead, I/O).
    Input {
        /// What was wrong.
        reason: String,
    },
    /// A program an input needs (ffmpeg) is not installed or not on `PATH`.
    MissingProgram {
        /// The program's name.
        name: String,
    },
    /// Joining through the main gateway failed (no shard, or no answer in time).
    Join {
        /// What was wrong.
        reason: String,
    },
}

impl VoiceError {
    /// An error of `kind` with no cause underneath.
    pub fn new(kind: VoiceErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// An error of `kind` caused by `source`.
    pub fn with_source(kind: VoiceErrorKind, source: impl Into<Source>) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    pub(crate) fn protocol(reason: impl Into<String>) -> Self {
        Self::new(VoiceErrorKind::Protocol {
            reason: reason.into(),
        })
    }

    pub(crate) fn input(reason: impl Into<String>) -> Self {
        Self::new(VoiceErrorKind::Input {
            reason: reason.into(),
        })
    }

    /// What went wrong.
    pub fn kind(&self) -> &VoiceErrorKind {
        &self.kind
    }

    /// The kind and the cause, taken apart.
    pub fn into_parts(self) -> (VoiceErrorKind, Option<Source>) {
        (self.kind, self.source)
    }

    /// Whether the voice gateway closed with a code after which one must not reconnect.
    pub fn is_fatal_close(&self) -> bool {
        matches!(self.kind, VoiceErrorKind::FatalClose { .. })
    }
}

impl fmt::Display for VoiceErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSupportedMode { offered } => {
                write!(f, "no supported encryption mode among {offered:?}")
            }
            Self::RetiredMode { name } => write!(
                f,
                "encryption mode {name} is retired by Discord; use aead_aes256_gcm_rtpsize or aead_xchacha20_poly1305_rtpsize"
            ),
            Self::UnknownMode { name } => write!(f, "unknown encryption mode {name}"),
            Self::BadKey => f.write_str("secret key must be 32 bytes"),
            Self::PacketTooShort => f.write_str("packet too short"),
            Self::NotRtp => f.write_str("packet is not RTP version 2"),
            Self::Decrypt => f.write_str("packet failed authentication"),
            Self::Encrypt => f.write_str("packet encryption failed"),
            Self::WebSocket => f.write_str("voice websocket failed"),
            Self::Udp => f.write_str("voice UDP socket failed"),
            Self::IpDiscovery => f.write_str("IP discovery failed"),
            Self::Protocol { reason } => write!(f, "voice protocol error: {reason}"),
            Self::FatalClose { code, reason } => {
                write!(
                    f,
                    "voice gateway closed with {code} ({reason}); not reconnecting"
                )
            }
            Self::Timeout => f.write_str("voice handshake timed out"),
            Self::Closed => f.write_str("voice connection is closed"),
            Self::Input { reason } => write!(f, "audio input: {reason}"),
            Self::MissingProgram { name } => write!(f, "{name} is not installed (not on PATH)"),
            Self::Join { reason } => write!(f, "joining voice failed: {reason}"),
        }
    }
}

impl fmt::Display for VoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.kind.fmt(f)
    }
}

impl StdError for VoiceError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_ref()
            .map(|source| &**source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_survives_into_parts() {
        let io = std::io::Error::other("boom");
        let error = VoiceError::with_source(VoiceErrorKind::Udp, io);
        assert!(StdError::source(&error).is_some());
        let (kind, source) = error.into_parts();
        assert_eq!(kind, VoiceErrorKind::Udp);
        assert_eq!(source.map(|s| s.to_string()).as_deref(), Some("boom"));
    }
}
