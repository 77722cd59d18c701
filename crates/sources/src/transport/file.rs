//! `file = "capture.hex"`: replays captured bytes through the same framing and decoding path as
//! a live port. Hex text (whitespace ignored) or raw binary.
//!
//! `speed = "realtime"` delivers the bytes at the line's rate (baud / bits per character) in
//! small chunks, as a serial port would, and waits `pause` between passes when looping;
//! `speed = "max"` delivers them as fast as the decoder takes them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
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

/// Replays the file until it ends (or forever with `repeat`), or until cancelled.
pub async fn run(
    config: &FileConfig,
    line: LineDefaults,
    proto: &mut dyn MeterProtocol,
    sink: &mut Sink,
    cancel: &CancellationToken,
) -> Result<(), String> {
    let raw = tokio::fs::read(&config.path)
        .await
        .map_err(|e| format!("cannot read {}: {e}", config.path.display()))?;
    let bytes = capture_bytes(&raw).map_err(|e| format!("{}: {e}", config.path.display()))?;
    sink.stats.set_state(SourceState::Running);
    let tick = Duration::from_millis(50);
    let chunk = match config.speed {
        Speed::Max => 4096,
        Speed::Realtime => ((line.bytes_per_second() * tick.as_secs_f64()) as usize).max(1),
    };
    let mut out: Output = Vec::new();
    loop {
        for part in bytes.chunks(chunk) {
            if cancel.is_cancelled() {
                sink.stats.set_state(SourceState::Ended);
                return Ok(());
            }
            sink.stats
                .bytes
                .fetch_add(part.len() as u64, std::sync::atomic::Ordering::Relaxed);
            proto.on_bytes(part, &mut out);
            sink.emit(&mut out);
            match config.speed {
                Speed::Max => {
                    // A file can wait, unlike a meter: stay within half the bus so the
                    // slowest sink never falls so far behind that it loses readings.
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
}
