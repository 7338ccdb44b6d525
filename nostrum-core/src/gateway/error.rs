//! Errors of the gateway: a kind, an optional source, and the close code that caused it.

use std::{error::Error, fmt};

/// An error returned by a [`Shard`](super::Shard) or a [`ShardSender`](super::ShardSender).
///
/// The shape follows twilight: match on [`kind`](Self::kind), reach the cause through
/// [`Error::source`] or [`into_parts`](Self::into_parts). The token never appears in it.
///
/// ```
/// use nostrum_core::gateway::{GatewayError, GatewayErrorKind};
///
/// fn fatal(error: &GatewayError) -> bool {
///     error.kind().close_code().is_some()
/// }
/// # let _ = fatal;
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct GatewayError {
    kind: GatewayErrorKind,
    #[source]
    source: Option<Box<dyn Error + Send + Sync>>,
}

impl GatewayError {
    /// An error of this kind without a source.
    pub(crate) fn new(kind: GatewayErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// An error of this kind caused by `source`.
    pub(crate) fn with_source(
        kind: GatewayErrorKind,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    /// What went wrong.
    #[must_use = "retrieving the kind has no effect if left unused"]
    pub const fn kind(&self) -> &GatewayErrorKind {
        &self.kind
    }

    /// Consumes the error, returning its source if there is one.
    #[must_use = "consuming the error has no effect if left unused"]
    pub fn into_source(self) -> Option<Box<dyn Error + Send + Sync>> {
        self.source
    }

    /// Consumes the error, returning its kind and its source.
    #[must_use = "consuming the error has no effect if left unused"]
    pub fn into_parts(self) -> (GatewayErrorKind, Option<Box<dyn Error + Send + Sync>>) {
        (self.kind, self.source)
    }
}

/// The kind of a [`GatewayError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GatewayErrorKind {
    /// Close code 4004: the token is wrong. Never retried.
    AuthenticationFailed,
    /// Close code 4010: the shard number or total is invalid. Never retried.
    InvalidShard,
    /// Close code 4011: the bot is in too many guilds for this shard count. Never retried.
    ShardingRequired,
    /// Close code 4012: the gateway rejected the API version. Never retried.
    InvalidApiVersion,
    /// Close code 4013: the intents value is invalid. Never retried.
    InvalidIntents,
    /// Close code 4014: a privileged intent is not enabled for this application. Never retried.
    DisallowedIntents,
    /// The shard was closed by the user ([`ShardSender::close`](super::ShardSender::close)).
    Closed,
    /// The command could not reach the shard: the shard was dropped, or the payload did not
    /// serialize.
    SendingCommand,
    /// The command is one the shard sends itself (IDENTIFY, RESUME) or is larger than the 4096
    /// bytes Discord accepts.
    InvalidCommand,
}

impl GatewayErrorKind {
    /// The Discord close code that causes this kind, for the fatal kinds.
    ///
    /// ```
    /// use nostrum_core::gateway::GatewayErrorKind;
    ///
    /// assert_eq!(GatewayErrorKind::DisallowedIntents.close_code(), Some(4014));
    /// assert_eq!(GatewayErrorKind::Closed.close_code(), None);
    /// ```
    pub const fn close_code(&self) -> Option<u16> {
        match self {
            Self::AuthenticationFailed => Some(4004),
            Self::InvalidShard => Some(4010),
            Self::ShardingRequired => Some(4011),
            Self::InvalidApiVersion => Some(4012),
            Self::InvalidIntents => Some(4013),
            Self::DisallowedIntents => Some(4014),
            Self::Closed | Self::SendingCommand | Self::InvalidCommand => None,
        }
    }

    /// The fatal kind for a close code, or `None` if the code allows a reconnect.
    pub(crate) const fn from_close_code(code: u16) -> Option<Self> {
        match code {
            4004 => Some(Self::AuthenticationFailed),
            4010 => Some(Self::InvalidShard),
            4011 => Some(Self::ShardingRequired),
            4012 => Some(Self::InvalidApiVersion),
            4013 => Some(Self::InvalidIntents),
            4014 => Some(Self::DisallowedIntents),
            _ => None,
        }
    }
}

impl fmt::Display for GatewayErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AuthenticationFailed => {
                "gateway closed with 4004 (authentication failed): the token is invalid"
            }
            Self::InvalidShard => {
                "gateway closed with 4010 (invalid shard): check the shard id and total"
            }
            Self::ShardingRequired => {
                "gateway closed with 4011 (sharding required): the bot needs more shards"
            }
            Self::InvalidApiVersion => "gateway closed with 4012 (invalid API version)",
            Self::InvalidIntents => "gateway closed with 4013 (invalid intents)",
            Self::DisallowedIntents => {
                "gateway closed with 4014 (disallowed intents): enable the privileged intents in \
                 the developer portal or stop requesting them"
            }
            Self::Closed => "the shard was closed by the user",
            Self::SendingCommand => "the command could not be sent to the shard",
            Self::InvalidCommand => "the command is not allowed or is larger than 4096 bytes",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{GatewayError, GatewayErrorKind};
    use std::error::Error;

    #[test]
    fn close_codes_round_trip() {
        for code in [4004, 4010, 4011, 4012, 4013, 4014] {
            let kind = GatewayErrorKind::from_close_code(code).unwrap();
            assert_eq!(kind.close_code(), Some(code));
            assert!(kind.to_string().contains(&code.to_string()));
        }
        for code in [1000, 4000, 4001, 4007, 4008, 4009] {
            assert_eq!(GatewayErrorKind::from_close_code(code), None);
        }
    }

    #[test]
    fn source_survives_into_parts() {
        let io = std::io::Error::other("boom");
        let error = GatewayError::with_source(GatewayErrorKind::SendingCommand, io);
        assert_eq!(error.source().unwrap().to_string(), "boom");
        assert_eq!(
            error.to_string(),
            GatewayErrorKind::SendingCommand.to_string()
        );
        let (kind, source) = error.into_parts();
        assert_eq!(kind, GatewayErrorKind::SendingCommand);
        assert_eq!(source.unwrap().to_string(), "boom");
        assert!(
            GatewayError::new(GatewayErrorKind::Closed)
                .source()
                .is_none()
        );
    }
}
