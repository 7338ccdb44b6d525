//! Any input ffmpeg reads (URLs, yt-dlp streams, files) as 48 kHz stereo s16le from a child process.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError, sync_channel};
use std::time::Duration;

use crate::error::{VoiceError, VoiceErrorKind};
use crate::pcm::{FRAME_SAMPLES, PcmSource};

/// How long a read may wait for ffmpeg before the track fails.
const STALL: Duration = Duration::from_secs(10);

/// ffmpeg's output, read ahead (up to a second) by a thread so the player rarely waits; when it
/// must (ffmpeg starting, a slow stream), it blocks the player for up to [`STALL`].
pub(crate) struct FfmpegSource {
    child: Child,
    chunks: Receiver<std::io::Result<Vec<i16>>>,
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
        let (tx, chunks) = sync_channel(50);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; FRAME_SAMPLES * 2];
            let mut filled = 0;
            loop {
                match stdout.read(&mut buf[filled..]) {
                    Ok(0) => {
                        let whole = filled - filled % 2;
                        if whole > 0 {
                            let _ = tx.send(Ok(to_samples(&buf[..whole])));
                        }
                        return;
                    }
                    Ok(n) => {
                        filled += n;
                        if filled == buf.len() {
                            if tx.send(Ok(to_samples(&buf))).is_err() {
                                return;
                            }
                            filled = 0;
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        let _ = tx.send(Err(error));
                        return;
                    }
                }
            }
        });
        Ok(Self { child, chunks })
    }
}

/// Runs a blocking wait, on a multi-thread runtime letting the worker's other tasks move away.
fn wait<T>(f: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(f)
    } else {
        f()
    }
}

fn to_samples(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

impl PcmSource for FfmpegSource {
    fn next_chunk(&mut self) -> Option<Result<Vec<i16>, VoiceError>> {
        let received = match self.chunks.try_recv() {
            Ok(chunk) => Ok(chunk),
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
            Err(TryRecvError::Empty) => wait(|| self.chunks.recv_timeout(STALL)),
        };
        match received {
            Ok(Ok(chunk)) => Some(Ok(chunk)),
            Ok(Err(error)) => Some(Err(VoiceError::with_source(
                VoiceErrorKind::Input {
                    reason: "reading ffmpeg's output failed".to_owned(),
                },
                error,
            ))),
            Err(RecvTimeoutError::Timeout) => Some(Err(VoiceError::input("ffmpeg stalled"))),
            Err(RecvTimeoutError::Disconnected) => match self.child.wait() {
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
