//! Entry points for the fuzz targets (`fuzz/fuzz_targets/voice_packet.rs`): the parsers that read
//! what the network sends, reachable without a connection. Not part of the API.

use crate::{Cipher, CryptoMode, rtp};

/// Feeds `data` to every voice packet parser: RTP/RTCP headers, both AEAD modes' open (with a
/// fixed key, so nearly every input takes the authentication-failure path, and a sealed-then-
/// mutated packet the others), IP discovery, and with the `dave` feature the DAVE binary
/// opcodes and the E2EE frame decryptor. None may panic.
pub fn voice_packet(data: &[u8]) {
    let _ = rtp::is_rtcp(data);
    let _ = rtp::parse(data);
    let key = [7u8; 32];
    for mode in [
        CryptoMode::Aes256GcmRtpSize,
        CryptoMode::XChaCha20Poly1305RtpSize,
    ] {
        let Ok(cipher) = Cipher::new(mode, &key) else {
            continue;
        };
        let _ = cipher.open(data);
        // A valid packet with the input as payload, then flipped by the input's first byte: the
        // paths past authentication.
        let mut sealed = rtp::RtpHeader {
            sequence: 1,
            timestamp: 960,
            ssrc: 42,
        }
        .to_bytes()
        .to_vec();
        sealed.extend_from_slice(data);
        let clear = sealed.len() - data.len();
        if cipher
            .seal(
                &mut sealed,
                clear,
                u32::from(data.first().copied().unwrap_or(0)),
            )
            .is_ok()
        {
            assert!(cipher.open(&sealed).is_ok(), "a sealed packet must open");
            if let Some(&flip) = data.first() {
                let at = usize::from(flip) % sealed.len().max(1);
                if let Some(byte) = sealed.get_mut(at) {
                    *byte ^= flip | 1;
                }
            }
            let _ = cipher.open(&sealed);
        }
    }
    let _ = crate::udp::parse_discovery(data);
    #[cfg(feature = "dave")]
    if let Some((&op, payload)) = data.split_first()
        && let Some(mut dave) = crate::dave::Dave::new(1, 1, 2)
    {
        let _ = dave.on_binary(21 + op % 11, payload);
        let _ = dave.decrypt(Some(3), payload);
        let _ = dave.decrypt(None, payload);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_entry_takes_short_long_and_garbage_input() {
        for input in [
            &[][..],
            &[0x80][..],
            &[0x80, 0x78, 0, 1, 0, 0, 3, 192, 0, 0, 0, 42][..],
            &[0xff; 100][..],
            &[25, 1, 2, 3][..],
            &[0; 74][..],
        ] {
            super::voice_packet(input);
        }
    }
}
