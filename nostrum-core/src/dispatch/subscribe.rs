//! Subscriptions: any task can await the events it wants (a reply, a reaction) without a consumer.

use std::pin::Pin;
use std::sync::{PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use tokio::sync::mpsc;

use super::group::{ConsumerGroup, Inner};
use crate::{Event, EventSet};

pub(super) struct Subscriber {
    pub(super) events: EventSet,
    pub(super) tx: mpsc::UnboundedSender<Event>,
}

/// The events a task subscribed to, as a stream, from [`ConsumerGroup::subscribe`]. Dropping it
/// unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Event>,
    group: Weak<Inner>,
}

impl Subscription {
    pub(super) fn new(rx: mpsc::UnboundedReceiver<Event>, group: Weak<Inner>) -> Self {
        Self { rx, group }
    }

    /// The next event, or `None` when the group is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The first event that `predicate` accepts, within `timeout`.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        mut predicate: impl FnMut(&Event) -> bool,
    ) -> Option<Event> {
        tokio::time::timeout(timeout, async {
            while let Some(event) = self.rx.recv().await {
                if predicate(&event) {
                    return Some(event);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

impl Stream for Subscription {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.rx.close();
        if let Some(inner) = self.group.upgrade() {
            inner
                .subscribers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|subscriber| !subscriber.tx.is_closed());
            ConsumerGroup(inner).update(|_| {});
        }
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConsumerGroup")
    }
}
