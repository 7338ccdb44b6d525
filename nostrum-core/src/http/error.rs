//! REST errors: a kind, Discord's answer when there is one, and the source; never the token.

use std::error::Error;
use std::fmt;

/// A REST request failed.
#[derive(Debug)]
pub struct HttpError {
    kind: HttpErrorKind,
    source: Option<Box<dyn Error + Send + Sync>>,
}

/// Why a REST request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// The request was invalid before it was sent (a field too long, a required field missing).
    Validation {
        /// What is wrong.
        message: String,
    },
    /// The request could not be sent or its answer not read (connection, timeout).
    Request,
    /// Discord answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// Discord's JSON error code (`10003` Unknown Channel, ...), 0 when absent.
        code: u64,
        /// Discord's message.
        message: String,
        /// Discord's field errors, as sent.
        errors: Option<serde_json::Value>,
    },
    /// The answer was not the JSON expected.
    Json,
}

impl HttpError {
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self {
            kind: HttpErrorKind::Validation {
                message: message.into(),
            },
            source: None,
        }
    }

    pub(crate) fn request(_path: &str, err: reqwest::Error) -> Self {
        // reqwest's error carries the URL; webhook tokens in URLs are stripped.
        Self {
            kind: HttpErrorKind::Request,
            source: Some(Box::new(err.without_url())),
        }
    }

    pub(crate) fn status(status: u16, body: &[u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            #[serde(default)]
            code: u64,
            #[serde(default)]
            message: String,
            #[serde(default)]
            errors: Option<serde_json::Value>,
        }
        let body: Body = serde_json::from_slice(body).unwrap_or(Body {
            code: 0,
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
            errors: None,
        });
        Self {
            kind: HttpErrorKind::Status {
                status,
                code: body.code,
                message: body.message,
                errors: body.errors,
            },
            source: None,
        }
    }

    pub(crate) fn json(err: serde_json::Error) -> Self {
        Self {
            kind: HttpErrorKind::Json,
            source: Some(Box::new(err)),
        }
    }

    /// Why it failed.
    pub fn kind(&self) -> &HttpErrorKind {
        &self.kind
    }

    /// The kind and the source, which survives.
    pub fn into_parts(self) -> (HttpErrorKind, Option<Box<dyn Error + Send + Sync>>) {
        (self.kind, self.source)
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            HttpErrorKind::Validation { message } => write!(f, "invalid request: {message}"),
            HttpErrorKind::Request => {
                f.write_str("the request could not be sent or its answer not read")
            }
            HttpErrorKind::Status {
                status,
                code,
                message,
                ..
            } => {
                write!(f, "Discord answered {status}: {message} (code {code})")
            }
            HttpErrorKind::Json => f.write_str("Discord's answer was not the JSON expected"),
        }
    }
}

impl Error for HttpError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source
            .as_ref()
            .map(|source| &**source as &(dyn Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_errors_are_read() {
        let err = HttpError::status(404, br#"{"message":"Unknown Channel","code":10003}"#);
        assert_eq!(
            err.kind(),
            &HttpErrorKind::Status {
                status: 404,
                code: 10003,
                message: "Unknown Channel".into(),
                errors: None
            }
        );
        assert_eq!(
            err.to_string(),
            "Discord answered 404: Unknown Channel (code 10003)"
        );
        let err = HttpError::status(502, b"<html>bad gateway</html>");
        assert!(matches!(
            err.kind(),
            HttpErrorKind::Status {
                status: 502,
                code: 0,
                ..
            }
        ));
    }

    #[test]
    fn sources_survive_into_parts() {
        let err = HttpError::json(serde_json::from_str::<u8>("x").unwrap_err());
        let (kind, source) = err.into_parts();
        assert_eq!(kind, HttpErrorKind::Json);
        assert!(source.is_some());
    }
}
