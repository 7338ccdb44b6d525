//! DAVE end-to-end encryption (feature `dave`): the opcodes 21-31 over a `davey` MLS session.
//!
//! Without the feature this is a stub that is never constructed, and IDENTIFY announces
//! `max_dave_protocol_version: 0`.

use serde_json::Value;

/// A message for the voice gateway produced by DAVE.
#[derive(Debug)]
#[cfg_attr(not(feature = "dave"), allow(dead_code))]
pub(crate) enum DaveOut {
    /// A binary message: opcode and payload.
    Binary(u8, Vec<u8>),
    /// A JSON message: opcode and `d`.
    Json(u8, Value),
    /// A transition executed: its id and protocol version (0: frames pass through from now on).
    Transitioned(u16, u16),
}

#[cfg(feature = "dave")]
mod imp {
    use std::collections::HashMap;
    use std::num::NonZeroU16;

    use davey::{DaveSession, MediaType, ProposalsOperationType};
    use serde_json::{Value, json};

    use super::DaveOut;

    /// The highest DAVE protocol version this client speaks.
    pub(crate) const MAX_VERSION: u16 = davey::DAVE_PROTOCOL_VERSION;

    /// A DAVE session of one voice connection.
    pub(crate) struct Dave {
        session: DaveSession,
        version: u16,
        /// Whether a transition to a DAVE version has executed: frames are E2EE from then on.
        active: bool,
        /// The protocol version of each prepared transition, by id.
        pending: HashMap<u16, u16>,
    }

    impl std::fmt::Debug for Dave {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Dave")
                .field("version", &self.version)
                .finish_non_exhaustive()
        }
    }

    /// Runs `f`, turning a panic of the MLS libraries on hostile input (tls_codec has debug
    /// assertions on truncated vectors) into `T::default()`: network input never panics us.
    fn guard<T: Default>(what: &'static str, f: impl FnOnce() -> T) -> T {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
            tracing::warn!(what, "DAVE input made the MLS library panic; dropped");
            T::default()
        })
    }

    fn transition_id(d: &Value) -> Option<u16> {
        d.get("transition_id")
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
    }

    impl Dave {
        /// A session for `version` (SESSION DESCRIPTION's `dave_protocol_version`); `None` for 0.
        pub(crate) fn new(version: u16, user_id: u64, channel_id: u64) -> Option<Self> {
            let version_nz = NonZeroU16::new(version)?;
            match DaveSession::new(version_nz, user_id, channel_id, None) {
                Ok(session) => Some(Self {
                    session,
                    version,
                    active: false,
                    pending: HashMap::new(),
                }),
                Err(error) => {
                    tracing::warn!(?error, "DAVE session could not start");
                    None
                }
            }
        }

        /// Handles a binary message (opcodes 25, 27, 29, 30).
        pub(crate) fn on_binary(&mut self, op: u8, payload: &[u8]) -> Vec<DaveOut> {
            guard("binary message", || self.binary(op, payload))
        }

        fn binary(&mut self, op: u8, payload: &[u8]) -> Vec<DaveOut> {
            match op {
                25 => {
                    if let Err(error) = self.session.set_external_sender(payload) {
                        tracing::warn!(?error, "DAVE external sender refused");
                        return Vec::new();
                    }
                    match self.session.create_key_package() {
                        Ok(package) => vec![DaveOut::Binary(26, package)],
                        Err(error) => {
                            tracing::warn!(?error, "DAVE key package failed");
                            Vec::new()
                        }
                    }
                }
                27 => {
                    let Some((&kind, proposals)) = payload.split_first() else {
                        return Vec::new();
                    };
                    let kind = if kind == 0 {
                        ProposalsOperationType::APPEND
                    } else {
                        ProposalsOperationType::REVOKE
                    };
                    match self.session.process_proposals(kind, proposals, None) {
                        Ok(Some(commit)) => {
                            let mut out = commit.commit;
                            out.extend(commit.welcome.unwrap_or_default());
                            vec![DaveOut::Binary(28, out)]
                        }
                        Ok(None) => Vec::new(),
                        Err(error) => {
                            tracing::warn!(?error, "DAVE proposals refused");
                            Vec::new()
                        }
                    }
                }
                29 | 30 if payload.len() >= 2 => {
                    let id = u16::from_be_bytes([payload[0], payload[1]]);
                    let body = &payload[2..];
                    let processed = if op == 29 {
                        self.session
                            .process_commit(body)
                            .map_err(|e| format!("{e:?}"))
                    } else {
                        self.session
                            .process_welcome(body, None)
                            .map(|()| true)
                            .map_err(|e| format!("{e:?}"))
                    };
                    match processed {
                        Ok(true) => self.prepare(id, self.version),
                        Ok(false) => Vec::new(),
                        Err(error) => {
                            // Say so (the gateway removes and re-adds us), then start over with
                            // a fresh group and key package.
                            tracing::warn!(%error, op, "DAVE commit or welcome refused");
                            let mut out = vec![DaveOut::Json(31, json!({"transition_id": id}))];
                            let version = NonZeroU16::new(self.version)
                                .or(NonZeroU16::new(MAX_VERSION))
                                .unwrap_or(NonZeroU16::MIN);
                            out.extend(self.reinit(version));
                            out
                        }
                    }
                }
                _ => Vec::new(),
            }
        }

        fn prepare(&mut self, id: u16, version: u16) -> Vec<DaveOut> {
            if let Err(error) = self.session.prepare_transition(id, version) {
                tracing::warn!(?error, "DAVE transition not prepared");
                return Vec::new();
            }
            if id == 0 {
                self.active = version > 0;
                vec![DaveOut::Transitioned(0, version)]
            } else {
                self.pending.insert(id, version);
                vec![DaveOut::Json(23, json!({"transition_id": id}))]
            }
        }

        /// Handles a JSON message of DAVE (opcodes 21, 22, 24).
        pub(crate) fn on_json(&mut self, op: u8, d: &Value) -> Vec<DaveOut> {
            guard("JSON message", || self.json(op, d))
        }

        fn json(&mut self, op: u8, d: &Value) -> Vec<DaveOut> {
            match (op, transition_id(d)) {
                (21, Some(id)) => {
                    let version = d
                        .get("protocol_version")
                        .and_then(Value::as_u64)
                        .and_then(|v| u16::try_from(v).ok())
                        .unwrap_or(0);
                    self.prepare(id, version)
                }
                (22, Some(id)) => {
                    let version = self.pending.remove(&id);
                    match self.session.execute_transition(id) {
                        // To version 0 (a downgrade) the key is dropped: frames pass through.
                        Ok(true) => {
                            self.active = self.session.can_encrypt();
                            let version = version.unwrap_or(self.version);
                            return vec![DaveOut::Transitioned(id, version)];
                        }
                        Ok(false) => {}
                        Err(error) => tracing::warn!(?error, "DAVE transition not executed"),
                    }
                    Vec::new()
                }
                (24, _) => {
                    // Epoch 1: a new group is being made; start over with a fresh key package.
                    let epoch = d.get("epoch").and_then(Value::as_u64);
                    let version = d
                        .get("protocol_version")
                        .and_then(Value::as_u64)
                        .and_then(|v| u16::try_from(v).ok())
                        .and_then(NonZeroU16::new);
                    match (epoch, version) {
                        (Some(1), Some(version)) => self.reinit(version),
                        _ => Vec::new(),
                    }
                }
                _ => Vec::new(),
            }
        }

        fn reinit(&mut self, version: NonZeroU16) -> Vec<DaveOut> {
            let (user, channel) = (self.session.user_id(), self.session.channel_id());
            if let Err(error) = self.session.reinit(version, user, channel, None) {
                tracing::warn!(?error, "DAVE session not re-initialized");
                return Vec::new();
            }
            self.version = version.get();
            self.pending.clear();
            match self.session.create_key_package() {
                Ok(package) => vec![DaveOut::Binary(26, package)],
                Err(error) => {
                    tracing::warn!(?error, "DAVE key package failed");
                    Vec::new()
                }
            }
        }

        /// Whether frames are end-to-end encrypted now.
        pub(crate) fn is_active(&self) -> bool {
            self.active
        }

        /// E2EE-encrypts an Opus frame, or passes it through while no key is in place
        /// (a transition is pending).
        pub(crate) fn encrypt(&mut self, frame: &[u8]) -> Vec<u8> {
            match self.session.encrypt_opus(frame) {
                Ok(sealed) => sealed.into_owned(),
                Err(_) => frame.to_vec(),
            }
        }

        /// Decrypts a frame of `user_id`; passes it through when it is not DAVE-framed.
        pub(crate) fn decrypt(&mut self, user_id: Option<u64>, frame: &[u8]) -> Option<Vec<u8>> {
            let framed = frame.len() >= 2 && frame[frame.len() - 2..] == [0xFA, 0xFA];
            if !framed {
                return Some(frame.to_vec());
            }
            let user_id = user_id?;
            guard("frame", || {
                self.session
                    .decrypt(user_id, MediaType::AUDIO, frame)
                    .map_err(|error| tracing::trace!(?error, "DAVE frame not decrypted"))
                    .ok()
            })
        }
    }
}

#[cfg(not(feature = "dave"))]
mod imp {
    use serde_json::Value;

    use super::DaveOut;

    /// Without the `dave` feature no DAVE version is spoken.
    pub(crate) const MAX_VERSION: u16 = 0;

    /// Never constructed without the `dave` feature.
    #[derive(Debug)]
    pub(crate) enum Dave {}

    impl Dave {
        pub(crate) fn new(_version: u16, _user_id: u64, _channel_id: u64) -> Option<Self> {
            None
        }

        pub(crate) fn on_binary(&mut self, _op: u8, _payload: &[u8]) -> Vec<DaveOut> {
            match *self {}
        }

        pub(crate) fn on_json(&mut self, _op: u8, _d: &Value) -> Vec<DaveOut> {
            match *self {}
        }

        pub(crate) fn is_active(&self) -> bool {
            match *self {}
        }

        pub(crate) fn encrypt(&mut self, _frame: &[u8]) -> Vec<u8> {
            match *self {}
        }

        pub(crate) fn decrypt(&mut self, _user_id: Option<u64>, _frame: &[u8]) -> Option<Vec<u8>> {
            match *self {}
        }
    }
}

pub(crate) use imp::{Dave, MAX_VERSION};

#[cfg(all(test, feature = "dave"))]
mod tests {
    use super::*;

    #[test]
    fn garbage_never_panics_and_plain_frames_pass_through() {
        let mut dave = Dave::new(1, 42, 7).unwrap();
        assert!(!dave.is_active());
        assert_eq!(
            dave.encrypt(b"\xFCopus"),
            b"\xFCopus",
            "passthrough before a key"
        );
        assert_eq!(dave.decrypt(Some(9), b"\xFCplain").unwrap(), b"\xFCplain");
        assert!(dave.decrypt(Some(9), b"\xFC\x00\xFA\xFA").is_none());
        let mut rng = fastrand::Rng::with_seed(21);
        for _ in 0..300 {
            let op = [25, 27, 29, 30, 99][rng.usize(..5)];
            let len = rng.usize(0..64);
            let payload: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let _ = dave.on_binary(op, &payload);
            let d = serde_json::json!({"transition_id": rng.u16(..), "protocol_version": rng.u8(..), "epoch": rng.u8(0..3)});
            let _ = dave.on_json([21, 22, 24][rng.usize(..3)], &d);
        }
    }
}
