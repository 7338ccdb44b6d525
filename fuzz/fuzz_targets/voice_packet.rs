//! Voice packets from the network: RTP/RTCP headers, `aead_aes256_gcm_rtpsize` and
//! `aead_xchacha20_poly1305_rtpsize` open (garbage, and sealed packets flipped by the input), IP
//! discovery answers, and the DAVE binary opcodes and E2EE frame decryptor
//! (`nostrum_voice::fuzz::voice_packet`). None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    nostrum_voice::fuzz::voice_packet(data);
});
