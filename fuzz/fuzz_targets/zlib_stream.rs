//! A real `Shard` (Compression::ZlibStream) fed arbitrary frames by an in-process gateway: the
//! decompressor, its size bound, the envelope parser and the shard's reactions. See
//! `nostrum_fuzz::frames` for the input format.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nostrum_core::gateway::Compression;
use nostrum_fuzz::{FakeGateway, frames};

static GATEWAY: OnceLock<FakeGateway> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let gateway = GATEWAY.get_or_init(|| FakeGateway::new(Compression::ZlibStream));
    gateway.run(frames(Compression::ZlibStream, data));
});
