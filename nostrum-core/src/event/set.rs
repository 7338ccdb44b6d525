//! `EventSet`: a set of event kinds as one bit per kind, built in `const`.

use std::fmt;

use twilight_model::gateway::Intents;

use super::EventKind;

/// A set of [`EventKind`]s, one bit each; `const`-constructible, so a consumer's set is known at
/// compile time.
///
/// ```
/// use nostrum_core::{EventKind, EventSet};
/// const SET: EventSet = EventSet::EMPTY.with(EventKind::MessageCreate).with(EventKind::Ready);
/// assert!(SET.contains(EventKind::Ready));
/// assert!(!SET.contains(EventKind::TypingStart));
/// assert_eq!(SET.len(), 2);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct EventSet(u128);

const _: () = assert!(EventKind::COUNT <= 128, "EventSet holds at most 128 kinds");

impl EventSet {
    /// No kinds.
    pub const EMPTY: Self = Self(0);
    /// Every kind.
    pub const ALL: Self = Self(if EventKind::COUNT == 128 {
        u128::MAX
    } else {
        (1 << EventKind::COUNT) - 1
    });

    const fn bit(kind: EventKind) -> u128 {
        1 << kind as u8
    }

    /// This set with `kind` added.
    #[must_use]
    /// The set as bits (bit `n`: the kind with index `n`), for an atomic copy.
    pub(crate) const fn bits(self) -> u128 {
        self.0
    }

    /// The set of [`bits`](Self::bits).
    pub(crate) const fn from_bits(bits: u128) -> Self {
        Self(bits)
    }

    pub const fn with(self, kind: EventKind) -> Self {
        Self(self.0 | Self::bit(kind))
    }

    /// This set without `kind`.
    #[must_use]
    pub const fn without(self, kind: EventKind) -> Self {
        Self(self.0 & !Self::bit(kind))
    }

    /// The kinds in either set.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: EventKind) -> bool {
        self.0 & Self::bit(kind) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many kinds it holds.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The set of the given kinds.
    pub const fn from_kinds(kinds: &[EventKind]) -> Self {
        let mut set = Self::EMPTY;
        let mut index = 0;
        while index < kinds.len() {
            set = set.with(kinds[index]);
            index += 1;
        }
        set
    }

    /// The union of the intents that deliver the events of the set.
    pub const fn intents(self) -> Intents {
        let mut bits = 0;
        let mut index = 0;
        while index < EventKind::COUNT {
            let kind = EventKind::ALL[index];
            if self.contains(kind) {
                bits |= kind.intents().bits();
            }
            index += 1;
        }
        Intents::from_bits_retain(bits)
    }

    /// The kinds in the set, in table order.
    pub fn iter(self) -> impl Iterator<Item = EventKind> {
        EventKind::ALL
            .into_iter()
            .filter(move |kind| self.contains(*kind))
    }
}

impl FromIterator<EventKind> for EventSet {
    fn from_iter<I: IntoIterator<Item = EventKind>>(iter: I) -> Self {
        iter.into_iter().fold(Self::EMPTY, Self::with)
    }
}

impl fmt::Debug for EventSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(EventKind::name))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_own_bit() {
        let mut set = EventSet::EMPTY;
        for kind in EventKind::ALL {
            assert!(!set.contains(kind));
            set = set.with(kind);
            assert!(set.contains(kind));
        }
        assert_eq!(set, EventSet::ALL);
        assert_eq!(EventSet::ALL.len(), EventKind::COUNT);
        assert_eq!(
            EventSet::ALL.iter().collect::<Vec<_>>(),
            EventKind::ALL.to_vec()
        );
    }

    #[test]
    fn intents_are_the_union() {
        const SET: EventSet =
            EventSet::from_kinds(&[EventKind::MessageCreate, EventKind::GuildMemberAdd]);
        assert_eq!(
            SET.intents(),
            Intents::GUILD_MESSAGES | Intents::DIRECT_MESSAGES | Intents::GUILD_MEMBERS
        );
    }
}
