//! PCM in: 48 kHz stereo samples encoded to 20 ms Opus frames with libopus, volume, seeking.

use std::time::Duration;

use bytes::Bytes;

use crate::error::VoiceError;

/// Sample rate of everything sent: 48 kHz.
pub(crate) const RATE: u32 = 48_000;
/// Interleaved stereo samples in one 20 ms frame (960 per channel).
pub(crate) const FRAME_SAMPLES: usize = 960 * 2;
/// Largest Opus packet libopus may produce.
const MAX_PACKET: usize = 4_000;

/// A source of interleaved 48 kHz stereo i16 samples, read in chunks of any length.
pub(crate) trait PcmSource: Send {
    /// The next chunk; `None` at the end.
    fn next_chunk(&mut self) -> Option<Result<Vec<i16>, VoiceError>>;

    /// `Ready` when [`next_chunk`](Self::next_chunk) will not block (the default: in memory, or
    /// computed in place); a source fed by another thread or process waits here instead.
    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Ready(())
    }

    /// Moves to `to` from the start.
    fn seek(&mut self, _to: Duration) -> Result<(), VoiceError> {
        Err(VoiceError::input("this track cannot seek"))
    }
}

/// Interleaved stereo sample index of a time from the start.
pub(crate) fn sample_index(to: Duration) -> usize {
    let frames = to.as_nanos() * u128::from(RATE) / 1_000_000_000;
    usize::try_from(frames).unwrap_or(usize::MAX / 2) * 2
}

/// PCM held in memory: seekable.
pub(crate) struct MemoryPcm {
    pub(crate) samples: Vec<i16>,
    pub(crate) pos: usize,
}

impl PcmSource for MemoryPcm {
    fn next_chunk(&mut self) -> Option<Result<Vec<i16>, VoiceError>> {
        if self.pos >= self.samples.len() {
            return None;
        }
        let end = (self.pos + FRAME_SAMPLES * 10).min(self.samples.len());
        let chunk = self.samples[self.pos..end].to_vec();
        self.pos = end;
        Some(Ok(chunk))
    }

    fn seek(&mut self, to: Duration) -> Result<(), VoiceError> {
        self.pos = sample_index(to).min(self.samples.len());
        Ok(())
    }
}

/// PCM from an iterator of chunks: not seekable.
pub(crate) struct StreamPcm<I>(pub(crate) I);

impl<I> PcmSource for StreamPcm<I>
where
    I: Iterator<Item = Result<Vec<i16>, VoiceError>> + Send,
{
    fn next_chunk(&mut self) -> Option<Result<Vec<i16>, VoiceError>> {
        self.0.next()
    }
}

/// Float samples (-1.0..=1.0) to i16, clamped.
pub(crate) fn f32_to_i16(sample: f32) -> i16 {
    (sample * 32_767.0).round().clamp(-32_768.0, 32_767.0) as i16
}

/// Encodes a [`PcmSource`] to Opus, 20 ms a frame; the last frame is padded with silence.
pub(crate) struct OpusEncode<S> {
    source: S,
    encoder: Option<opus::Encoder>,
    pending: Vec<i16>,
    volume: f32,
    ended: bool,
    /// The source's error, met while reading ahead in `poll_ready`; returned by the next frame.
    error: Option<VoiceError>,
}

impl<S: PcmSource> OpusEncode<S> {
    pub(crate) fn new(source: S) -> Self {
        Self {
            source,
            encoder: None,
            pending: Vec::with_capacity(FRAME_SAMPLES * 2),
            volume: 1.0,
            ended: false,
            error: None,
        }
    }

    /// Reads chunks until a frame is buffered or the source ends, without blocking.
    fn poll_fill(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        while !self.ended && self.pending.len() < FRAME_SAMPLES {
            std::task::ready!(self.source.poll_ready(cx));
            match self.source.next_chunk() {
                Some(Ok(chunk)) => self.pending.extend_from_slice(&chunk),
                Some(Err(error)) => {
                    self.ended = true;
                    self.error = Some(error);
                }
                None => self.ended = true,
            }
        }
        std::task::Poll::Ready(())
    }

    fn encoder(&mut self) -> Result<&mut opus::Encoder, VoiceError> {
        if self.encoder.is_none() {
            let mut encoder =
                opus::Encoder::new(RATE, opus::Channels::Stereo, opus::Application::Audio)
                    .map_err(opus_error)?;
            encoder
                .set_bitrate(opus::Bitrate::Bits(128_000))
                .map_err(opus_error)?;
            self.encoder = Some(encoder);
        }
        self.encoder
            .as_mut()
            .ok_or_else(|| VoiceError::input("no Opus encoder"))
    }

    fn encode_next(&mut self) -> Option<Result<Bytes, VoiceError>> {
        if let Some(error) = self.error.take() {
            return Some(Err(error));
        }
        while !self.ended && self.pending.len() < FRAME_SAMPLES {
            match self.source.next_chunk() {
                Some(Ok(chunk)) => self.pending.extend_from_slice(&chunk),
                Some(Err(error)) => {
                    self.ended = true;
                    return Some(Err(error));
                }
                None => self.ended = true,
            }
        }
        if self.pending.is_empty() {
            return None;
        }
        let mut frame = [0i16; FRAME_SAMPLES];
        let take = self.pending.len().min(FRAME_SAMPLES);
        frame[..take].copy_from_slice(&self.pending[..take]);
        self.pending.drain(..take);
        if self.volume != 1.0 {
            let volume = self.volume;
            for sample in &mut frame {
                *sample = (f32::from(*sample) * volume)
                    .round()
                    .clamp(-32_768.0, 32_767.0) as i16;
            }
        }
        let mut out = [0u8; MAX_PACKET];
        let encoded = self
            .encoder()
            .and_then(|encoder| encoder.encode(&frame, &mut out).map_err(opus_error));
        Some(encoded.map(|len| Bytes::copy_from_slice(&out[..len])))
    }
}

impl<S: PcmSource> crate::input::FrameSource for OpusEncode<S> {
    fn next_frame(&mut self) -> Option<Result<Bytes, VoiceError>> {
        self.encode_next()
    }

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.poll_fill(cx)
    }

    fn seek(&mut self, to: Duration) -> Result<(), VoiceError> {
        self.source.seek(to)?;
        self.pending.clear();
        self.ended = false;
        self.error = None;
        Ok(())
    }

    fn set_volume(&mut self, volume: f32) -> bool {
        self.volume = volume.max(0.0);
        true
    }
}

pub(crate) fn opus_error(error: opus::Error) -> VoiceError {
    VoiceError::with_source(
        crate::VoiceErrorKind::Input {
            reason: "libopus failed".to_owned(),
        },
        error,
    )
}

/// A linear resampler of interleaved stereo f32, streaming across chunks.
pub(crate) struct Resampler {
    step: f64,
    /// Position of the next output sample, in input frames from the start of the next chunk.
    t: f64,
    prev: [f32; 2],
}

impl Resampler {
    pub(crate) fn new(from: u32) -> Self {
        Self {
            step: f64::from(from) / f64::from(RATE),
            t: 0.0,
            prev: [0.0; 2],
        }
    }

    /// Resamples one chunk of stereo frames.
    pub(crate) fn process(&mut self, input: &[[f32; 2]], out: &mut Vec<[f32; 2]>) {
        let n = input.len();
        if n == 0 {
            return;
        }
        let at = |i: isize| {
            if i < 0 { self.prev } else { input[i as usize] }
        };
        while self.t.floor() + 1.0 < n as f64 {
            let i = self.t.floor();
            let frac = (self.t - i) as f32;
            let (a, b) = (at(i as isize), at(i as isize + 1));
            out.push([a[0] + (b[0] - a[0]) * frac, a[1] + (b[1] - a[1]) * frac]);
            self.t += self.step;
        }
        self.t -= n as f64;
        self.prev = input[n - 1];
    }

    /// Forgets the stream (after a seek).
    pub(crate) fn reset(&mut self) {
        self.t = 0.0;
        self.prev = [0.0; 2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::FrameSource;

    #[test]
    fn resamples_44100_to_48000_by_length() {
        let mut resampler = Resampler::new(44_100);
        let input: Vec<[f32; 2]> = (0..44_100).map(|i| [i as f32, 0.0]).collect();
        let mut out = Vec::new();
        for chunk in input.chunks(1_000) {
            resampler.process(chunk, &mut out);
        }
        assert!((out.len() as i64 - 48_000).abs() <= 2, "{}", out.len());
        for (k, frame) in out.iter().enumerate() {
            let want = k as f64 * 44_100.0 / 48_000.0;
            assert!((f64::from(frame[0]) - want).abs() < 0.02, "{k}: {frame:?}");
        }
    }

    #[test]
    fn encodes_padded_frames_and_seeks() {
        let samples = vec![1_000i16; FRAME_SAMPLES * 3 + 10];
        let mut encode = OpusEncode::new(MemoryPcm { samples, pos: 0 });
        let frames: Vec<_> = std::iter::from_fn(|| encode.next_frame()).collect();
        assert_eq!(frames.len(), 4);
        assert!(frames.iter().all(Result::is_ok));
        encode.seek(Duration::from_millis(40)).unwrap();
        assert_eq!(std::iter::from_fn(|| encode.next_frame()).count(), 2);
    }
}
