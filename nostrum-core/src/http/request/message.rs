//! Message builders: create, edit, list, bulk delete; and the checks embeds, files and components share.

use serde::Serialize;
use twilight_model::channel::Message;
use twilight_model::channel::message::{AllowedMentions, Component, Embed, MessageFlags};
use twilight_model::http::attachment::Attachment;
use twilight_model::id::Id;
use twilight_model::id::marker::{ChannelMarker, MessageMarker, StickerMarker};

use super::{Request, check_chars, check_items, to_value};
use crate::http::send::File;
use crate::http::{Http, HttpError, routes};

/// The most characters a message's content may have.
pub const MESSAGE_CONTENT_MAX: usize = 2000;
/// The most embeds of a message.
pub(crate) const EMBEDS_MAX: usize = 10;
/// The most characters of all the embeds of a message, together.
const EMBED_TOTAL_MAX: usize = 6000;
/// The most files of a message.
pub(crate) const FILES_MAX: usize = 10;

/// Checks embeds as Discord documents: at most 10, title 256, description 4096, 25 fields of name
/// 256 and value 1024, footer 2048, author name 256, and 6,000 characters in all.
pub(crate) fn check_embeds(embeds: &[Embed]) -> Result<(), HttpError> {
    check_items("embeds", embeds.len(), 0, EMBEDS_MAX)?;
    let mut total = 0;
    let mut text = |field: &str, value: &str, max: usize| {
        total += value.chars().count();
        check_chars(field, value, 0, max)
    };
    for embed in embeds {
        text("embed title", embed.title.as_deref().unwrap_or(""), 256)?;
        text(
            "embed description",
            embed.description.as_deref().unwrap_or(""),
            4096,
        )?;
        if let Some(footer) = &embed.footer {
            text("embed footer text", &footer.text, 2048)?;
        }
        if let Some(author) = &embed.author {
            text("embed author name", &author.name, 256)?;
        }
        check_items("embed fields", embed.fields.len(), 0, 25)?;
        for field in &embed.fields {
            text("embed field name", &field.name, 256)?;
            text("embed field value", &field.value, 1024)?;
        }
    }
    if total > EMBED_TOTAL_MAX {
        return Err(HttpError::validation(format!(
            "the embeds have {total} characters together; the most is {EMBED_TOTAL_MAX}"
        )));
    }
    Ok(())
}

/// Files as `files[id]` parts, and their metadata for `attachments`.
pub(crate) fn files_of(attachments: &[Attachment]) -> Result<Vec<File>, HttpError> {
    check_items("files", attachments.len(), 0, FILES_MAX)?;
    Ok(attachments
        .iter()
        .map(|a| File {
            field: format!("files[{}]", a.id),
            filename: a.filename.clone(),
            bytes: a.file.clone().into(),
        })
        .collect())
}

#[derive(Debug, Serialize)]
struct MessageReference {
    message_id: Id<MessageMarker>,
    fail_if_not_exists: bool,
}

#[derive(Debug, Default, Serialize)]
struct CreateMessageBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    embeds: Vec<Embed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tts: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_reference: Option<MessageReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component>,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_mentions: Option<AllowedMentions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sticker_ids: Vec<Id<StickerMarker>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<MessageFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enforce_nonce: Option<bool>,
}

/// `POST /channels/{channel_id}/messages`. Send it with `.await`.
///
/// ```no_run
/// # async fn run(http: nostrum_core::http::Http) -> Result<(), nostrum_core::http::HttpError> {
/// use nostrum_core::model::http::attachment::Attachment;
/// use nostrum_core::model::id::Id;
/// let file = Attachment::from_bytes("log.txt".into(), b"hello".to_vec(), 0);
/// http.create_message(Id::new(1)).content("see attached").attachments(&[file]).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct CreateMessage<'a> {
    http: &'a Http,
    channel_id: Id<ChannelMarker>,
    body: CreateMessageBody,
}

impl<'a> CreateMessage<'a> {
    pub(crate) fn new(http: &'a Http, channel_id: Id<ChannelMarker>) -> Self {
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

    /// Embeds: at most 10, 6,000 characters in all.
    pub fn embeds(mut self, embeds: &[Embed]) -> Self {
        self.body.embeds = embeds.to_vec();
        self
    }

    /// Components (action rows, or the layout components with `IS_COMPONENTS_V2`): at most 40.
    pub fn components(mut self, components: &[Component]) -> Self {
        self.body.components = components.to_vec();
        self
    }

    /// Who may be pinged.
    pub fn allowed_mentions(mut self, allowed_mentions: AllowedMentions) -> Self {
        self.body.allowed_mentions = Some(allowed_mentions);
        self
    }

    /// Stickers: at most 3.
    pub fn sticker_ids(mut self, sticker_ids: &[Id<StickerMarker>]) -> Self {
        self.body.sticker_ids = sticker_ids.to_vec();
        self
    }

    /// Files: at most 10, sent as multipart.
    pub fn attachments(mut self, attachments: &[Attachment]) -> Self {
        self.body.attachments = attachments.to_vec();
        self
    }

    /// Message flags (`SUPPRESS_EMBEDS`, `SUPPRESS_NOTIFICATIONS`, `IS_COMPONENTS_V2`).
    pub fn flags(mut self, flags: MessageFlags) -> Self {
        self.body.flags = Some(flags);
        self
    }

    /// A nonce (at most 25 characters); with `enforce`, a second message with it is not created.
    pub fn nonce(mut self, nonce: impl Into<String>, enforce: bool) -> Self {
        self.body.nonce = Some(nonce.into());
        self.body.enforce_nonce = Some(enforce);
        self
    }

    fn validate(&self) -> Result<(), HttpError> {
        let body = &self.body;
        let content = body.content.as_deref().unwrap_or("");
        if content.is_empty()
            && body.embeds.is_empty()
            && body.sticker_ids.is_empty()
            && body.components.is_empty()
            && body.attachments.is_empty()
        {
            return Err(HttpError::validation(
                "a message needs content, an embed, a sticker, a component or a file",
            ));
        }
        if content.chars().count() > MESSAGE_CONTENT_MAX {
            return Err(HttpError::validation(format!(
                "content is {} characters long; the most is {MESSAGE_CONTENT_MAX}",
                content.chars().count()
            )));
        }
        check_embeds(&body.embeds)?;
        check_items("components", body.components.len(), 0, 40)?;
        check_items("sticker_ids", body.sticker_ids.len(), 0, 3)?;
        if let Some(nonce) = &body.nonce {
            check_chars("nonce", nonce, 1, 25)?;
        }
        Ok(())
    }

    fn request(self) -> Request<'a, Message> {
        let mut request = Request::new(
            self.http,
            &routes::CREATE_MESSAGE,
            vec![self.channel_id.to_string()],
        );
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

into_future!(CreateMessage, Message);

#[derive(Debug, Default, Serialize)]
struct UpdateMessageBody {
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
    #[serde(skip_serializing_if = "Option::is_none")]
    flags: Option<MessageFlags>,
}

/// `PATCH /channels/{channel_id}/messages/{message_id}`: only what is set changes.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct UpdateMessage<'a> {
    http: &'a Http,
    channel_id: Id<ChannelMarker>,
    message_id: Id<MessageMarker>,
    body: UpdateMessageBody,
}

impl<'a> UpdateMessage<'a> {
    pub(crate) fn new(
        http: &'a Http,
        channel_id: Id<ChannelMarker>,
        message_id: Id<MessageMarker>,
    ) -> Self {
        Self {
            http,
            channel_id,
            message_id,
            body: UpdateMessageBody::default(),
        }
    }

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

    /// The files to keep and to add (new ones are uploaded).
    pub fn attachments(mut self, attachments: &[Attachment]) -> Self {
        self.body.attachments = Some(attachments.to_vec());
        self
    }

    /// Replaces the flags.
    pub fn flags(mut self, flags: MessageFlags) -> Self {
        self.body.flags = Some(flags);
        self
    }

    fn request(self) -> Request<'a, Message> {
        let params = vec![self.channel_id.to_string(), self.message_id.to_string()];
        let mut request = Request::new(self.http, &routes::UPDATE_MESSAGE, params);
        let body = &self.body;
        let built = (|| {
            if let Some(Some(content)) = &body.content {
                check_chars("content", content, 0, MESSAGE_CONTENT_MAX)?;
            }
            check_embeds(body.embeds.as_deref().unwrap_or_default())?;
            let files = files_of(body.attachments.as_deref().unwrap_or_default())?;
            Ok((to_value(body)?, files))
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

into_future!(UpdateMessage, Message);

/// `GET /channels/{channel_id}/messages`: the newest first, at most `limit` (1 to 100, default 50).
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct ListMessages<'a> {
    http: &'a Http,
    channel_id: Id<ChannelMarker>,
    anchor: Option<(&'static str, Id<MessageMarker>)>,
    limit: Option<u16>,
}

impl<'a> ListMessages<'a> {
    pub(crate) fn new(http: &'a Http, channel_id: Id<ChannelMarker>) -> Self {
        Self {
            http,
            channel_id,
            anchor: None,
            limit: None,
        }
    }

    /// Messages around this one (replaces `before` and `after`).
    pub fn around(mut self, message_id: Id<MessageMarker>) -> Self {
        self.anchor = Some(("around", message_id));
        self
    }

    /// Messages before this one (replaces `around` and `after`).
    pub fn before(mut self, message_id: Id<MessageMarker>) -> Self {
        self.anchor = Some(("before", message_id));
        self
    }

    /// Messages after this one (replaces `around` and `before`).
    pub fn after(mut self, message_id: Id<MessageMarker>) -> Self {
        self.anchor = Some(("after", message_id));
        self
    }

    /// How many, 1 to 100.
    pub fn limit(mut self, limit: u16) -> Self {
        self.limit = Some(limit);
        self
    }

    fn request(self) -> Request<'a, Vec<Message>> {
        let mut request = Request::new(
            self.http,
            &routes::LIST_MESSAGES,
            vec![self.channel_id.to_string()],
        );
        if let Some((name, id)) = self.anchor {
            request = request.query(name, id);
        }
        if let Some(limit) = self.limit {
            if let Err(err) = super::check_range("limit", i64::from(limit), 1, 100) {
                request.fail(err);
            }
            request = request.query("limit", limit);
        }
        request
    }
}

into_future!(ListMessages, Vec<Message>);

/// `POST /channels/{channel_id}/messages/bulk-delete`: 2 to 100 messages, none older than two weeks.
#[derive(Debug)]
#[must_use = "a request does nothing until it is awaited"]
pub struct BulkDeleteMessages<'a> {
    http: &'a Http,
    channel_id: Id<ChannelMarker>,
    messages: Vec<Id<MessageMarker>>,
    reason: Option<String>,
}

impl<'a> BulkDeleteMessages<'a> {
    pub(crate) fn new(
        http: &'a Http,
        channel_id: Id<ChannelMarker>,
        messages: &[Id<MessageMarker>],
    ) -> Self {
        Self {
            http,
            channel_id,
            messages: messages.to_vec(),
            reason: None,
        }
    }

    /// The audit-log reason (at most 512 characters).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    fn request(self) -> Request<'a, ()> {
        let mut request = Request::new(
            self.http,
            &routes::BULK_DELETE_MESSAGES,
            vec![self.channel_id.to_string()],
        )
        .with_reason(self.reason);
        let mut unique = self.messages.clone();
        unique.sort_unstable();
        unique.dedup();
        if unique.len() != self.messages.len() {
            request.fail(HttpError::validation("bulk delete lists a message twice"));
        }
        if let Err(err) = check_items("messages", self.messages.len(), 2, 100) {
            request.fail(err);
        }
        request.with_body(serde_json::json!({ "messages": self.messages }))
    }
}

into_future!(BulkDeleteMessages, ());

impl Http {
    /// `POST /channels/{channel_id}/messages`: see [`CreateMessage`].
    pub fn create_message(&self, channel_id: Id<ChannelMarker>) -> CreateMessage<'_> {
        CreateMessage::new(self, channel_id)
    }

    /// `PATCH /channels/{channel_id}/messages/{message_id}`: see [`UpdateMessage`].
    pub fn update_message(
        &self,
        channel_id: Id<ChannelMarker>,
        message_id: Id<MessageMarker>,
    ) -> UpdateMessage<'_> {
        UpdateMessage::new(self, channel_id, message_id)
    }

    /// `GET /channels/{channel_id}/messages`: see [`ListMessages`].
    pub fn list_messages(&self, channel_id: Id<ChannelMarker>) -> ListMessages<'_> {
        ListMessages::new(self, channel_id)
    }

    /// `POST /channels/{channel_id}/messages/bulk-delete`: see [`BulkDeleteMessages`].
    pub fn bulk_delete_messages(
        &self,
        channel_id: Id<ChannelMarker>,
        messages: &[Id<MessageMarker>],
    ) -> BulkDeleteMessages<'_> {
        BulkDeleteMessages::new(self, channel_id, messages)
    }
}

#[cfg(test)]
mod tests {
    use twilight_model::channel::message::embed::EmbedField;

    use super::*;
    use crate::http::HttpErrorKind;

    fn offline() -> Http {
        Http::builder(Some("t".into()))
            .api_base("http://127.0.0.1:9")
            .build()
    }

    fn embed(title: &str, fields: usize) -> Embed {
        Embed {
            author: None,
            color: None,
            description: None,
            fields: (0..fields)
                .map(|i| EmbedField {
                    inline: false,
                    name: format!("f{i}"),
                    value: "v".into(),
                })
                .collect(),
            flags: None,
            footer: None,
            image: None,
            kind: "rich".into(),
            provider: None,
            thumbnail: None,
            timestamp: None,
            title: Some(title.into()),
            url: None,
            video: None,
        }
    }

    async fn invalid<T: std::fmt::Debug>(
        request: impl std::future::IntoFuture<Output = Result<T, HttpError>>,
    ) -> String {
        let err = request.await.unwrap_err();
        match err.kind() {
            HttpErrorKind::Validation { message } => message.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn validation_fails_on_await_without_sending() {
        let http = offline();
        let msg = invalid(http.create_message(Id::new(1)).content("x".repeat(2001))).await;
        assert!(msg.contains("2001"), "{msg}");
        let msg = invalid(http.create_message(Id::new(1))).await;
        assert!(msg.contains("needs content"), "{msg}");
        let eleven = vec![embed("t", 0); 11];
        let msg = invalid(http.create_message(Id::new(1)).embeds(&eleven)).await;
        assert!(msg.contains("embeds has 11"), "{msg}");
        let msg = invalid(
            http.create_message(Id::new(1))
                .embeds(&[embed(&"t".repeat(257), 0)]),
        )
        .await;
        assert!(msg.contains("embed title"), "{msg}");
        let msg = invalid(http.create_message(Id::new(1)).embeds(&[embed("t", 26)])).await;
        assert!(msg.contains("embed fields"), "{msg}");
        let msg = invalid(
            http.create_message(Id::new(1))
                .content("x")
                .nonce("n".repeat(26), true),
        )
        .await;
        assert!(msg.contains("nonce"), "{msg}");
        let msg = invalid(
            http.update_message(Id::new(1), Id::new(2))
                .content(Some(&"x".repeat(2001))),
        )
        .await;
        assert!(msg.contains("content"), "{msg}");
        let msg = invalid(http.list_messages(Id::new(1)).limit(101)).await;
        assert!(msg.contains("limit"), "{msg}");
        let msg = invalid(http.bulk_delete_messages(Id::new(1), &[Id::new(2)])).await;
        assert!(msg.contains("messages has 1"), "{msg}");
        let msg = invalid(http.bulk_delete_messages(Id::new(1), &[Id::new(2), Id::new(2)])).await;
        assert!(msg.contains("twice"), "{msg}");
    }
}
