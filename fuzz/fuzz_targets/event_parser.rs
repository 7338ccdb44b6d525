//! `Event::from_dispatch` (and `EventKeys::scan`, `Event::name`, Clone and Debug) on an arbitrary
//! name and payload. Byte 0 picks a known event name (index into `EventKind::ALL`); 255 means the
//! name follows (byte 1 = its length). The rest is the payload, skipped unless it is JSON (the
//! shard only hands out `d` as valid JSON).
#![no_main]

use libfuzzer_sys::fuzz_target;
use nostrum_core::dispatch::EventKeys;
use nostrum_core::{Event, EventKind};
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (name, payload) = if usize::from(pick) < EventKind::ALL.len() {
        (EventKind::ALL[usize::from(pick)].name().to_owned(), rest)
    } else {
        let Some((&len, rest)) = rest.split_first() else {
            return;
        };
        let len = usize::from(len).min(rest.len());
        (
            String::from_utf8_lossy(&rest[..len]).into_owned(),
            &rest[len..],
        )
    };
    let Ok(text) = std::str::from_utf8(payload) else {
        return;
    };
    let Ok(raw) = RawValue::from_string(text.to_owned()) else {
        return;
    };
    let keys = EventKeys::scan(&name, &raw);
    let event = Event::from_dispatch(&name, &raw);
    let _ = std::hint::black_box(event.name());
    let _ = std::hint::black_box(event.kind());
    let copy = event.clone();
    std::hint::black_box(format!("{copy:?}{keys:?}"));
});
