//! The local voice server's DAVE side: the MLS external sender, and a simulated second member.
//!
//! The server proposes (as external sender, op 27) to add the simulated member to the bot's
//! group; the bot commits with a welcome (op 28); the member joins from the welcome and the bot's
//! commit is announced back (op 29); on TRANSITION READY (op 23) the transition executes (op 22)
//! and the member decrypts the bot's E2EE Opus frames. Each new key package of the bot (after a
//! new epoch 1, an invalid commit, a downgrade and back) starts the member afresh, as the voice
//! gateway removes and re-adds members.

use std::num::NonZeroU16;

use davey::{DaveSession, MediaType};
use openmls::prelude::tls_codec::{DeserializeBytes, Serialize, VLBytes};
use openmls::prelude::{
    BasicCredential, Ciphersuite, ExternalProposal, ExternalSender, GroupEpoch, GroupId,
    KeyPackageIn, OpenMlsProvider, ProtocolVersion, SenderExtensionIndex,
};
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;

/// The user id of the simulated member.
pub const SIMULATED_MEMBER: u64 = 777_000_000_000_000_777;
/// Runs `f`; a panic of the MLS libraries on hostile input (tls_codec's debug assertions) is `None`.
fn guard<T>(f: impl FnOnce() -> Option<T>) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(None)
}

pub(super) struct ServerDave {
    provider: OpenMlsRustCrypto,
    signer: SignatureKeyPair,
    external_sender: Vec<u8>,
    member: DaveSession,
    /// Whether the member has made a key package, and so needs to start afresh for the next one.
    member_used: bool,
    bot_user: u64,
    channel_id: u64,
    /// The last transition id given out.
    transition: u16,
    /// A transition the bot is ready for, held back until the test releases it.
    pub(super) held: Option<u16>,
}

impl ServerDave {
    pub(super) fn new(bot_user: u64, channel_id: u64) -> Option<Self> {
        let provider = OpenMlsRustCrypto::default();
        let suite = Ciphersuite::MLS_128_DHKEMP256_AES128GCM_SHA256_P256;
        let signer = SignatureKeyPair::new(suite.signature_algorithm()).ok()?;
        let credential = BasicCredential::new(b"local-voice-server".to_vec());
        let sender = ExternalSender::new(signer.to_public_vec().into(), credential.into());
        let external_sender = sender.tls_serialize_detached().ok()?;
        let member = Self::member(&external_sender, channel_id)?;
        Some(Self {
            provider,
            signer,
            external_sender,
            member,
            member_used: false,
            bot_user,
            channel_id,
            transition: 0,
            held: None,
        })
    }

    fn member(external_sender: &[u8], channel_id: u64) -> Option<DaveSession> {
        let mut member =
            DaveSession::new(NonZeroU16::new(1)?, SIMULATED_MEMBER, channel_id, None).ok()?;
        member.set_external_sender(external_sender).ok()?;
        Some(member)
    }

    fn next_transition(&mut self) -> u16 {
        self.transition = self.transition.checked_add(1).unwrap_or(1);
        self.transition
    }

    /// Prepares a downgrade to protocol version 0 for the member; the transition id for op 21.
    pub(super) fn prepare_downgrade(&mut self) -> Option<u16> {
        let id = self.next_transition();
        self.member.prepare_transition(id, 0).ok()?;
        Some(id)
    }

    /// A payload for op 29 or 30 that no MLS library accepts: a new transition id, then junk.
    pub(super) fn invalid_commit_welcome(&mut self) -> Vec<u8> {
        let mut out = self.next_transition().to_be_bytes().to_vec();
        out.extend_from_slice(b"\x00\x01not an MLS message");
        out
    }

    /// Op 25's payload.
    pub(super) fn external_sender(&self) -> Vec<u8> {
        self.external_sender.clone()
    }

    /// On the bot's key package (op 26): op 27's payload, proposing to add the simulated member.
    pub(super) fn proposals(&mut self) -> Option<Vec<u8>> {
        if self.member_used {
            self.member = Self::member(&self.external_sender, self.channel_id)?;
        }
        self.member_used = true;
        let package = self.member.create_key_package().ok()?;
        let package = KeyPackageIn::tls_deserialize_exact_bytes(&package)
            .ok()?
            .validate(self.provider.crypto(), ProtocolVersion::Mls10)
            .ok()?;
        let proposal = ExternalProposal::new_add::<OpenMlsRustCrypto>(
            package,
            GroupId::from_slice(&self.channel_id.to_be_bytes()),
            GroupEpoch::from(0),
            &self.signer,
            SenderExtensionIndex::new(0),
        )
        .ok()?;
        let messages = proposal.tls_serialize_detached().ok()?;
        let mut out = vec![0]; // append
        out.extend(VLBytes::new(messages).tls_serialize_detached().ok()?);
        Some(out)
    }

    /// On the bot's commit and welcome (op 28): the member joins, and op 29's payload is returned.
    pub(super) fn commit_welcome(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        guard(|| self.join_from(payload))
    }

    fn join_from(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let (_, welcome) = openmls::prelude::MlsMessageIn::tls_deserialize_bytes(payload).ok()?;
        let commit = &payload[..payload.len() - welcome.len()];
        if let Err(error) = self.member.process_welcome(welcome, None) {
            tracing::warn!(?error, "simulated member refused the welcome");
            return None;
        }
        let id = self.next_transition();
        self.member.prepare_transition(id, 1).ok()?;
        let mut out = id.to_be_bytes().to_vec();
        out.extend_from_slice(commit);
        Some(out)
    }

    /// On TRANSITION READY (op 23): executes the transition; `Some(id)` to send op 22 with.
    /// Only transitions the member prepared execute.
    pub(super) fn transition_ready(&mut self, id: u16) -> Option<u16> {
        self.member
            .execute_transition(id)
            .ok()
            .filter(|&executed| executed)
            .map(|_| id)
    }

    /// The simulated member seals a frame it sends (passthrough before the transition).
    pub(super) fn seal(&mut self, frame: &[u8]) -> Vec<u8> {
        match self.member.encrypt_opus(frame) {
            Ok(sealed) => sealed.into_owned(),
            Err(_) => frame.to_vec(),
        }
    }

    /// The simulated member opens a frame of the bot: `(frame, was_e2ee)`.
    pub(super) fn open(&mut self, frame: &[u8]) -> Option<(Vec<u8>, bool)> {
        let framed = frame.len() >= 2 && frame[frame.len() - 2..] == [0xFA, 0xFA];
        if !framed {
            return Some((frame.to_vec(), false));
        }
        let plain = self
            .member
            .decrypt(self.bot_user, MediaType::AUDIO, frame)
            .ok()?;
        Some((plain, true))
    }
}
