//! Webhook and interaction builders, which never send the bot token nor show their own.

use serde::Serialize;
use twilight_model::application::interaction::callback::InteractionCallbackResponse;
use twilight_model::channel::Message;
use twilight_model::channel::message::{AllowedMentions, Component, Embed, MessageFlags};
use twilight_model::channel::webhook::Webhook;
use twilight_model::http::attachment::Attachment;
use twilight_model::http::interaction::InteractionResponse;
use twilight_model::id::Id;
use twilight_model::id::marker::{ChannelMarker, InteractionMarker, MessageMarker, WebhookMarker};

use super::message::{MESSAGE_CONTENT_MAX, check_embeds, files_of};
use super::{Request, check_chars, check_items, to_value};
use crate::http::{Http, HttpError, routes};

/// A webhook or interaction token: `Debug` never shows it.
#[derive(Clone)]
struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `POST /channels/{channel_id}/webhooks`.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateWebhook<'a> {
    http: &'a Http,
    channel_id: Id<ChannelMarker>,
    name: String,
    avatar: Option<String>,
    reason: Option<String>,
}

impl<'a> CreateWebhook<'a> {
    /// The avatar as a data URI.
    pub fn avatar(mut self, avatar: &str) -> Self {
        self.avatar = Some(avatar.to_owned());
        self
    }

    /// The audit-log reason (at most 512 characters).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    fn request(self) -> Request<'a, Webhook> {
        let mut request = Request::new(
            self.http,
            &routes::CREATE_WEBHOOK,
            vec![self.channel_id.to_string()],
        )
        .with_reason(self.reason);
        if let Err(err) = check_webhook_name(&self.name) {
            request.fail(err);
        }
        let mut body = serde_json::json!({ "name": self.name });
        if let Some(avatar) = self.avatar {
            body["avatar"] = avatar.into();
        }
        request.with_body(body)
    }
}

into_future!(CreateWebhook, Webhook);

/// A webhook's name: 1 to 80 characters, without "clyde" or "discord".
fn check_webhook_name(name: &str) -> Result<(), HttpError> {
    check_chars("name", name, 1, 80)?;
    let lower = name.to_lowercase();
    if lower.contains("clyde") || lower.contains("discord") {
        return Err(HttpError::validation(
            "a webhook's name may not contain \"clyde\" or \"discord\"",
        ));
    }
    Ok(())
}

#[derive(Debug, Default, Serialize)]
struct ExecuteBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tts: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    embeds: Vec<Embed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_mentions: Option<AllowedMentions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<MessageFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_name: Option<String>,
}

/// `POST /webhooks/{webhook_id}/{webhook_token}`: also an interaction's follow-up (with the
/// application id and the interaction token). Answers the message with `.wait(true)`, else `None`.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ExecuteWebhook<'a> {
    http: &'a Http,
    webhook_id: Id<WebhookMarker>,
    token: Secret,
    body: ExecuteBody,
    wait: bool,
    thread_id: Option<Id<ChannelMarker>>,
}

impl<'a> ExecuteWebhook<'a> {
    /// The text, at most 2,000 characters.
    pub fn content(mut self, content: impl Into<String>) -> Self {
        self.body.content = Some(content.into());
        self
    }

    /// Overrides the webhook's name, 1 to 80 characters.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.body.username = Some(username.into());
        self
    }

    /// Overrides the webhook's avatar.
    pub fn avatar_url(mut self, url: impl Into<String>) -> Self {
        self.body.avatar_url = Some(url.into());
        self
    }

    /// Read it aloud.
    pub fn tts(mut self, tts: bool) -> Self {
        self.body.tts = Some(tts);
        self
    }

    /// Embeds: at most 10.
    pub fn embeds(mut self, embeds: &[Embed]) -> Self {
        self.body.embeds = embeds.to_vec();
        self
    }

    /// Who may be pinged.
    pub fn allowed_mentions(mut self, allowed_mentions: AllowedMentions) -> Self {
        self.body.allowed_mentions = Some(allowed_mentions);
        self
    }

    /// Components (for application-owned webhooks).
    pub fn components(mut self, components: &[Component]) -> Self {
        self.body.components = components.to_vec();
        self
    }

    /// Files: at most 10.
    pub fn attachments(mut self, attachments: &[Attachment]) -> Self {
        self.body.attachments = attachments.to_vec();
        self
    }

    /// Message flags (`EPHEMERAL` for follow-ups, `SUPPRESS_EMBEDS`, ...).
    pub fn flags(mut self, flags: MessageFlags) -> Self {
        self.body.flags = Some(flags);
        self
    }

    /// Posts in a thread of the webhook's channel.
    pub fn thread_id(mut self, thread_id: Id<ChannelMarker>) -> Self {
        self.thread_id = Some(thread_id);
        self
    }

    /// Creates a forum post of that name.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.body.thread_name = Some(name.into());
        self
    }

    /// Waits for the message to be created and answers it.
    pub fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    fn validate(&self) -> Result<(), HttpError> {
        let body = &self.body;
        let content = body.content.as_deref().unwrap_or("");
        if content.is_empty()
            && body.embeds.is_empty()
            && body.components.is_empty()
            && body.attachments.is_empty()
        {
            return Err(HttpError::validation(
                "a webhook message needs content, an embed, a component or a file",
            ));
        }
        check_chars("content", content, 0, MESSAGE_CONTENT_MAX)?;
        if let Some(username) = &body.username {
            check_webhook_name(username)?;
        }
        check_embeds(&body.embeds)?;
        check_items("components", body.components.len(), 0, 40)
    }

    fn request(self) -> Request<'a, Option<Message>> {
        let params = vec![self.webhook_id.to_string(), self.token.0.clone()];
        let mut request = Request::new(self.http, &routes::EXECUTE_WEBHOOK, params);
        if self.wait {
            request = request.query("wait", true);
        }
        if let Some(thread_id) = self.thread_id {
            request = request.query("thread_id", thread_id);
        }
        let built = self
            .validate()
            .and_then(|()| Ok((to_value(&self.body)?, files_of(&self.body.attachments)?)));
        match built {
            Ok((body, files)) => request.with_body(body).with_files(files),
            Err(err) => {
                request.fail(err);
                request
            }
        }
    }
}

into_future!(ExecuteWebhook, Option<Message>);

#[derive(Debug, Default, Serialize)]
struct EditBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embeds: Option<Vec<Embed>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Vec<Component>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_mentions: Option<AllowedMentions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachments: Option<Vec<Attachment>>,
}

/// `PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}` (or `@original`, an
/// interaction's response): only what is set changes.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct UpdateWebhookMessage<'a> {
    http: &'a Http,
    webhook_id: Id<WebhookMarker>,
    token: Secret,
    message_id: Option<Id<MessageMarker>>,
    body: EditBody,
    thread_id: Option<Id<ChannelMarker>>,
}

impl<'a> UpdateWebhookMessage<'a> {
    /// New text (at most 2,000 characters); `None` removes it.
    pub fn content(mut self, content: Option<&str>) -> Self {
        self.body.content = Some(content.map(str::to_owned));
        self
    }

    /// Replaces the embeds (at most 10).
    pub fn embeds(mut self, embeds: &[Embed]) -> Self {
        self.body.embeds = Some(embeds.to_vec());
        self
    }

    /// Replaces the components.
    pub fn components(mut self, components: &[Component]) -> Self {
        self.body.components = Some(components.to_vec());
        self
    }

    /// Who may be pinged.
    pub fn allowed_mentions(mut self, allowed_mentions: AllowedMentions) -> Self {
        self.body.allowed_mentions = Some(allowed_mentions);
        self
    }

    /// The files to keep and to add.
    pub fn attachments(mut self, attachments: &[Attachment]) -> Self {
        self.body.attachments = Some(attachments.to_vec());
        self
    }

    /// The message is in this thread.
    pub fn thread_id(mut self, thread_id: Id<ChannelMarker>) -> Self {
        self.thread_id = Some(thread_id);
        self
    }

    fn request(self) -> Request<'a, Message> {
        let mut params = vec![self.webhook_id.to_string(), self.token.0.clone()];
        let route = match self.message_id {
            Some(id) => {
                params.push(id.to_string());
                &routes::UPDATE_WEBHOOK_MESSAGE
            }
            None => &routes::UPDATE_ORIGINAL_WEBHOOK_MESSAGE,
        };
        let mut request = Request::new(self.http, route, params);
        if let Some(thread_id) = self.thread_id {
            request = request.query("thread_id", thread_id);
        }
        let body = &self.body;
        let built = (|| {
            if let Some(Some(content)) = &body.content {
                check_chars("content", content, 0, MESSAGE_CONTENT_MAX)?;
            }
            check_embeds(body.embeds.as_deref().unwrap_or_default())?;
            Ok((
                to_value(body)?,
                files_of(body.attachments.as_deref().unwrap_or_default())?,
            ))
        })();
        match built {
            Ok((value, files)) => request.with_body(value).with_files(files),
            Err(err) => {
                request.fail(err);
                request
            }
        }
    }
}

into_future!(UpdateWebhookMessage, Message);

/// `POST /interactions/{interaction_id}/{interaction_token}/callback`: the response to an
/// interaction, within 3 seconds. Exempt from the global rate limit; no bot token is sent.
///
/// ```no_run
/// # async fn run(http: nostrum_core::http::Http, id: nostrum_core::model::id::Id<nostrum_core::model::id::marker::InteractionMarker>, token: String) -> Result<(), nostrum_core::http::HttpError> {
/// use nostrum_core::model::http::interaction::{InteractionResponse, InteractionResponseData, InteractionResponseType};
/// let response = InteractionResponse {
///     kind: InteractionResponseType::ChannelMessageWithSource,
///     data: Some(InteractionResponseData { content: Some("pong".into()), ..Default::default() }),
/// };
/// http.create_interaction_response(id, &token, &response).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateInteractionResponse<'a> {
    http: &'a Http,
    interaction_id: Id<InteractionMarker>,
    token: Secret,
    response: InteractionResponse,
    with_response: bool,
}

impl<'a> CreateInteractionResponse<'a> {
    /// Asks Discord to answer with the callback's result (else it answers nothing: `None`).
    pub fn with_response(mut self, with_response: bool) -> Self {
        self.with_response = with_response;
        self
    }

    fn validate(&self) -> Result<(), HttpError> {
        let Some(data) = &self.response.data else {
            return Ok(());
        };
        check_chars(
            "content",
            data.content.as_deref().unwrap_or(""),
            0,
            MESSAGE_CONTENT_MAX,
        )?;
        check_embeds(data.embeds.as_deref().unwrap_or_default())?;
        check_items("choices", data.choices.as_ref().map_or(0, Vec::len), 0, 25)?;
        if let Some(title) = &data.title {
            check_chars("title", title, 1, 45)?;
        }
        if let Some(custom_id) = &data.custom_id {
            check_chars("custom_id", custom_id, 1, 100)?;
        }
        Ok(())
    }

    fn request(self) -> Request<'a, Option<InteractionCallbackResponse>> {
        let params = vec![self.interaction_id.to_string(), self.token.0.clone()];
        let mut request = Request::new(self.http, &routes::CREATE_INTERACTION_RESPONSE, params);
        if self.with_response {
            request = request.query("with_response", true);
        }
        let attachments = self
            .response
            .data
            .as_ref()
            .and_then(|d| d.attachments.as_deref())
            .unwrap_or_default();
        let built = self
            .validate()
            .and_then(|()| Ok((to_value(&self.response)?, files_of(attachments)?)));
        match built {
            Ok((body, files)) => request.with_body(body).with_files(files),
            Err(err) => {
                request.fail(err);
                request
            }
        }
    }
}

into_future!(
    CreateInteractionResponse,
    Option<InteractionCallbackResponse>
);

impl Http {
    /// `POST /channels/{channel_id}/webhooks`: see [`CreateWebhook`].
    pub fn create_webhook(&self, channel_id: Id<ChannelMarker>, name: &str) -> CreateWebhook<'_> {
        CreateWebhook {
            http: self,
            channel_id,
            name: name.to_owned(),
            avatar: None,
            reason: None,
        }
    }

    /// `POST /webhooks/{webhook_id}/{webhook_token}`: see [`ExecuteWebhook`].
    pub fn execute_webhook(
        &self,
        webhook_id: Id<WebhookMarker>,
        webhook_token: &str,
    ) -> ExecuteWebhook<'_> {
        ExecuteWebhook {
            http: self,
            webhook_id,
            token: Secret(webhook_token.to_owned()),
            body: ExecuteBody::default(),
            wait: false,
            thread_id: None,
        }
    }

    /// `PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original`: edits an interaction's
    /// response; see [`UpdateWebhookMessage`].
    pub fn update_original_webhook_message(
        &self,
        webhook_id: Id<WebhookMarker>,
        webhook_token: &str,
    ) -> UpdateWebhookMessage<'_> {
        self.edit_webhook_message(webhook_id, webhook_token, None)
    }

    /// `PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}`: see [`UpdateWebhookMessage`].
    pub fn update_webhook_message(
        &self,
        webhook_id: Id<WebhookMarker>,
        webhook_token: &str,
        message_id: Id<MessageMarker>,
    ) -> UpdateWebhookMessage<'_> {
        self.edit_webhook_message(webhook_id, webhook_token, Some(message_id))
    }

    fn edit_webhook_message(
        &self,
        webhook_id: Id<WebhookMarker>,
        token: &str,
        message_id: Option<Id<MessageMarker>>,
    ) -> UpdateWebhookMessage<'_> {
        UpdateWebhookMessage {
            http: self,
            webhook_id,
            token: Secret(token.to_owned()),
            message_id,
            body: EditBody::default(),
            thread_id: None,
        }
    }

    /// `POST /interactions/{interaction_id}/{interaction_token}/callback`: see
    /// [`CreateInteractionResponse`].
    pub fn create_interaction_response(
        &self,
        interaction_id: Id<InteractionMarker>,
        interaction_token: &str,
        response: &InteractionResponse,
    ) -> CreateInteractionResponse<'_> {
        CreateInteractionResponse {
            http: self,
            interaction_id,
            token: Secret(interaction_token.to_owned()),
            response: response.clone(),
            with_response: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn webhook_fields_are_checked_and_tokens_never_show() {
        let http = Http::builder(None).api_base("http://127.0.0.1:9").build();
        let err = http
            .create_webhook(Id::new(1), "my discord hook")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("clyde"), "{err}");
        let err = http
            .execute_webhook(Id::new(7), "s3cr3t-token")
            .content("x".repeat(2001))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("2001"), "{err}");
        assert_eq!(err.request(), Some("POST /webhooks/7/:token"));
        let request = http
            .execute_webhook(Id::new(7), "s3cr3t-token")
            .content("hi");
        assert!(!format!("{request:?}").contains("s3cr3t"));
        assert!(!format!("{:?}", request.request()).contains("s3cr3t"));
        // Sent (no bot token needed), but nobody listens: the error names no token either.
        let err = http
            .execute_webhook(Id::new(7), "s3cr3t-token")
            .content("hi")
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cr3t"), "{err:?}");
    }
}
