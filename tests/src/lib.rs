//! End-to-end tests against the local Discord live in `tests/`.
