//! The cache: models now; the stores come with the cache issue.

pub mod model;

pub use model::*;
