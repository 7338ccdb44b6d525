//! Joining voice channels through the main gateway, Songbird-style: op 4, then the two answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nostrum_core::dispatch::{ConsumerGroup, EventKeys};
use nostrum_core::event::{VoiceServerUpdate, VoiceState};
use nostrum_core::model::id::Id;
use nostrum_core::{Context, Event, EventKind, EventSet};
use tokio::sync::{broadcast, oneshot};

use crate::connection::{ConnectionInfo, ConnectionStatus, VoiceConnection};
use crate::error::{VoiceError, VoiceErrorKind};

/// How long to wait for VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE after op 4.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Pending {
    /// The main gateway session id: only the bot's own voice state carries it.
    expect_session: Option<String>,
    state: Option<(String, u64)>,
    server: Option<(String, String)>,
    done: Option<oneshot::Sender<(String, u64, String, String)>>,
}

#[derive(Default)]
struct Inner {
    /// Where connection events go as `VOICE_*` events, when subscribed.
    group: Option<ConsumerGroup>,
    pending: Mutex<HashMap<u64, Pending>>,
    connections: Mutex<HashMap<u64, Arc<VoiceConnection>>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Voice")
            .field("dispatching", &self.group.is_some())
            .finish_non_exhaustive()
    }
}

/// The voice manager: joins and leaves channels, one [`VoiceConnection`] per guild.
///
/// It learns the answers to op 4 (VOICE_STATE_UPDATE, VOICE_SERVER_UPDATE) from events: build it
/// with [`Voice::subscribed`] to take them from the client's [`ConsumerGroup`], or with
/// [`Voice::new`] and hand it every event with [`Voice::handle_event`] (for example from
/// `on_voice_state_update` and `on_voice_server_update`).
///
/// ```no_run
/// # async fn demo(client: &nostrum_core::Client, ctx: nostrum_core::Context) -> Result<(), nostrum_voice::VoiceError> {
/// use nostrum_voice::{Track, Voice};
/// let voice = Voice::subscribed(client.consumers());
/// let connection = voice.join(&ctx, 41771983423143937, 127121515262115840).await?;
/// connection.play(Track::ogg_opus_file("song.opus").await?).ended().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Voice {
    inner: Arc<Inner>,
}

impl Voice {
    /// A manager fed by [`handle_event`](Self::handle_event).
    pub fn new() -> Self {
        Self::default()
    }

    /// A manager fed by a subscription to `group` (a task forwards the two voice events; it ends
    /// when the group is gone). The connections it makes hand their events to `group` as
    /// `VOICE_READY`, `VOICE_SPEAKING_UPDATE` and `VOICE_INCOMING_PACKET`, so handlers such as
    /// `on_voice_incoming_packet` run.
    pub fn subscribed(group: &ConsumerGroup) -> Self {
        let voice = Self {
            inner: Arc::new(Inner {
                group: Some(group.clone()),
                ..Inner::default()
            }),
        };
        let events =
            EventSet::from_kinds(&[EventKind::VoiceStateUpdate, EventKind::VoiceServerUpdate]);
        let mut subscription = group.subscribe(events);
        let weak = Arc::downgrade(&voice.inner);
        tokio::spawn(async move {
            while let Some(event) = subscription.recv().await {
                let Some(inner) = weak.upgrade() else { return };
                Self { inner }.handle_event(&event);
            }
        });
        voice
    }

    /// Takes what a join waits for from `event`; other events are ignored.
    pub fn handle_event(&self, event: &Event) {
        match event {
            Event::VoiceStateUpdate(update) => self.on_voice_state(&update.new),
            Event::VoiceServerUpdate(update) => self.on_voice_server(update),
            _ => {}
        }
    }

    fn with_pending(&self, guild_id: u64, f: impl FnOnce(&mut Pending)) {
        let mut pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = pending.get_mut(&guild_id) else {
            return;
        };
        f(entry);
        if let (Some((session_id, user_id)), Some((endpoint, token))) =
            (&entry.state, &entry.server)
            && let Some(done) = entry.done.take()
        {
            let answer = (
                session_id.clone(),
                *user_id,
                endpoint.clone(),
                token.clone(),
            );
            let _ = done.send(answer);
        }
    }

    fn on_voice_state(&self, state: &VoiceState) {
        let Some(guild_id) = state.guild_id else {
            return;
        };
        if state.channel_id.is_none() {
            return;
        }
        let user = state.user_id.get();
        let session = state.session_id.clone();
        self.with_pending(guild_id.get(), |p| {
            if p.expect_session.as_ref().is_none_or(|s| *s == session) {
                p.state = Some((session, user));
            }
        });
    }

    fn on_voice_server(&self, update: &VoiceServerUpdate) {
        let Some(endpoint) = update.endpoint.clone() else {
            return; // The server is being allocated; another update follows.
        };
        let token = update.token.clone();
        self.with_pending(update.guild_id.get(), |p| {
            p.server = Some((endpoint, token))
        });
    }

    /// Joins `channel_id` of `guild_id`: sends op 4 on the context's shard, waits for
    /// VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE, then connects. When the guild already has a
    /// connection, that connection moves ([`VoiceConnection::move_to`]) and is returned: one
    /// connection per guild, and the playing track goes on in the new channel.
    ///
    /// # Errors
    /// [`VoiceErrorKind::Join`] without a shard or without answers within 10 s; then as
    /// [`VoiceConnection::connect`] (or [`VoiceConnection::move_to`]).
    pub async fn join(
        &self,
        ctx: &Context,
        guild_id: u64,
        channel_id: u64,
    ) -> Result<Arc<VoiceConnection>, VoiceError> {
        let join_error = |reason: &str| {
            VoiceError::new(VoiceErrorKind::Join {
                reason: reason.into(),
            })
        };
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                guild_id,
                Pending {
                    expect_session: ctx.shard().session_id(),
                    done: Some(tx),
                    ..Pending::default()
                },
            );
        let sender = ctx.shard().sender().map_err(|error| {
            VoiceError::with_source(
                VoiceErrorKind::Join {
                    reason: "no shard".into(),
                },
                error,
            )
        })?;
        sender
            .update_voice_state(guild_id, Some(channel_id), false, false)
            .map_err(|error| {
                VoiceError::with_source(
                    VoiceErrorKind::Join {
                        reason: "op 4 not sent".into(),
                    },
                    error,
                )
            })?;
        let answer = tokio::time::timeout(JOIN_TIMEOUT, rx).await;
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&guild_id);
        let (session_id, user_id, endpoint, token) = match answer {
            Ok(Ok(answer)) => answer,
            _ => {
                return Err(join_error(
                    "no VOICE_STATE_UPDATE and VOICE_SERVER_UPDATE within 10 s",
                ));
            }
        };
        let info = ConnectionInfo {
            endpoint,
            session_id,
            token,
            guild_id,
            user_id,
            channel_id,
        };
        if let Some(existing) = self.get(guild_id) {
            // A connection that stopped for good is replaced rather than moved.
            if !matches!(existing.status(), ConnectionStatus::Closed(_)) {
                existing.move_to(info).await?;
                return Ok(existing);
            }
        }
        let connection = Arc::new(VoiceConnection::connect(info).await?);
        if let Some(group) = self.inner.group.clone() {
            let mut events = connection.events();
            let ctx = ctx.clone();
            let weak = Arc::downgrade(&connection);
            tokio::spawn(async move {
                loop {
                    let event = match events.recv().await {
                        Ok(event) => event,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return,
                    };
                    let Some(connection) = weak.upgrade() else {
                        return;
                    };
                    // The channel now: it changes when the connection moves.
                    let keys = EventKeys {
                        guild_id: Id::new_checked(guild_id),
                        channel_id: Some(connection.channel_id()),
                    };
                    drop(connection);
                    if let Some(event) = event.into_event() {
                        group.dispatch(&ctx, event, keys).await;
                    }
                }
            });
        }
        self.inner
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(guild_id, connection.clone());
        Ok(connection)
    }

    /// The connection of `guild_id`, if joined.
    pub fn get(&self, guild_id: u64) -> Option<Arc<VoiceConnection>> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&guild_id)
            .cloned()
    }

    /// Leaves the voice channel of `guild_id`: op 4 with no channel, and the connection is dropped
    /// (it closes when the last `Arc` to it goes).
    ///
    /// # Errors
    /// [`VoiceErrorKind::Join`] when op 4 cannot be sent.
    pub fn leave(&self, ctx: &Context, guild_id: u64) -> Result<(), VoiceError> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&guild_id);
        let sender = ctx.shard().sender().map_err(|error| {
            VoiceError::with_source(
                VoiceErrorKind::Join {
                    reason: "no shard".into(),
                },
                error,
            )
        })?;
        sender
            .update_voice_state(guild_id, None, false, false)
            .map_err(|error| {
                VoiceError::with_source(
                    VoiceErrorKind::Join {
                        reason: "op 4 not sent".into(),
                    },
                    error,
                )
            })
    }
}
