//! Files decoded in-process with symphonia (MP3, FLAC, WAV, Ogg Vorbis) to 48 kHz stereo PCM.

use std::time::Duration;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::units::Time;

use crate::error::{VoiceError, VoiceErrorKind};
use crate::pcm::{PcmSource, RATE, Resampler, f32_to_i16};

fn sym_error(what: &str, error: SymError) -> VoiceError {
    VoiceError::with_source(
        VoiceErrorKind::Input {
            reason: what.to_owned(),
        },
        error,
    )
}

/// A decoding file: packets read, decoded, mixed to stereo and resampled as it plays.
pub(crate) struct FileSource {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    resampler: Option<Resampler>,
    failed: bool,
}

impl FileSource {
    /// Probes `source` (with the file extension as a hint, if any) and opens its first audio track.
    pub(crate) fn open(
        source: Box<dyn MediaSource>,
        extension: Option<&str>,
    ) -> Result<Self, VoiceError> {
        let mut hint = Hint::new();
        if let Some(extension) = extension {
            hint.with_extension(extension);
        }
        let stream = MediaSourceStream::new(source, Default::default());
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                stream,
                &FormatOptions {
                    enable_gapless: true,
                    ..FormatOptions::default()
                },
                &MetadataOptions::default(),
            )
            .map_err(|e| sym_error("unknown or unsupported audio format", e))?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| VoiceError::input("no audio track"))?;
        let track_id = track.id;
        let rate = track.codec_params.sample_rate.unwrap_or(RATE);
        let decoder = symphonia::default::get_codecs()
            .make(&track.codec_params, &DecoderOptions::default())
            .map_err(|e| sym_error("unsupported codec", e))?;
        Ok(Self {
            format,
            decoder,
            track_id,
            resampler: (rate != RATE).then(|| Resampler::new(rate)),
            failed: false,
        })
    }

    fn decode_next(&mut self) -> Result<Option<Vec<i16>>, VoiceError> {
        loop {
            let packet = match self.format.next_packet() {
                Ok(packet) => packet,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(SymError::ResetRequired) => return Ok(None),
                Err(e) => return Err(sym_error("reading the file failed", e)),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(decoded) => decoded,
                Err(SymError::DecodeError(error)) => {
                    tracing::debug!(error, "undecodable audio packet skipped");
                    continue;
                }
                Err(e) => return Err(sym_error("decoding failed", e)),
            };
            let spec = *decoded.spec();
            let channels = spec.channels.count().max(1);
            let mut samples = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
            samples.copy_interleaved_ref(decoded);
            let stereo: Vec<[f32; 2]> = samples
                .samples()
                .chunks_exact(channels)
                .map(|frame| [frame[0], frame[if channels > 1 { 1 } else { 0 }]])
                .collect();
            let stereo = match &mut self.resampler {
                Some(resampler) => {
                    let mut out = Vec::with_capacity(stereo.len() * 12 / 10 + 2);
                    resampler.process(&stereo, &mut out);
                    out
                }
                None => stereo,
            };
            return Ok(Some(
                stereo
                    .iter()
                    .flat_map(|&[l, r]| [f32_to_i16(l), f32_to_i16(r)])
                    .collect(),
            ));
        }
    }
}

impl PcmSource for FileSource {
    fn next_chunk(&mut self) -> Option<Result<Vec<i16>, VoiceError>> {
        if self.failed {
            return None;
        }
        match self.decode_next() {
            Ok(chunk) => chunk.map(Ok),
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }

    fn seek(&mut self, to: Duration) -> Result<(), VoiceError> {
        let time = Time::new(to.as_secs(), f64::from(to.subsec_nanos()) / 1e9);
        self.format
            .seek(
                SeekMode::Accurate,
                SeekTo::Time {
                    time,
                    track_id: Some(self.track_id),
                },
            )
            .map_err(|e| sym_error("seek failed", e))?;
        self.decoder.reset();
        if let Some(resampler) = &mut self.resampler {
            resampler.reset();
        }
        self.failed = false;
        Ok(())
    }
}
