//! The wire protocol: the `{op, d, s, t}` envelope, the shard's own payloads, close code rules.

use std::ops::Range;

use serde::Deserialize;
use serde_json::{json, value::RawValue};

use super::{GatewayConfig, ShardId};

/// Gateway opcodes the shard handles.
pub(crate) mod op {
    /// An event.
    pub(crate) const DISPATCH: u8 = 0;
    /// Heartbeat, sent by both sides.
    pub(crate) const HEARTBEAT: u8 = 1;
    /// Starts a session.
    pub(crate) const IDENTIFY: u8 = 2;
    /// Resumes a session.
    pub(crate) const RESUME: u8 = 6;
    /// Reconnect and resume.
    pub(crate) const RECONNECT: u8 = 7;
    /// The session is invalid; `d` says if it is resumable.
    pub(crate) const INVALID_SESSION: u8 = 9;
    /// First message of a connection.
    pub(crate) const HELLO: u8 = 10;
    /// Answer to a heartbeat.
    pub(crate) const HEARTBEAT_ACK: u8 = 11;
}

/// One gateway message, `d` left as raw JSON borrowed from the frame. Keys other than these
/// four are ignored; `d`, `s` and `t` may be missing or null.
#[derive(Debug)]
pub(crate) struct Envelope<'a> {
    /// Opcode.
    pub(crate) op: u8,
    /// Payload.
    pub(crate) d: Option<&'a RawValue>,
    /// Sequence, for dispatches.
    pub(crate) s: Option<u64>,
    /// Event name, for dispatches.
    pub(crate) t: Option<&'a str>,
}

impl<'a> Envelope<'a> {
    /// Parses a whole message; `Err` for malformed JSON.
    #[cfg(test)]
    pub(crate) fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        match Self::parse_filtered(text, &|_| true)? {
            Filtered::Full(envelope) => Ok(envelope),
            Filtered::Skipped(_) => unreachable!("everything is wanted"),
        }
    }

    /// Parses a message like [`parse`](Self::parse), but stops at `d` without walking it when
    /// the keys before it show an unwanted dispatch: `t` and `s` known, `op` 0 or not yet known,
    /// and `wanted(t)` false (READY and RESUMED are always wanted). Then returns
    /// `Ok(Filtered::Skipped(seq))` and nothing after `d` is read. When `d` comes before `t` or
    /// `s`, the whole message is parsed as usual (and the caller filters afterwards).
    pub(crate) fn parse_filtered(
        text: &'a str,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<Filtered<'a>, serde_json::Error> {
        let skipped = std::cell::Cell::new(None);
        let seed = FilterSeed {
            wanted,
            skipped: &skipped,
        };
        let mut de = serde_json::Deserializer::from_str(text);
        match serde::de::DeserializeSeed::deserialize(seed, &mut de) {
            Ok(envelope) => {
                de.end()?;
                Ok(Filtered::Full(envelope))
            }
            Err(error) => match skipped.get() {
                // The sentinel error: stopped at `d` on purpose.
                Some(seq) => Ok(Filtered::Skipped(seq)),
                None => Err(error),
            },
        }
    }
}

/// What [`Envelope::parse_filtered`] found.
#[derive(Debug)]
pub(crate) enum Filtered<'a> {
    /// The whole message, parsed.
    Full(Envelope<'a>),
    /// An unwanted dispatch with this sequence; its `d` was not read.
    Skipped(u64),
}

/// Whether a dispatch named `name` must be parsed: the shard itself reads READY and RESUMED.
pub(crate) fn must_parse(name: &str, wanted: &dyn Fn(&str) -> bool) -> bool {
    matches!(name, "READY" | "RESUMED") || wanted(name)
}

/// The envelope's keys.
enum Key {
    Op,
    D,
    S,
    T,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "op" => Key::Op,
                    "d" => Key::D,
                    "s" => Key::S,
                    "t" => Key::T,
                    _ => Key::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Reads the envelope's keys in order, stopping at an unwanted dispatch's `d`.
struct FilterSeed<'f> {
    wanted: &'f dyn Fn(&str) -> bool,
    /// Set to the sequence when the parse stopped on purpose (the error is then a sentinel).
    skipped: &'f std::cell::Cell<Option<u64>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for FilterSeed<'_> {
    type Value = Envelope<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FilterSeed<'_> {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a gateway message")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        use serde::de::Error;
        let (mut op, mut d, mut s, mut t) = (None, None, None, None);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Op => {
                    if op.is_some() {
                        return Err(A::Error::duplicate_field("op"));
                    }
                    op = Some(map.next_value::<u8>()?);
                }
                Key::S => {
                    if s.is_some() {
                        return Err(A::Error::duplicate_field("s"));
                    }
                    s = Some(map.next_value::<Option<u64>>()?);
                }
                Key::T => {
                    if t.is_some() {
                        return Err(A::Error::duplicate_field("t"));
                    }
                    t = Some(map.next_value::<Option<&'de str>>()?);
                }
                Key::D => {
                    if d.is_some() {
                        return Err(A::Error::duplicate_field("d"));
                    }
                    if let (None | Some(op::DISPATCH), Some(Some(seq)), Some(Some(name))) =
                        (op, s, t)
                        && !must_parse(name, self.wanted)
                    {
                        self.skipped.set(Some(seq));
                        return Err(A::Error::custom("unwanted dispatch, d skipped"));
                    }
                    d = Some(map.next_value::<Option<&'de RawValue>>()?);
                }
                Key::Other => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            op: op.ok_or_else(|| A::Error::missing_field("op"))?,
            d: d.flatten(),
            s: s.flatten(),
            t: t.flatten(),
        })
    }
}

/// Where a dispatch's parts sit in its frame, so the frame can be borrowed again after the
/// shard's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DispatchSpan {
    /// Sequence.
    pub(crate) seq: u64,
    /// Byte range of the event name.
    pub(crate) name: Range<usize>,
    /// Byte range of `d`, `None` when `d` was missing or null.
    pub(crate) data: Option<Range<usize>>,
    /// Whether `data` was validated as one JSON value. A dispatch in Discord's own layout is read
    /// without a JSON parser (see [`fast_dispatch`]) and its `d` is not walked: then `data`
    /// runs to the frame's last `}` and only a parse of it, or [`checked_span`], shows that it
    /// is `d` and is JSON.
    pub(crate) checked: bool,
}

/// A dispatch read by [`fast_dispatch`]: `data` is not validated.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct FastDispatch<'a> {
    /// Sequence.
    pub(crate) seq: u64,
    /// Event name.
    pub(crate) name: &'a str,
    /// Everything between `"d":` and the frame's closing `}`, trimmed.
    pub(crate) data: &'a str,
}

/// Reads a dispatch laid out exactly as Discord sends one, `{"t":"NAME","s":SEQ,"op":0,"d":DATA}`
/// (no whitespace, these keys in this order, `NAME` of `A-Z`, `0-9` and `_`, `SEQ` a JSON
/// integer), without a JSON parser and without walking `DATA`. `None` for anything else, which
/// then takes the parser's path.
///
/// `DATA` is `d` only when `d` is the last key and is JSON: the typed parse of it shows both (it
/// fails on trailing text), and when it fails [`checked_span`] finds the truth with the parser.
/// Walking `d` here and again in the typed parse cost about a tenth of a client's time.
pub(crate) fn fast_dispatch(text: &str) -> Option<FastDispatch<'_>> {
    let rest = text.strip_prefix(r#"{"t":""#)?;
    let name_len = rest
        .bytes()
        .position(|b| !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))?;
    let (name, rest) = rest.split_at(name_len);
    let rest = rest.strip_prefix(r#"","s":"#)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (seq, rest) = rest.split_at(digits);
    if name.is_empty() || seq.is_empty() || (seq.len() > 1 && seq.starts_with('0')) {
        return None;
    }
    let seq = seq.parse().ok()?;
    let data = rest
        .strip_prefix(r#","op":0,"d":"#)?
        .trim_end_matches(is_json_whitespace)
        .strip_suffix('}')?
        .trim_matches(is_json_whitespace);
    Some(FastDispatch { seq, name, data })
}

fn is_json_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// A dispatch span whose `data` is shown to be `d` and JSON: `span` itself when `data` is one
/// JSON value, else the span the parser finds in the whole frame (`d` was not the last key).
/// `Err` with the reason when the frame is not a well-formed dispatch (the caller warns and skips
/// it, as for any malformed message).
pub(crate) fn checked_span(text: &str, span: DispatchSpan) -> Result<DispatchSpan, String> {
    if span.checked {
        return Ok(span);
    }
    let data = span.data.clone().and_then(|range| text.get(range));
    if let Some(data) = data
        && serde_json::from_str::<serde::de::IgnoredAny>(data).is_ok()
    {
        return Ok(DispatchSpan {
            checked: true,
            ..span
        });
    }
    match Parsed::from_text_parsed(text, &|_| true) {
        Parsed::Dispatch { span, .. } => Ok(span),
        Parsed::Malformed(error) => Err(error),
        other => Err(format!("not a dispatch: {other:?}")),
    }
}

/// The `&RawValue` of JSON text that was already validated, without walking it again.
///
/// `json` must be the bytes of a `&RawValue` that [`Envelope::parse_filtered`] produced from the same,
/// unchanged frame (the shard keeps only its byte range across its own bookkeeping, then borrows
/// the frame again to yield it). serde_json has no public unchecked constructor, so this feeds
/// `&RawValue`'s own `Deserialize` impl the one-entry map it recognises (the key is serde_json's
/// private raw-value token, checked against serde_json 1.0.154); it borrows `json` and checks nothing. Should a future
/// serde_json reject that, it falls back to validating `json` (correct, only slower): the unit test
/// `validated_raw_does_not_walk_again` then fails, to say so.
pub(crate) fn validated_raw(json: &str) -> &RawValue {
    use serde::de::value::{BorrowedStrDeserializer, Error, MapDeserializer};
    /// serde_json's private name for a raw value (`serde_json::raw::TOKEN`).
    const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";
    let entry = (
        BorrowedStrDeserializer::<Error>::new(RAW_VALUE_TOKEN),
        BorrowedStrDeserializer::<Error>::new(json),
    );
    let map = MapDeserializer::<_, Error>::new(std::iter::once(entry));
    <&RawValue>::deserialize(map)
        .or_else(|_| serde_json::from_str::<&RawValue>(json))
        .unwrap_or_else(|error| {
            // Unreachable when the contract holds: `json` was validated.
            tracing::warn!(%error, "a dispatch's data was not JSON; delivered as null");
            null()
        })
}

/// JSON `null`.
pub(crate) fn null() -> &'static RawValue {
    serde_json::from_str("null").expect("null is JSON")
}

/// The byte range of `part`, a slice of `frame`, within `frame`.
pub(crate) fn range_in(frame: &str, part: &str) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
    debug_assert!(
        start + part.len() <= frame.len(),
        "part is not within frame"
    );
    start..start + part.len()
}

/// `{"op":1,"d":seq}`.
pub(crate) fn heartbeat(seq: Option<u64>) -> String {
    json!({ "op": op::HEARTBEAT, "d": seq }).to_string()
}

/// IDENTIFY. Holds the token: never log it.
pub(crate) fn identify(config: &GatewayConfig, id: ShardId) -> String {
    let mut d = json!({
        "token": config.token.expose(),
        "intents": config.intents.bits(),
        "properties": config.properties,
        "shard": [id.number, id.total],
        "large_threshold": config.large_threshold.clamp(50, 250),
        "compress": false,
    });
    if let Some(presence) = &config.presence {
        d["presence"] = presence.clone();
    }
    json!({ "op": op::IDENTIFY, "d": d }).to_string()
}

/// RESUME. Holds the token: never log it.
pub(crate) fn resume(config: &GatewayConfig, session_id: &str, seq: Option<u64>) -> String {
    json!({
        "op": op::RESUME,
        "d": { "token": config.token.expose(), "session_id": session_id, "seq": seq.unwrap_or(0) },
    })
    .to_string()
}

/// The parts of HELLO the shard uses.
#[derive(Debug, Deserialize)]
pub(crate) struct Hello {
    /// Milliseconds between heartbeats.
    pub(crate) heartbeat_interval: u64,
}

/// The parts of READY the shard uses.
#[derive(Debug, Deserialize)]
pub(crate) struct Ready {
    /// The session to resume.
    pub(crate) session_id: String,
    /// Where to resume it.
    pub(crate) resume_gateway_url: String,
}

/// What a close code asks of the shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseAction {
    /// Reconnect and RESUME the session.
    Resume,
    /// Reconnect and IDENTIFY a new session (4007 invalid seq, 4009 session timed out).
    Identify,
    /// Stop: 4004, 4010-4014.
    Fatal(super::GatewayErrorKind),
}

impl CloseAction {
    /// The rule for a close code received from the server.
    pub(crate) fn for_code(code: u16) -> Self {
        match code {
            4007 | 4009 => Self::Identify,
            _ => super::GatewayErrorKind::from_close_code(code).map_or(Self::Resume, Self::Fatal),
        }
    }
}

/// A message, reduced to what the shard acts on; owns nothing of the frame but byte ranges.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// Op 0. `ready` holds READY's session; `resumed` is set for RESUMED.
    Dispatch {
        /// Where the parts are.
        span: DispatchSpan,
        /// READY's `session_id` and `resume_gateway_url`.
        ready: Option<(String, String)>,
        /// The event is RESUMED.
        resumed: bool,
    },
    /// Op 0 that nobody wants: only its sequence counts.
    Skipped {
        /// Sequence.
        seq: u64,
    },
    /// Op 1 from the server: heartbeat now.
    HeartbeatRequest,
    /// Op 7.
    Reconnect,
    /// Op 9 with its `d`.
    InvalidSession {
        /// Whether the session may be resumed.
        resumable: bool,
    },
    /// Op 10 with `heartbeat_interval`.
    Hello {
        /// Milliseconds between heartbeats.
        interval_ms: u64,
    },
    /// Op 11.
    HeartbeatAck,
    /// An opcode the shard does not act on.
    Other {
        /// The opcode.
        op: u8,
    },
    /// Not a gateway message: the reason, for the log. Never the text (it may be large).
    Malformed(String),
}

impl Parsed {
    /// Classifies one decompressed message.
    #[cfg(test)]
    pub(crate) fn from_text(text: &str) -> Self {
        Self::from_text_filtered(text, &|_| true)
    }

    /// Classifies one decompressed message; a dispatch that `wanted` refuses (READY and RESUMED
    /// never are) is [`Skipped`](Self::Skipped), its `d` not walked when `t` and `s` come before it.
    ///
    /// A dispatch in Discord's layout ([`fast_dispatch`]) other than READY and RESUMED comes back
    /// with an unchecked span; see [`checked_span`].
    pub(crate) fn from_text_filtered(text: &str, wanted: &dyn Fn(&str) -> bool) -> Self {
        if let Some(fast) = fast_dispatch(text) {
            if !must_parse(fast.name, wanted) {
                return Self::Skipped { seq: fast.seq };
            }
            if !matches!(fast.name, "READY" | "RESUMED") {
                return Self::Dispatch {
                    span: DispatchSpan {
                        seq: fast.seq,
                        name: range_in(text, fast.name),
                        data: Some(range_in(text, fast.data)),
                        checked: false,
                    },
                    ready: None,
                    resumed: false,
                };
            }
        }
        Self::from_text_parsed(text, wanted)
    }

    /// [`from_text_filtered`](Self::from_text_filtered) with the parser only: spans are checked.
    fn from_text_parsed(text: &str, wanted: &dyn Fn(&str) -> bool) -> Self {
        let envelope = match Envelope::parse_filtered(text, wanted) {
            Ok(Filtered::Full(envelope)) => envelope,
            Ok(Filtered::Skipped(seq)) => return Self::Skipped { seq },
            Err(error) => return Self::Malformed(error.to_string()),
        };
        match envelope.op {
            op::DISPATCH => {
                let (Some(seq), Some(name)) = (envelope.s, envelope.t) else {
                    return Self::Malformed("dispatch without s or t".into());
                };
                if !must_parse(name, wanted) {
                    // `d` came before `t` or `s`: walked all the same, but not yielded.
                    return Self::Skipped { seq };
                }
                let ready = match (name, envelope.d) {
                    ("READY", Some(d)) => match serde_json::from_str::<Ready>(d.get()) {
                        Ok(ready) => Some((ready.session_id, ready.resume_gateway_url)),
                        // Delivered all the same (as `Event::Unknown` when it does not type):
                        // without a session the shard identifies afresh on the next connection.
                        Err(error) => {
                            tracing::warn!(%error, "READY without a usable session; it cannot be resumed");
                            None
                        }
                    },
                    _ => None,
                };
                Self::Dispatch {
                    span: DispatchSpan {
                        seq,
                        name: range_in(text, name),
                        data: envelope.d.map(|d| range_in(text, d.get())),
                        checked: true,
                    },
                    ready,
                    resumed: name == "RESUMED",
                }
            }
            op::HEARTBEAT => Self::HeartbeatRequest,
            op::RECONNECT => Self::Reconnect,
            op::INVALID_SESSION => Self::InvalidSession {
                resumable: envelope.d.is_some_and(|d| d.get() == "true"),
            },
            op::HELLO => match envelope.d.map(|d| serde_json::from_str::<Hello>(d.get())) {
                Some(Ok(hello)) => Self::Hello {
                    interval_ms: hello.heartbeat_interval,
                },
                Some(Err(error)) => Self::Malformed(format!("HELLO: {error}")),
                None => Self::Malformed("HELLO without d".into()),
            },
            op::HEARTBEAT_ACK => Self::HeartbeatAck,
            op => Self::Other { op },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        CloseAction, DispatchSpan, Envelope, FastDispatch, Parsed, checked_span, fast_dispatch,
        identify, range_in, resume, validated_raw,
    };
    use crate::gateway::{GatewayConfig, GatewayErrorKind, ShardId};
    use serde_json::{Value, json};
    use twilight_model::gateway::Intents;

    #[test]
    fn envelope_borrows_d() {
        let text = r#"{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"hi \"there\""}}"#;
        let envelope = Envelope::parse(text).unwrap();
        assert_eq!(envelope.op, 0);
        assert_eq!(envelope.s, Some(42));
        assert_eq!(envelope.t, Some("MESSAGE_CREATE"));
        let d = envelope.d.unwrap();
        assert_eq!(d.get(), r#"{"content":"hi \"there\""}"#);
        assert_eq!(&text[range_in(text, d.get())], d.get());
        assert_eq!(&text[range_in(text, envelope.t.unwrap())], "MESSAGE_CREATE");
    }

    #[test]
    fn validated_raw_does_not_walk_again() {
        let text = r#"{"op":0,"s":1,"t":"X","d":{"a":[1,{"b":"\u00e9"}],"c":null}}"#;
        let d = Envelope::parse(text).unwrap().d.unwrap();
        let again = validated_raw(&text[range_in(text, d.get())]);
        assert_eq!(again.get(), d.get());
        assert_eq!(
            again.get().as_ptr(),
            d.get().as_ptr(),
            "borrowed, not copied"
        );
        // No second walk: text that is not JSON comes back as it is (the contract says it never
        // is). If this fails, serde_json no longer takes the shortcut and `d` is validated twice.
        assert_eq!(validated_raw("{not json").get(), "{not json");
    }

    #[test]
    fn envelope_without_d_or_with_nulls() {
        let envelope = Envelope::parse(r#"{"op":11}"#).unwrap();
        assert!(envelope.d.is_none() && envelope.s.is_none() && envelope.t.is_none());
        let envelope = Envelope::parse(r#"{"op":1,"d":null,"s":null,"t":null}"#).unwrap();
        assert!(envelope.d.is_none());
    }

    #[test]
    fn malformed_envelopes_are_errors() {
        for text in [
            "",
            "{",
            "[]",
            r#"{"op":"x"}"#,
            r#"{"op":0,"d":{]}"#,
            r#"{"op":300}"#,
            "\u{0}",
        ] {
            assert!(Envelope::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn unwanted_dispatches_stop_before_d() {
        use super::Filtered;
        let wanted = |name: &str| name == "MESSAGE_CREATE";
        // Discord's order: stops at `d`, which is never read (a malformed one goes unnoticed).
        for text in [
            r#"{"t":"TYPING_START","s":5,"op":0,"d":{"a":1}}"#,
            r#"{"t":"TYPING_START","s":5,"op":0,"d":{]"#,
            r#"{"t":"TYPING_START","s":5,"d":[1,2]}"#,
        ] {
            assert!(
                matches!(
                    Envelope::parse_filtered(text, &wanted),
                    Ok(Filtered::Skipped(5))
                ),
                "{text}"
            );
            assert_eq!(
                Parsed::from_text_filtered(text, &wanted),
                Parsed::Skipped { seq: 5 }
            );
        }
        // Wanted ones, READY and RESUMED, and other opcodes are parsed in full.
        for text in [
            r#"{"t":"MESSAGE_CREATE","s":5,"op":0,"d":{"a":1}}"#,
            r#"{"t":"READY","s":5,"op":0,"d":{"session_id":"a","resume_gateway_url":"b"}}"#,
            r#"{"t":"RESUMED","s":5,"op":0,"d":null}"#,
            r#"{"t":"TYPING_START","s":5,"op":1,"d":{"a":1}}"#,
        ] {
            let Ok(Filtered::Full(envelope)) = Envelope::parse_filtered(text, &wanted) else {
                panic!("{text}");
            };
            assert!(envelope.d.is_some() || text.contains("RESUMED"), "{text}");
        }
        // `d` before `t` or `s`: the full parse, then skipped all the same.
        for text in [
            r#"{"d":{"a":1},"op":0,"s":5,"t":"TYPING_START"}"#,
            r#"{"t":"TYPING_START","d":{"a":1},"op":0,"s":5}"#,
        ] {
            assert!(matches!(
                Envelope::parse_filtered(text, &wanted),
                Ok(Filtered::Full(_))
            ));
            assert_eq!(
                Parsed::from_text_filtered(text, &wanted),
                Parsed::Skipped { seq: 5 }
            );
        }
        // Malformed JSON is an error as before, wherever the filter cannot stop first.
        for text in [
            r#"{"d":{]},"op":0,"s":5,"t":"TYPING_START"}"#,
            r#"{"t":"MESSAGE_CREATE","s":5,"op":0,"d":{]}"#,
            r#"{"t":"TYPING_START","s":"x","op":0,"d":{}}"#,
            r#"{"t":"TYPING_START","s":5,"op":0,"d":{}} trailing"#,
        ] {
            let result = Envelope::parse_filtered(text, &|_| true);
            assert!(result.is_err(), "{text}");
            // In Discord's layout `d` is not walked: the check of the span says it is malformed.
            let malformed = match Parsed::from_text_filtered(text, &|_| true) {
                Parsed::Malformed(_) => true,
                Parsed::Dispatch { span, .. } => !span.checked && checked_span(text, span).is_err(),
                _ => false,
            };
            assert!(malformed, "{text}");
        }
        // A missing `s` or a null `t` never skips.
        assert!(matches!(
            Parsed::from_text_filtered(r#"{"t":"TYPING_START","op":0,"d":{}}"#, &wanted),
            Parsed::Malformed(_)
        ));
    }

    #[test]
    fn identify_and_resume_payloads() {
        let mut config = GatewayConfig::new("secret".into(), Intents::GUILDS);
        config.presence = Some(json!({"status": "idle"}));
        let payload: Value = serde_json::from_str(&identify(&config, ShardId::new(1, 3))).unwrap();
        assert_eq!(payload["op"], 2);
        let d = &payload["d"];
        assert_eq!(d["token"], "secret");
        assert_eq!(d["intents"], 1);
        assert_eq!(d["shard"], json!([1, 3]));
        assert_eq!(d["large_threshold"], 50);
        assert_eq!(d["compress"], false);
        assert_eq!(d["presence"]["status"], "idle");
        assert_eq!(d["properties"]["browser"], "nostrum-rs");
        let payload: Value = serde_json::from_str(&resume(&config, "abc", Some(7))).unwrap();
        assert_eq!(
            payload,
            json!({"op": 6, "d": {"token": "secret", "session_id": "abc", "seq": 7}})
        );
    }

    #[test]
    fn close_code_rules() {
        assert_eq!(CloseAction::for_code(4000), CloseAction::Resume);
        assert_eq!(CloseAction::for_code(1001), CloseAction::Resume);
        assert_eq!(CloseAction::for_code(4008), CloseAction::Resume);
        assert_eq!(CloseAction::for_code(4007), CloseAction::Identify);
        assert_eq!(CloseAction::for_code(4009), CloseAction::Identify);
        assert_eq!(
            CloseAction::for_code(4014),
            CloseAction::Fatal(GatewayErrorKind::DisallowedIntents)
        );
        assert_eq!(
            CloseAction::for_code(4004),
            CloseAction::Fatal(GatewayErrorKind::AuthenticationFailed)
        );
    }

    #[test]
    fn classifies_messages() {
        let text = r#"{"op":0,"s":1,"t":"READY","d":{"v":10,"session_id":"abc","resume_gateway_url":"wss://r"}}"#;
        let Parsed::Dispatch {
            span,
            ready,
            resumed,
        } = Parsed::from_text(text)
        else {
            panic!("not a dispatch");
        };
        assert_eq!(ready, Some(("abc".into(), "wss://r".into())));
        assert!(!resumed);
        assert_eq!(&text[span.name.clone()], "READY");
        assert!(text[span.data.unwrap()].starts_with(r#"{"v":10"#));

        let text = r#"{"op":0,"s":9,"t":"RESUMED","d":null}"#;
        let parsed = Parsed::from_text(text);
        let name = text.find("RESUMED").unwrap();
        assert_eq!(
            parsed,
            Parsed::Dispatch {
                span: DispatchSpan {
                    seq: 9,
                    name: name..name + 7,
                    data: None,
                    checked: true,
                },
                ready: None,
                resumed: true,
            }
        );
        assert_eq!(
            Parsed::from_text(r#"{"op":1,"d":null}"#),
            Parsed::HeartbeatRequest
        );
        assert_eq!(Parsed::from_text(r#"{"op":7,"d":null}"#), Parsed::Reconnect);
        assert_eq!(
            Parsed::from_text(r#"{"op":9,"d":true}"#),
            Parsed::InvalidSession { resumable: true }
        );
        assert_eq!(
            Parsed::from_text(r#"{"op":9,"d":false}"#),
            Parsed::InvalidSession { resumable: false }
        );
        assert_eq!(
            Parsed::from_text(r#"{"op":10,"d":{"heartbeat_interval":41250,"_trace":["x"]}}"#),
            Parsed::Hello { interval_ms: 41250 }
        );
        assert_eq!(Parsed::from_text(r#"{"op":11}"#), Parsed::HeartbeatAck);
        assert_eq!(
            Parsed::from_text(r#"{"op":42,"d":{}}"#),
            Parsed::Other { op: 42 }
        );
        // A READY without a session is still delivered (it cannot be resumed).
        assert!(matches!(
            Parsed::from_text(r#"{"op":0,"s":1,"t":"READY","d":{}}"#),
            Parsed::Dispatch { ready: None, .. }
        ));
        for bad in [
            "nope",
            r#"{"op":0,"d":{}}"#,
            r#"{"op":10,"d":{}}"#,
            r#"{"op":10}"#,
            r#"{"op":0,"s":1,"t":"MESSAGE_CREATE","d":{"a":1"#,
        ] {
            assert!(
                matches!(Parsed::from_text(bad), Parsed::Malformed(_)),
                "{bad}"
            );
        }
    }

    #[test]
    fn discords_layout_is_read_without_walking_d() {
        let text = r#"{"t":"MESSAGE_CREATE","s":42,"op":0,"d":{"content":"hi"}}"#;
        assert_eq!(
            fast_dispatch(text),
            Some(FastDispatch {
                seq: 42,
                name: "MESSAGE_CREATE",
                data: r#"{"content":"hi"}"#
            })
        );
        // `d` is not walked: text that is not JSON is taken as it is (and checked later).
        let broken = r#"{"t":"MESSAGE_CREATE","s":7,"op":0,"d":{"content":}"#;
        assert_eq!(fast_dispatch(broken).unwrap().data, r#"{"content":"#);
        let Parsed::Dispatch { span, .. } = Parsed::from_text(broken) else {
            panic!("a dispatch in Discord's layout");
        };
        assert!(!span.checked);
        assert_eq!(span, unchecked(broken));
        assert!(checked_span(broken, span).is_err(), "malformed");
        // Whitespace after `d` and after the envelope.
        let spaced = "{\"t\":\"X_1\",\"s\":0,\"op\":0,\"d\":[1, 2] \n} \r\n";
        assert_eq!(fast_dispatch(spaced).unwrap().data, "[1, 2]");
        assert_eq!(fast_dispatch(spaced).unwrap().seq, 0);
        // Anything else takes the parser's path.
        for other in [
            r#"{"op":0,"s":1,"t":"X","d":{}}"#,
            r#"{"t":"X", "s":1,"op":0,"d":{}}"#,
            r#"{"t":"X","s":01,"op":0,"d":{}}"#,
            r#"{"t":"X","s":-1,"op":0,"d":{}}"#,
            r#"{"t":"X","s":99999999999999999999,"op":0,"d":{}}"#,
            r#"{"t":"x","s":1,"op":0,"d":{}}"#,
            r#"{"t":"\u0058","s":1,"op":0,"d":{}}"#,
            r#"{"t":"","s":1,"op":0,"d":{}}"#,
            r#"{"t":"X","s":null,"op":0,"d":{}}"#,
            r#"{"t":"X","s":1,"op":10,"d":{}}"#,
            r#"{"t":"X","s":1,"op":0,"d":{}]"#,
        ] {
            assert_eq!(fast_dispatch(other), None, "{other}");
        }
        // READY and RESUMED are parsed: the shard reads READY's session.
        let ready =
            r#"{"t":"READY","s":1,"op":0,"d":{"session_id":"abc","resume_gateway_url":"wss://r"}}"#;
        assert!(matches!(
            Parsed::from_text(ready),
            Parsed::Dispatch {
                ready: Some(_),
                span: DispatchSpan { checked: true, .. },
                ..
            }
        ));
        // An unwanted dispatch is skipped on its sequence alone.
        assert_eq!(
            Parsed::from_text_filtered(broken, &|name| name != "MESSAGE_CREATE"),
            Parsed::Skipped { seq: 7 }
        );
    }

    fn unchecked(text: &str) -> DispatchSpan {
        let fast = fast_dispatch(text).unwrap();
        DispatchSpan {
            seq: fast.seq,
            name: range_in(text, fast.name),
            data: Some(range_in(text, fast.data)),
            checked: false,
        }
    }

    #[test]
    fn checked_span_finds_d_when_it_is_not_the_last_key() {
        // `d` the last key: the span stands.
        let text = r#"{"t":"X","s":3,"op":0,"d":{"a":[1,"}"]}}"#;
        let span = checked_span(text, unchecked(text)).unwrap();
        assert!(span.checked);
        assert_eq!(&text[span.data.unwrap()], r#"{"a":[1,"}"]}"#);
        // A key after `d`: the fast read took too much; the parser finds `d`.
        let text = r#"{"t":"X","s":3,"op":0,"d":{"a":1},"x":{"b":2}}"#;
        assert_eq!(fast_dispatch(text).unwrap().data, r#"{"a":1},"x":{"b":2}"#);
        let span = checked_span(text, unchecked(text)).unwrap();
        assert_eq!(span.seq, 3);
        assert_eq!(&text[span.name.clone()], "X");
        assert_eq!(&text[span.data.unwrap()], r#"{"a":1}"#);
        // `d` null.
        let text = r#"{"t":"X","s":3,"op":0,"d":null}"#;
        let span = checked_span(text, unchecked(text)).unwrap();
        assert_eq!(span.data.map(|range| &text[range]), Some("null"));
        // A key after `d` that repeats `t`: malformed, as the parser says.
        let text = r#"{"t":"X","s":3,"op":0,"d":{},"t":"Y"}"#;
        assert!(checked_span(text, unchecked(text)).is_err());
        // Not JSON at all after `"d":`.
        for text in [
            r#"{"t":"X","s":3,"op":0,"d":}"#,
            r#"{"t":"X","s":3,"op":0,"d":{"a":1}"b"}"#,
            r#"{"t":"X","s":3,"op":0,"d":{"a":"\x"}}"#,
            r#"{"t":"X","s":3,"op":0,"d":{}"#,
        ] {
            assert!(checked_span(text, unchecked(text)).is_err(), "{text}");
        }
    }

    /// A small deterministic fuzz of the unparsed read: frames in Discord's layout with bytes
    /// inserted, removed or changed at random. Whenever the fast read takes a frame, checking its
    /// span gives what the parser finds in the whole frame (the same span), or fails where the
    /// parser calls the frame malformed.
    #[test]
    fn the_unparsed_read_agrees_with_the_parser() {
        let seeds = [
            r#"{"t":"MESSAGE_CREATE","s":12,"op":0,"d":{"id":"1","content":"a } b","embeds":[{}]}}"#,
            r#"{"t":"X","s":0,"op":0,"d":[1,2.5e3,null,true,"\"}"]}"#,
            r#"{"t":"TYPING_START","s":7,"op":0,"d":{"a":{"b":{"c":[]}}},"x":1}"#,
            r#"{"t":"Y_2","s":3,"op":0,"d":"text"}"#,
        ];
        let alphabet = br#"{}[]",:0123456789 aAtsdop\/-.etrunl"#;
        let mut rng = fastrand::Rng::with_seed(7);
        let mut compared = 0;
        for _ in 0..20_000 {
            let mut bytes = seeds[rng.usize(..seeds.len())].as_bytes().to_vec();
            for _ in 0..rng.usize(1..4) {
                let at = rng.usize(..=bytes.len());
                match rng.u8(..3) {
                    0 => bytes.insert(at, alphabet[rng.usize(..alphabet.len())]),
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ if at < bytes.len() => bytes[at] = alphabet[rng.usize(..alphabet.len())],
                    _ => {}
                }
            }
            let Ok(text) = std::str::from_utf8(&bytes) else {
                continue;
            };
            let Some(fast) = fast_dispatch(text) else {
                continue;
            };
            compared += 1;
            let checked = checked_span(text, unchecked(text));
            match Parsed::from_text_parsed(text, &|_| true) {
                Parsed::Dispatch { span, .. } => {
                    assert_eq!(checked.as_ref(), Ok(&span), "{text}");
                    assert_eq!(span.seq, fast.seq, "{text}");
                }
                Parsed::Malformed(_) => assert!(checked.is_err(), "{text}"),
                other => panic!("{text}: a frame in the dispatch layout parsed as {other:?}"),
            }
        }
        assert!(
            compared > 5_000,
            "only {compared} mutated frames took the fast read"
        );
    }
}
