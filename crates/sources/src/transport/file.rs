//! `file = "capture.hex"`: replays captured bytes through the same framing and decoding path as
//! a live port. Hex text (whitespace ignored) or raw binary.
//!
//! `speed = "realtime"` delivers the bytes at the line's rate (baud / bits per character) in
//! small chunks, as a serial port would, and waits `pause` between passes when looping;
//! `speed = "max"` delivers them as fast as the decoder takes them.
//!
//! The file is streamed in [`READ_SIZE`] pieces, never held whole: a first pass tells hex text
//! from binary (it stops at the first byte that is neither a hex digit nor whitespace, so for
//! binary captures it reads one piece) and checks that hex text has an even number of digits;
//! then every pass reads the file from its start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::sync::CancellationToken;

use super::Sink;
use crate::protocol::{MeterProtocol, Output};
use crate::serial_settings::LineDefaults;
use smart_meter_core::stats::SourceState;

/// Replay pace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Speed {
    /// As fast as possible.
    #[default]
    Max,
    /// At the serial line's byte rate.
    Realtime,
}

/// A file replay.
#[derive(Debug, Clone, PartialEq)]
pub struct FileConfig {
    /// The capture (resolved against the config folder when relative).
    pub path: PathBuf,
    /// Pace.
    pub speed: Speed,
    /// Start again at the end.
    pub repeat: bool,
    /// Pause between passes when looping.
    pub pause: Duration,
}

/// Turns a capture file's content into bytes: hex text when it holds only hex digits and
/// whitespace, else the raw bytes.
///
/// # Errors
/// Hex text with an odd number of digits.
pub fn capture_bytes(raw: &[u8]) -> Result<Vec<u8>, String> {
    let is_hex = raw.iter().any(|b| b.is_ascii_hexdigit())
        && raw
            .iter()
            .all(|b| b.is_ascii_hexdigit() || b.is_ascii_whitespace());
    if !is_hex {
        return Ok(raw.to_vec());
    }
    let digits: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if digits.len() % 2 != 0 {
        return Err(format!(
            "hex text has an odd number of digits ({})",
            digits.len()
        ));
    }
    hex::decode(&digits).map_err(|e| format!("bad hex text: {e}"))
}

/// Bytes read from the file at a time.
pub const READ_SIZE: usize = 128 * 1024;

/// How a capture file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// Hex digits and whitespace (at least one digit, an even number of them).
    Hex,
    /// Anything else: the bytes as they came from the line.
    Binary,
}

/// The first pass of [`capture_bytes`]' rule over the open file, in pieces. Leaves the file
/// position anywhere.
async fn scan(
    file: &mut tokio::fs::File,
    buf: &mut [u8],
) -> std::io::Result<Result<Format, String>> {
    let mut digits: u64 = 0;
    loop {
        let n = file.read(buf).await?;
        if n == 0 {
            break;
        }
        for &b in buf.get(..n).unwrap_or_default() {
            if b.is_ascii_hexdigit() {
                digits += 1;
            } else if !b.is_ascii_whitespace() {
                return Ok(Ok(Format::Binary));
            }
        }
    }
    Ok(match digits {
        0 => Ok(Format::Binary),
        d if d % 2 != 0 => Err(format!("hex text has an odd number of digits ({d})")),
        _ => Ok(Format::Hex),
    })
}

/// Decodes hex text piece by piece: whitespace skipped, a byte may be split across pieces.
#[derive(Debug, Default)]
struct HexStream {
    high: Option<u8>,
}

impl HexStream {
    /// Appends the bytes of `text` to `out`. Fails on a character that is neither a hex digit
    /// nor whitespace (the file changed after it was checked).
    fn decode(&mut self, text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        for &c in text {
            let v = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                c if c.is_ascii_whitespace() => continue,
                c => {
                    return Err(format!(
                        "bad hex text: invalid character {:?}",
                        char::from(c)
                    ))
                }
            };
            match self.high.take() {
                None => self.high = Some(v),
                Some(h) => out.push(h << 4 | v),
            }
        }
        Ok(())
    }

    /// At the end of a pass: a digit left over means the file changed after it was checked.
    fn finish(&mut self) -> Result<(), String> {
        match self.high.take() {
            None => Ok(()),
            Some(_) => Err("hex text has an odd number of digits".into()),
        }
    }
}

async fn open(path: &Path) -> Result<tokio::fs::File, String> {
    tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Replays the file until it ends (or forever with `repeat`), or until cancelled.
pub async fn run(
    config: &FileConfig,
    line: LineDefaults,
    proto: &mut dyn MeterProtocol,
    sink: &mut Sink,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let path = &config.path;
    let read_error = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let in_file = |e: String| format!("{}: {e}", path.display());
    let mut file = open(path).await?;
    let mut raw = vec![0u8; READ_SIZE];
    let format = scan(&mut file, &mut raw)
        .await
        .map_err(read_error)?
        .map_err(in_file)?;
    sink.stats.set_state(SourceState::Running);
    let tick = Duration::from_millis(50);
    let chunk = match config.speed {
        Speed::Max => 4096,
        Speed::Realtime => ((line.bytes_per_second() * tick.as_secs_f64()) as usize).max(1),
    };
    let mut out: Output = Vec::new();
    // Decoded bytes not yet delivered: parts are `chunk` bytes as if the file were one
    // buffer; only the last part of a pass may be shorter.
    let mut pending: Vec<u8> = Vec::with_capacity(READ_SIZE + chunk);
    let off_worker = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread;
    loop {
        file.rewind().await.map_err(read_error)?;
        let mut hex = HexStream::default();
        let mut at_end = false;
        while !at_end {
            let n = file.read(&mut raw).await.map_err(read_error)?;
            let read = raw.get(..n).unwrap_or_default();
            match format {
                Format::Binary => pending.extend_from_slice(read),
                Format::Hex => hex.decode(read, &mut pending).map_err(in_file)?,
            }
            if n == 0 {
                hex.finish().map_err(in_file)?;
                at_end = true;
            }
            let whole = if at_end {
                pending.len()
            } else {
                pending.len() - pending.len() % chunk
            };
            let parts = pending.get(..whole).unwrap_or_default();
            let cancelled = if config.speed == Speed::Max && off_worker {
                // Decoding a read's worth of telegrams is pure CPU work. Done on this worker
                // it would hold the sinks it wakes in the worker's next-task slot until it
                // yields, so decoder and sinks would take turns on one core; handed off, the
                // sinks run on the other worker meanwhile.
                tokio::task::block_in_place(|| {
                    feed_max(parts, chunk, proto, sink, &mut out, cancel)
                })
            } else {
                feed_async(
                    parts,
                    chunk,
                    config.speed,
                    tick,
                    proto,
                    sink,
                    &mut out,
                    cancel,
                )
                .await
            };
            if cancelled {
                sink.stats.set_state(SourceState::Ended);
                return Ok(());
            }
            pending.drain(..whole);
        }
        if !config.repeat {
            proto.finish(&mut out);
            sink.emit(&mut out);
            break;
        }
        if !config.pause.is_zero() {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(config.pause) => {}
            }
        }
    }
    sink.stats.set_state(SourceState::Ended);
    Ok(())
}

/// Feeds one part to the protocol and publishes what comes out.
fn feed_part(part: &[u8], proto: &mut dyn MeterProtocol, sink: &mut Sink, out: &mut Output) {
    sink.stats
        .bytes
        .fetch_add(part.len() as u64, std::sync::atomic::Ordering::Relaxed);
    proto.on_bytes(part, out);
    sink.emit(out);
}

/// `speed = "max"` off the runtime's workers (inside `block_in_place`). Returns whether the
/// replay was cancelled.
fn feed_max(
    bytes: &[u8],
    chunk: usize,
    proto: &mut dyn MeterProtocol,
    sink: &mut Sink,
    out: &mut Output,
    cancel: &CancellationToken,
) -> bool {
    for part in bytes.chunks(chunk) {
        if cancel.is_cancelled() {
            return true;
        }
        feed_part(part, proto, sink, out);
        // A file can wait, unlike a meter: stay within half the bus so the slowest sink never
        // falls so far behind that it loses readings.
        let publisher = &sink.publisher;
        while publisher.backlog() > publisher.capacity() / 2 && !cancel.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    false
}

/// Realtime pace, or `speed = "max"` on a single-threaded runtime. Returns whether the replay
/// was cancelled.
#[allow(clippy::too_many_arguments)]
async fn feed_async(
    bytes: &[u8],
    chunk: usize,
    speed: Speed,
    tick: Duration,
    proto: &mut dyn MeterProtocol,
    sink: &mut Sink,
    out: &mut Output,
    cancel: &CancellationToken,
) -> bool {
    for part in bytes.chunks(chunk) {
        if cancel.is_cancelled() {
            return true;
        }
        feed_part(part, proto, sink, out);
        match speed {
            Speed::Max => {
                let publisher = &sink.publisher;
                while publisher.backlog() > publisher.capacity() / 2 && !cancel.is_cancelled() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                tokio::task::yield_now().await
            }
            Speed::Realtime => {
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => {}
                    _ = tokio::time::sleep(tick) => {}
                }
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_text_is_decoded_and_binary_kept() {
        assert_eq!(
            capture_bytes(b"68 FA\nfa68\r\n").unwrap(),
            vec![0x68, 0xFA, 0xFA, 0x68]
        );
        assert_eq!(capture_bytes(b"/KFM5\r\n").unwrap(), b"/KFM5\r\n".to_vec());
        assert!(capture_bytes(b"ABC").is_err());
        assert_eq!(capture_bytes(&[0x68, 0x01]).unwrap(), vec![0x68, 0x01]);
    }

    /// Records every part it is fed; cancels the replay once it has seen `stop_after` bytes.
    struct Recorder {
        parts: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
        cancel: CancellationToken,
        seen: usize,
        stop_after: usize,
    }

    impl MeterProtocol for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }

        fn on_bytes(&mut self, bytes: &[u8], _out: &mut Output) {
            self.parts.lock().unwrap().push(bytes.to_vec());
            self.seen += bytes.len();
            if self.seen >= self.stop_after {
                self.cancel.cancel();
            }
        }
    }

    /// Replays `content` at `speed = "max"`: the parts the protocol was fed, and how the
    /// replay ended.
    async fn replay_parts(
        content: &[u8],
        repeat: bool,
        stop_after: usize,
    ) -> (Vec<Vec<u8>>, Result<(), String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("capture");
        std::fs::write(&path, content).unwrap();
        let config = FileConfig {
            path,
            speed: Speed::Max,
            repeat,
            pause: Duration::ZERO,
        };
        let bus = smart_meter_core::Bus::new(16);
        let cancel = CancellationToken::new();
        let parts = std::sync::Arc::default();
        let mut proto = Recorder {
            parts: std::sync::Arc::clone(&parts),
            cancel: cancel.clone(),
            seen: 0,
            stop_after,
        };
        let mut sink = Sink::new("file".into(), bus.publisher(), std::sync::Arc::default());
        let result = run(
            &config,
            LineDefaults::n81(115_200),
            &mut proto,
            &mut sink,
            &cancel,
        )
        .await;
        let parts = std::mem::take(&mut *parts.lock().unwrap());
        (parts, result)
    }

    /// The parts of a replay that must succeed.
    async fn replay(content: &[u8], repeat: bool, stop_after: usize) -> Vec<Vec<u8>> {
        let (parts, result) = replay_parts(content, repeat, stop_after).await;
        result.unwrap();
        parts
    }

    /// A capture of `len` bytes that is not hex text.
    fn binary(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8 | 0x80).collect()
    }

    #[tokio::test]
    async fn a_binary_capture_larger_than_a_read_arrives_whole_in_4096_byte_parts() {
        let content = binary(3 * READ_SIZE + 5000);
        let parts = replay(&content, false, usize::MAX).await;
        let (last, whole) = parts.split_last().unwrap();
        assert!(whole.iter().all(|p| p.len() == 4096));
        assert_eq!(last.len(), content.len() % 4096);
        assert_eq!(parts.concat(), content);
    }

    #[tokio::test]
    async fn hex_text_is_decoded_across_reads_whatever_the_whitespace() {
        let content = binary(READ_SIZE + 777);
        // Digits of one byte split by line breaks and spaces, lines of odd lengths.
        let mut text = String::new();
        for (i, b) in content.iter().enumerate() {
            let pair = format!("{b:02x}");
            let (hi, lo) = pair.split_at(1);
            text.push_str(hi);
            if i % 97 == 0 {
                text.push_str("\r\n");
            }
            text.push_str(lo);
            text.push_str(if i % 5 == 0 { " " } else { "" });
        }
        assert!(text.len() > 2 * READ_SIZE);
        let parts = replay(text.as_bytes(), false, usize::MAX).await;
        assert_eq!(parts.concat(), content);
        assert!(parts.iter().rev().skip(1).all(|p| p.len() == 4096));
    }

    #[tokio::test]
    async fn odd_hex_text_and_a_missing_file_fail_before_any_byte_is_replayed() {
        let mut text = "68 fa ".repeat(READ_SIZE);
        text.push('6');
        let (parts, result) = replay_parts(text.as_bytes(), false, usize::MAX).await;
        let err = result.unwrap_err();
        assert!(err.contains("odd number of digits"), "{err}");
        assert!(parts.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let config = FileConfig {
            path: dir.path().join("missing"),
            speed: Speed::Max,
            repeat: false,
            pause: Duration::ZERO,
        };
        let bus = smart_meter_core::Bus::new(4);
        let mut sink = Sink::new("file".into(), bus.publisher(), std::sync::Arc::default());
        let mut proto = Recorder {
            parts: std::sync::Arc::default(),
            cancel: CancellationToken::new(),
            seen: 0,
            stop_after: usize::MAX,
        };
        let cancel = CancellationToken::new();
        let err = run(
            &config,
            LineDefaults::n81(9600),
            &mut proto,
            &mut sink,
            &cancel,
        )
        .await
        .unwrap_err();
        assert!(err.starts_with("cannot read"), "{err}");
        assert!(proto.parts.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn off_the_workers_parts_and_loops_are_the_same() {
        let content = binary(2 * READ_SIZE + 5000);
        let parts = replay(&content, false, usize::MAX).await;
        let (last, whole) = parts.split_last().unwrap();
        assert!(whole.iter().all(|p| p.len() == 4096));
        assert_eq!(last.len(), content.len() % 4096);
        assert_eq!(parts.concat(), content);
        let parts = replay(&content, true, 2 * content.len()).await;
        assert_eq!(parts.concat(), [content.clone(), content].concat());
    }

    #[tokio::test]
    async fn a_looping_replay_starts_again_from_the_first_byte() {
        let content = binary(READ_SIZE + 100);
        let parts = replay(&content, true, 3 * content.len()).await;
        let all = parts.concat();
        assert_eq!(all.len(), 3 * content.len());
        for pass in all.chunks(content.len()) {
            assert_eq!(pass, content.as_slice());
        }
    }
}
