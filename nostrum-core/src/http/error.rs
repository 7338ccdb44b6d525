//! REST errors: a kind, Discord's answer when there is one, and the source; never the token.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// A REST request failed.
///
/// It names the request as `METHOD path` with webhook and interaction tokens replaced by `:token`,
/// and never holds the bot token.
#[derive(Debug)]
pub struct HttpError {
    kind: HttpErrorKind,
    request: Option<String>,
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
    /// The request could not be sent or its answer not read (connection refused or reset).
    Request,
    /// No answer came within the client's timeout.
    Timeout,
    /// Discord answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// Discord's JSON error code (`10003` Unknown Channel, ...), 0 when absent.
        code: u64,
        /// Discord's message.
        message: String,
        /// Discord's field errors, as sent; see [`HttpError::field_errors`].
        errors: Option<Value>,
    },
    /// Still rate limited after the configured number of retries.
    RateLimited {
        /// The last `retry_after`.
        retry_after: Duration,
        /// Whether it was the global limit.
        global: bool,
    },
    /// The answer was not the JSON expected.
    Json,
}

/// One of Discord's field errors: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, e.g. `embeds.0.title` (empty for the body itself).
    pub path: String,
    /// Discord's code, e.g. `BASE_TYPE_MAX_LENGTH`.
    pub code: String,
    /// Discord's message.
    pub message: String,
}

impl HttpError {
    pub(crate) fn new(kind: HttpErrorKind) -> Self {
        Self {
            kind,
            request: None,
            source: None,
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(HttpErrorKind::Validation {
            message: message.into(),
        })
    }

    /// A transport error; reqwest's error carries the URL, which is dropped (it may hold a token).
    pub(crate) fn transport(err: reqwest::Error) -> Self {
        let kind = if err.is_timeout() {
            HttpErrorKind::Timeout
        } else {
            HttpErrorKind::Request
        };
        Self {
            kind,
            request: None,
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
            errors: Option<Value>,
        }
        let body: Body = serde_json::from_slice(body).unwrap_or(Body {
            code: 0,
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
            errors: None,
        });
        Self::new(HttpErrorKind::Status {
            status,
            code: body.code,
            message: body.message,
            errors: body.errors,
        })
    }

    pub(crate) fn json(err: serde_json::Error) -> Self {
        Self {
            kind: HttpErrorKind::Json,
            request: None,
            source: Some(Box::new(err)),
        }
    }

    /// Names the request (already redacted) in the error.
    pub(crate) fn with_request(mut self, request: String) -> Self {
        self.request = Some(request);
        self
    }

    /// Why it failed.
    pub fn kind(&self) -> &HttpErrorKind {
        &self.kind
    }

    /// The request, as `METHOD path` with tokens replaced by `:token`.
    pub fn request(&self) -> Option<&str> {
        self.request.as_deref()
    }

    /// The HTTP status, if Discord answered.
    pub fn status_code(&self) -> Option<u16> {
        match &self.kind {
            HttpErrorKind::Status { status, .. } => Some(*status),
            HttpErrorKind::RateLimited { .. } => Some(429),
            _ => None,
        }
    }

    /// Discord's JSON error code, if it sent one.
    pub fn code(&self) -> Option<u64> {
        match &self.kind {
            HttpErrorKind::Status { code, .. } if *code != 0 => Some(*code),
            _ => None,
        }
    }

    /// Whether the request was found invalid before it was sent.
    pub fn is_validation(&self) -> bool {
        matches!(self.kind, HttpErrorKind::Validation { .. })
    }

    /// Whether no answer came in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, HttpErrorKind::Timeout)
    }

    /// Discord's field errors, flattened: `{"embeds": {"0": {"title": {"_errors": [..]}}}}` becomes
    /// one [`FieldError`] with the path `embeds.0.title`.
    pub fn field_errors(&self) -> Vec<FieldError> {
        let mut out = Vec::new();
        if let HttpErrorKind::Status {
            errors: Some(errors),
            ..
        } = &self.kind
        {
            flatten(errors, &mut String::new(), &mut out);
        }
        out
    }

    /// The kind and the source, which survives.
    pub fn into_parts(self) -> (HttpErrorKind, Option<Box<dyn Error + Send + Sync>>) {
        (self.kind, self.source)
    }
}

fn flatten(value: &Value, path: &mut String, out: &mut Vec<FieldError>) {
    let Some(map) = value.as_object() else {
        return;
    };
    for (key, value) in map {
        if key == "_errors" {
            for err in value.as_array().into_iter().flatten() {
                let text = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                out.push(FieldError {
                    path: path.clone(),
                    code: text("code"),
                    message: text("message"),
                });
            }
            continue;
        }
        let len = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
        flatten(value, path, out);
        path.truncate(len);
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            HttpErrorKind::Validation { message } => write!(f, "invalid request: {message}")?,
            HttpErrorKind::Request => {
                f.write_str("the request could not be sent or its answer not read")?;
            }
            HttpErrorKind::Timeout => f.write_str("no answer came in time")?,
            HttpErrorKind::Status {
                status,
                code,
                message,
                ..
            } => write!(f, "Discord answered {status}: {message} (code {code})")?,
            HttpErrorKind::RateLimited {
                retry_after,
                global,
            } => write!(
                f,
                "still rate limited{} after retrying (retry after {:.3} s)",
                if *global { " globally" } else { "" },
                retry_after.as_secs_f64()
            )?,
            HttpErrorKind::Json => f.write_str("Discord's answer was not the JSON expected")?,
        }
        if let Some(request) = &self.request {
            write!(f, " [{request}]")?;
        }
        Ok(())
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
        assert_eq!((err.status_code(), err.code()), (Some(404), Some(10003)));
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
    fn field_errors_are_flattened() {
        let err = HttpError::status(
            400,
            br#"{"code":50035,"message":"Invalid Form Body","errors":{"embeds":{"0":{"title":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"Must be 256 or fewer in length."}]}}},"content":{"_errors":[{"code":"X","message":"y"}]}}}"#,
        )
        .with_request("POST /channels/1/messages".into());
        let mut fields = err.field_errors();
        fields.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].path, "embeds.0.title");
        assert_eq!(fields[1].code, "BASE_TYPE_MAX_LENGTH");
        assert!(err.to_string().ends_with("[POST /channels/1/messages]"));
    }

    #[test]
    fn sources_survive_into_parts() {
        let err = HttpError::json(serde_json::from_str::<u8>("x").unwrap_err());
        let (kind, source) = err.into_parts();
        assert_eq!(kind, HttpErrorKind::Json);
        assert!(source.is_some());
    }
}
