//! Request builders: validated as Discord documents, the error reported on `.await`.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use reqwest::Method;
use serde::Serialize;
use twilight_model::channel::Message;
use twilight_model::id::Id;
use twilight_model::id::marker::{ChannelMarker, MessageMarker};

use super::{Http, HttpError};

/// `POST /channels/{channel.id}/messages`. Send it with `.await`.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateMessage<'a> {
    http: &'a Http,
    channel_id: Id<ChannelMarker>,
    body: CreateMessageBody,
}

#[derive(Debug, Default, Serialize)]
struct CreateMessageBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_reference: Option<MessageReference>,
}

#[derive(Debug, Serialize)]
struct MessageReference {
    message_id: Id<MessageMarker>,
    fail_if_not_exists: bool,
}

/// The most characters a message's content may have.
pub const MESSAGE_CONTENT_MAX: usize = 2000;

impl<'a> CreateMessage<'a> {
    pub(super) fn new(http: &'a Http, channel_id: Id<ChannelMarker>) -> Self {
        Self {
            http,
            channel_id,
            body: CreateMessageBody::default(),
        }
    }

    /// The text, at most 2,000 characters.
    pub fn content(mut self, content: impl Into<String>) -> Self {
        self.body.content = Some(content.into());
        self
    }

    /// Read it aloud.
    pub fn tts(mut self, tts: bool) -> Self {
        self.body.tts = Some(tts);
        self
    }

    /// Reply to a message.
    pub fn reply(mut self, message_id: Id<MessageMarker>) -> Self {
        self.body.message_reference = Some(MessageReference {
            message_id,
            fail_if_not_exists: false,
        });
        self
    }

    fn validate(&self) -> Result<(), HttpError> {
        match &self.body.content {
            None => Err(HttpError::validation(
                "a message needs content, an embed, a sticker, a poll or a file",
            )),
            Some(content) if content.chars().count() > MESSAGE_CONTENT_MAX => {
                Err(HttpError::validation(format!(
                    "content is {} characters long; the most is {MESSAGE_CONTENT_MAX}",
                    content.chars().count()
                )))
            }
            Some(_) => Ok(()),
        }
    }
}

impl<'a> IntoFuture for CreateMessage<'a> {
    type Output = Result<Message, HttpError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            self.validate()?;
            let path = format!("/channels/{}/messages", self.channel_id);
            self.http
                .request(Method::POST, &path, Some(&self.body))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpErrorKind;

    #[tokio::test]
    async fn validation_fails_on_await_without_sending() {
        let http = Http::builder(None).api_base("http://127.0.0.1:9").build();
        let err = http
            .create_message(Id::new(1))
            .content("x".repeat(2001))
            .await
            .unwrap_err();
        assert!(
            matches!(err.kind(), HttpErrorKind::Validation { .. }),
            "{err}"
        );
        let err = http.create_message(Id::new(1)).await.unwrap_err();
        assert!(
            matches!(err.kind(), HttpErrorKind::Validation { .. }),
            "{err}"
        );
    }
}
