//! RTP headers of voice packets: writing ours, reading anyone's (CSRCs and the extension header).

use crate::error::{VoiceError, VoiceErrorKind};

/// Length of the fixed RTP header.
pub const HEADER_LEN: usize = 12;
/// Discord's RTP payload type for Opus.
pub const PAYLOAD_TYPE_OPUS: u8 = 0x78;
/// RTP ticks per 20 ms Opus frame at 48 kHz.
pub const TIMESTAMP_STEP: u32 = 960;
/// An Opus frame of silence, sent five times when audio stops.
pub const SILENCE_FRAME: [u8; 3] = [0xF8, 0xFF, 0xFE];

/// The fields of an RTP header that voice uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    /// Sequence number, +1 per packet.
    pub sequence: u16,
    /// Timestamp, +960 per 20 ms frame.
    pub timestamp: u32,
    /// The sender's synchronization source.
    pub ssrc: u32,
}

impl RtpHeader {
    /// The 12 bytes of this header: `0x80 0x78 seq(BE) timestamp(BE) ssrc(BE)`.
    pub fn to_bytes(self) -> [u8; HEADER_LEN] {
        let mut out = [0; HEADER_LEN];
        out[0] = 0x80;
        out[1] = PAYLOAD_TYPE_OPUS;
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        out
    }
}

/// A parsed RTP header of a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedHeader {
    /// The header fields.
    pub header: RtpHeader,
    /// The payload type (without the marker bit).
    pub payload_type: u8,
    /// Bytes of header sent in the clear: fixed part, CSRCs and, if present, the 4-byte extension
    /// header. With the rtpsize modes this is the additional authenticated data.
    pub clear_len: usize,
    /// Bytes of extension body that open the (decrypted) payload, to be skipped.
    pub extension_body: usize,
    /// Whether the padding bit is set: the payload's last byte counts padding to strip.
    pub padding: bool,
}

/// Whether a datagram looks like RTCP (payload types 200-204 with the marker bit) rather than RTP.
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 2 && (200..=204).contains(&packet[1])
}

/// Reads the RTP header at the start of `packet`.
///
/// # Errors
/// [`VoiceErrorKind::PacketTooShort`] or [`VoiceErrorKind::NotRtp`]; never panics.
pub fn parse(packet: &[u8]) -> Result<ParsedHeader, VoiceError> {
    if packet.len() < HEADER_LEN {
        return Err(VoiceError::new(VoiceErrorKind::PacketTooShort));
    }
    if packet[0] >> 6 != 2 {
        return Err(VoiceError::new(VoiceErrorKind::NotRtp));
    }
    let csrcs = usize::from(packet[0] & 0x0F);
    let mut clear_len = HEADER_LEN + 4 * csrcs;
    let mut extension_body = 0;
    if packet[0] & 0x10 != 0 {
        clear_len += 4;
        let words = packet
            .get(clear_len - 2..clear_len)
            .ok_or_else(|| VoiceError::new(VoiceErrorKind::PacketTooShort))?;
        extension_body = 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    if packet.len() < clear_len {
        return Err(VoiceError::new(VoiceErrorKind::PacketTooShort));
    }
    let be32 =
        |i: usize| u32::from_be_bytes([packet[i], packet[i + 1], packet[i + 2], packet[i + 3]]);
    Ok(ParsedHeader {
        header: RtpHeader {
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: be32(4),
            ssrc: be32(8),
        },
        payload_type: packet[1] & 0x7F,
        clear_len,
        extension_body,
        padding: packet[0] & 0x20 != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let header = RtpHeader {
            sequence: 0xBEEF,
            timestamp: 0xDEAD_BEEF,
            ssrc: 42,
        };
        let bytes = header.to_bytes();
        assert_eq!(&bytes[..2], &[0x80, 0x78]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.header, header);
        assert_eq!(parsed.clear_len, 12);
        assert_eq!(parsed.payload_type, 0x78);
    }

    #[test]
    fn extension_header_is_clear() {
        let mut bytes = RtpHeader {
            sequence: 1,
            timestamp: 2,
            ssrc: 3,
        }
        .to_bytes()
        .to_vec();
        bytes[0] |= 0x10;
        bytes.extend_from_slice(&[0xBE, 0xDE, 0, 2]);
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.clear_len, 16);
        assert_eq!(parsed.extension_body, 8);
    }

    #[test]
    fn short_and_garbage_never_panic() {
        assert!(parse(&[]).is_err());
        assert!(parse(&[0x80; 11]).is_err());
        assert!(parse(&[0x00; 12]).is_err());
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..10_000 {
            let len = rng.usize(0..40);
            let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
            let _ = parse(&bytes);
        }
    }
}
