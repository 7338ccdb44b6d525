//! What a shard yields (`ShardEvent`) and the owned forms it uses inside.

use serde_json::value::RawValue;
use tokio_websockets::Message;

use super::protocol::DispatchSpan;

/// What [`Shard::next_event`](super::Shard::next_event) yields.
///
/// After a successful resume the shard yields the `Dispatch` of `RESUMED` first and then
/// [`Resumed`](Self::Resumed). `READY` is only yielded as a `Dispatch`.
#[derive(Debug)]
#[non_exhaustive]
pub enum ShardEvent<'a> {
    /// An op 0 dispatch (READY and RESUMED included; not those refused by
    /// [`Shard::set_wanted`](super::Shard::set_wanted)). `data` borrows the shard's frame buffer:
    /// parse or copy it before calling `next_event` again. `data` is `null` when Discord sent
    /// none.
    Dispatch {
        /// The dispatch's sequence number.
        seq: u64,
        /// The event name (`t`), e.g. `MESSAGE_CREATE`.
        name: &'a str,
        /// The raw JSON of `d`.
        data: &'a RawValue,
    },
    /// The socket is open and HELLO was received; IDENTIFY or RESUME follows.
    Connected,
    /// The connection ended; the shard reconnects on the next call.
    Disconnected {
        /// The close code sent by Discord, `None` for network errors, timeouts and
        /// reconnects the shard started itself (op 7, op 9, a missed heartbeat ACK).
        code: Option<u16>,
        /// Whether the next connection resumes the session (otherwise it identifies).
        will_resume: bool,
    },
    /// The session was resumed (after the `RESUMED` dispatch): missed events were replayed.
    Resumed,
}

/// An event that borrows nothing from the shard.
#[derive(Debug)]
pub(crate) enum Owned {
    /// See [`ShardEvent::Connected`].
    Connected,
    /// See [`ShardEvent::Disconnected`].
    Disconnected {
        code: Option<u16>,
        will_resume: bool,
    },
    /// See [`ShardEvent::Resumed`].
    Resumed,
}

impl From<Owned> for ShardEvent<'_> {
    fn from(owned: Owned) -> Self {
        match owned {
            Owned::Connected => Self::Connected,
            Owned::Resumed => Self::Resumed,
            Owned::Disconnected { code, will_resume } => Self::Disconnected { code, will_resume },
        }
    }
}

/// What [`Shard::next_lazy`](super::Shard::next_lazy) yields.
#[derive(Debug)]
pub(crate) enum Next<'a> {
    /// What [`Shard::next_event`](super::Shard::next_event) would yield.
    Event(ShardEvent<'a>),
    /// A dispatch whose `d` was not walked: `span.data` may hold more than `d`, or text that is
    /// not JSON (see [`checked_span`](super::protocol::checked_span)).
    Unchecked {
        /// The whole message.
        frame: &'a str,
        /// Where its parts are.
        span: DispatchSpan,
    },
}

/// The outcome of one step of the shard.
#[derive(Debug)]
pub(crate) enum Step {
    /// An event to yield.
    Event(Owned),
    /// A dispatch to yield, from the current frame.
    Dispatch(DispatchSpan),
}

/// The current message.
#[derive(Debug, Default)]
pub(crate) enum Frame {
    /// None yet.
    #[default]
    Empty,
    /// A text message, as received: tokio-websockets validated its UTF-8 while reading it, so
    /// reading it as `str` is free and copies nothing.
    Text(Message),
    /// A decompressed message.
    Owned(String),
}

impl Frame {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Empty => "",
            // Only text messages are stored here, so `as_text` is `Some`.
            Self::Text(message) => message.as_text().unwrap_or(""),
            Self::Owned(text) => text,
        }
    }
}
