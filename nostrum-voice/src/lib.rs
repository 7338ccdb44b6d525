//! Voice for nostrum-core. Not built yet: see the voice issue; nothing here pretends to work.
