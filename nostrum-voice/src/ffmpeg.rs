//! Any input ffmpeg reads (URLs, yt-dlp streams, files) as 48 kHz stereo s16le from a child process.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll};

use tokio::sync::mpsc::{Receiver, channel, error::TryRecvError};

use crate::error::{VoiceError, VoiceErrorKind};
use crate::pcm::{FRAME_SAMPLES, PcmSource};

type Chunk = std::io::Result<Vec<i16>>;

/// ffmpeg's output, read ahead (up to a second) by a thread. The player awaits
/// [`poll_ready`](PcmSource::poll_ready) before it reads, so waiting for ffmpeg (starting, a slow
/// stream) never blocks a runtime thread; the player gives up on an input that stalls.
pub(crate) struct FfmpegSource {
    child: Child,
    chunks: Receiver<Chunk>,
    /// A chunk taken by `poll_ready`: `Some(None)` when the reader is done.
    peeked: Option<Option<Chunk>>,
}

impl FfmpegSource {
    /// Spawns `ffmpeg -i <input> -f s16le -ar 48000 -ac 2 pipe:1`.
    pub(crate) fn spawn(program: &str, input: &str) -> Result<Self, VoiceError> {
        let mut child = Command::new(program)
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
            .arg(input)
            .args(["-f", "s16le", "-ar", "48000", "-ac", "2", "pipe:1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| {
                let kind = if error.kind() == std::io::ErrorKind::NotFound {
                    VoiceErrorKind::MissingProgram {
                        name: program.to_owned(),
                    }
                } else {
                    VoiceErrorKind::Input {
                        reason: format!("cannot start {program}"),
                    }
                };
                VoiceError::with_source(kind, error)
            })?;
        let mut stdout = child
            .stdout
            .take()
            .ok_or_else(|| VoiceError::input("ffmpeg has no stdout"))?;
        let (tx, chunks) = channel(50);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; FRAME_SAMPLES * 2];
            let mut filled = 0;
            loop {
                match stdout.read(&mut buf[filled..]) {
                    Ok(0) => {
                        let whole = filled - filled % 2;
                        if whole > 0 {
                            let _ = tx.blocking_send(Ok(to_samples(&buf[..whole])));
                        }
                        return;
                    }
                    Ok(n) => {
                        filled += n;
                        if filled == buf.len() {
                            if tx.blocking_send(Ok(to_samples(&buf))).is_err() {
                                return;
                            }
                            filled = 0;
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        let _ = tx.blocking_send(Err(error));
                        return;
                    }
                }
            }
        });
        Ok(Self {
            child,
            chunks,
            peeked: None,
        })
    }

    /// The next chunk; blocks only when `poll_ready` was not awaited first (on a multi-thread
    /// runtime letting the worker's other tasks move away).
    fn take(&mut self) -> Option<Chunk> {
        if let Some(peeked) = self.peeked.take() {
            return peeked;
        }
        match self.chunks.try_recv() {
            Ok(chunk) => Some(chunk),
            Err(TryRecvError::Disconnected) => None,
            Err(TryRecvError::Empty) => {
                let mut wait = || futures::executor::block_on(self.chunks.recv());
                let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|h| {
                    h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
                });
                if multi_thread {
                    tokio::task::block_in_place(wait)
                } else {
                    wait()
                }
            }
        }
    }
}

fn to_samples(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

impl PcmSource for FfmpegSource {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.peeked.is_none() {
            self.peeked = Some(std::task::ready!(self.chunks.poll_recv(cx)));
        }
        Poll::Ready(())
    }

    fn next_chunk(&mut self) -> Option<Result<Vec<i16>, VoiceError>> {
        match self.take() {
            Some(Ok(chunk)) => Some(Ok(chunk)),
            Some(Err(error)) => Some(Err(VoiceError::with_source(
                VoiceErrorKind::Input {
                    reason: "reading ffmpeg's output failed".to_owned(),
                },
                error,
            ))),
            // The reader is done: ffmpeg has closed its output and exits (or has exited).
            None => match self.child.wait() {
                Ok(status) if !status.success() => {
                    Some(Err(VoiceError::input(format!("ffmpeg failed ({status})"))))
                }
                _ => None,
            },
        }
    }
}

impl Drop for FfmpegSource {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
