//! The bot token, kept out of every Debug and Display.

use std::fmt;

/// A Discord bot token.
///
/// `Debug` prints `<redacted>` so the token never reaches a log line or an error message.
///
/// ```
/// let token = nostrum_core::Token::new("abc.def.ghi");
/// assert_eq!(format!("{token:?}"), "Token(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token(Box<str>);

impl Token {
    /// Wraps a token. A leading `Bot ` is stripped: the gateway wants the bare token and REST adds
    /// the prefix itself.
    pub fn new(token: impl Into<String>) -> Self {
        let token: String = token.into();
        let token = token.trim();
        let bare = token.strip_prefix("Bot ").unwrap_or(token);
        Self(bare.into())
    }

    /// The bare token, for the gateway's IDENTIFY. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The value of the `Authorization` header for REST.
    pub fn authorization(&self) -> String {
        format!("Bot {}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl From<String> for Token {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Token {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::Token;

    #[test]
    fn debug_never_shows_the_token() {
        let token = Token::new("Bot secret-token-value");
        assert_eq!(token.expose(), "secret-token-value");
        assert!(!format!("{token:?}").contains("secret"));
        assert_eq!(token.authorization(), "Bot secret-token-value");
    }
}
