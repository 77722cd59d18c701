//! The streaming frame finder.
//!
//! Push bytes as they arrive ([`Framer::push`]), then pop frames and errors until `None`
//! ([`Framer::pop`]). The output does not depend on how the input was chunked: every decision
//! is taken only once the bytes it depends on are buffered (or the input has ended, see
//! [`Framer::finish`]).
//!
//! Flags: a closing flag may also open the next frame (ISO/IEC 13239 allows one shared flag),
//! so it is left in the buffer after a frame. A flag followed by another flag, or by a byte
//! that is not a frame format, is idle fill and dropped silently.
//!
//! Resynchronisation: bytes that are not a valid frame (a read that starts mid-frame, noise, a
//! lost byte, data that a capturing device appended after the closing flag) are skipped one
//! at a time until the next flag that opens a valid frame. Consecutive skipped bytes are
//! reported once, as [`Error::Skipped`] with offset, count and why the first one was rejected.
//! A frame whose header (HCS) and closing flag are right but whose FCS is wrong is dropped
//! whole and reported as [`Error::BadFcs`].

use crate::error::{Error, Skip};
use crate::frame::{self, Check, Frame, FLAG};

/// A run of skipped bytes is reported at the latest when it reaches this length.
pub const SKIP_REPORT_LEN: u64 = 1024;

/// Finds HDLC frames in a byte stream.
#[derive(Debug, Default, Clone)]
pub struct Framer {
    buf: Vec<u8>,
    start: usize,
    offset: u64,
    skipped: Option<Skipped>,
    eof: bool,
}

#[derive(Debug, Clone, Copy)]
struct Skipped {
    offset: u64,
    len: u64,
    cause: Skip,
}

impl Skipped {
    fn into_error(self) -> Error {
        match self.cause {
            Skip::Truncated => Error::Truncated {
                offset: self.offset,
                len: self.len,
            },
            cause => Error::Skipped {
                offset: self.offset,
                len: self.len,
                cause,
            },
        }
    }
}

impl Framer {
    /// An empty framer at stream offset 0.
    pub fn new() -> Self {
        Framer::default()
    }

    /// Appends received bytes. Call [`pop`](Self::pop) until it returns `None` afterwards.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.eof = false;
        self.buf.extend_from_slice(bytes);
    }

    /// Marks the end of input: the next calls to [`pop`](Self::pop) report what is left instead
    /// of waiting for more.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// True after [`finish`](Self::finish) once everything buffered has been popped.
    pub fn at_end(&self) -> bool {
        self.eof && self.buffered() == 0 && self.skipped.is_none()
    }

    /// Drops everything buffered and restarts at stream offset 0.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.start = 0;
        self.offset = 0;
        self.skipped = None;
        self.eof = false;
    }

    /// Stream offset of the first byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The next complete frame or error, or `None` when more bytes are needed.
    pub fn pop(&mut self) -> Option<Result<Frame<'_>, Error>> {
        loop {
            let avail = self.buf.get(self.start..).unwrap_or_default();
            if avail.is_empty() {
                return if self.eof {
                    self.skipped.take().map(|s| Err(s.into_error()))
                } else {
                    None
                };
            }
            if avail.first() != Some(&FLAG) {
                let run = avail.iter().position(|&b| b == FLAG).unwrap_or(avail.len());
                if let Some(report) = self.skip(run, Skip::NoFlag) {
                    return Some(Err(report));
                }
                continue;
            }
            match frame::check(avail, self.eof) {
                Check::Incomplete => return None,
                Check::Idle => {
                    self.consume(1);
                    if let Some(s) = self.skipped.take() {
                        return Some(Err(s.into_error()));
                    }
                }
                Check::Invalid(cause) => {
                    if let Some(report) = self.skip(1, cause) {
                        return Some(Err(report));
                    }
                }
                Check::Frame(layout) => {
                    if let Some(s) = self.skipped.take() {
                        return Some(Err(s.into_error()));
                    }
                    let from = self.start;
                    let offset = self.offset;
                    // Leave the closing flag: it may open the next frame.
                    self.consume(layout.len.saturating_sub(1));
                    let bytes = self
                        .buf
                        .get(from..from.saturating_add(layout.len))
                        .unwrap_or_default();
                    return Some(Ok(Frame::new_unchecked(bytes, offset, layout)));
                }
                Check::BadFcs {
                    len,
                    expected,
                    actual,
                } => {
                    if let Some(s) = self.skipped.take() {
                        return Some(Err(s.into_error()));
                    }
                    let offset = self.offset;
                    self.consume(len.saturating_sub(1));
                    return Some(Err(Error::BadFcs {
                        offset,
                        expected,
                        actual,
                    }));
                }
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        self.offset = self.offset.saturating_add(n as u64);
    }

    /// Skips up to `n` bytes as garbage; returns an error to report now, if any.
    fn skip(&mut self, n: usize, cause: Skip) -> Option<Error> {
        // A frame cut off by the end of input is reported on its own, not merged into the
        // garbage before it.
        let flushed = match self.skipped {
            Some(run) if cause == Skip::Truncated && run.cause != Skip::Truncated => {
                self.skipped.take().map(Skipped::into_error)
            }
            _ => None,
        };
        let run = self.skipped.get_or_insert(Skipped {
            offset: self.offset,
            len: 0,
            cause,
        });
        let room = SKIP_REPORT_LEN.saturating_sub(run.len);
        let n = (n as u64).min(room);
        run.len = run.len.saturating_add(n);
        let full = run.len >= SKIP_REPORT_LEN;
        self.consume(usize::try_from(n).unwrap_or(usize::MAX));
        if flushed.is_some() {
            flushed
        } else if full {
            self.skipped.take().map(Skipped::into_error)
        } else {
            None
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;
    use crate::frame::{emit, Address};

    fn ui(info: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        let a = |b: &[u8]| Address::from_bytes(b).unwrap();
        emit(false, a(&[0xCF]), a(&[0x02, 0x23]), 0x13, info, &mut v).unwrap();
        v
    }

    #[derive(Debug, PartialEq)]
    enum Out {
        Frame(u64, Vec<u8>),
        Err(Error),
    }

    fn run(chunks: &[&[u8]]) -> Vec<Out> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        let drain = |f: &mut Framer, out: &mut Vec<Out>| {
            while let Some(r) = f.pop() {
                out.push(match r {
                    Ok(fr) => Out::Frame(fr.offset(), fr.info().to_vec()),
                    Err(e) => Out::Err(e),
                });
            }
        };
        for c in chunks {
            f.push(c);
            drain(&mut f, &mut out);
        }
        f.finish();
        drain(&mut f, &mut out);
        out
    }

    #[test]
    fn finds_frames_with_separate_and_shared_flags() {
        let a = ui(&[1, 2, 3]);
        let b = ui(&[4, 5]);
        let separate = [a.clone(), b.clone()].concat();
        assert_eq!(
            run(&[&separate]),
            vec![
                Out::Frame(0, vec![1, 2, 3]),
                Out::Frame(a.len() as u64, vec![4, 5])
            ]
        );
        let shared = [&a[..], &b[1..]].concat();
        assert_eq!(
            run(&[&shared]),
            vec![
                Out::Frame(0, vec![1, 2, 3]),
                Out::Frame(a.len() as u64 - 1, vec![4, 5])
            ]
        );
    }

    #[test]
    fn reports_junk_after_the_closing_flag_once() {
        let a = ui(&[1, 2, 3]);
        let b = ui(&[4]);
        let junk = [0x11u8; 96];
        let input = [&a[..], &junk, &b].concat();
        assert_eq!(
            run(&[&input]),
            vec![
                Out::Frame(0, vec![1, 2, 3]),
                Out::Err(Error::Skipped {
                    offset: a.len() as u64,
                    len: 96,
                    cause: Skip::NoFlag
                }),
                Out::Frame((a.len() + 96) as u64, vec![4]),
            ]
        );
    }

    #[test]
    fn drops_a_frame_with_bad_fcs_whole_and_finds_the_next() {
        let mut a = ui(&[1, 2, 3, 4]);
        let n = a.len();
        a[n - 4] ^= 0x40;
        let b = ui(&[9]);
        let out = run(&[&[a.clone(), b].concat()]);
        assert!(matches!(out[0], Out::Err(Error::BadFcs { offset: 0, .. })));
        assert_eq!(out[1], Out::Frame(n as u64, vec![9]));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_lost_byte_costs_only_the_damaged_frame() {
        let mut a = ui(&[7; 60]);
        a.remove(30);
        let b = ui(&[8; 5]);
        // With its own opening flag, the next frame's flag sits where the damaged frame should
        // close, so the FCS catches it.
        let out = run(&[&[a.clone(), b.clone()].concat()]);
        assert!(
            matches!(out[0], Out::Err(Error::BadFcs { offset: 0, .. })),
            "{out:?}"
        );
        assert_eq!(out[1], Out::Frame(a.len() as u64, vec![8; 5]));
        assert_eq!(out.len(), 2);
        // With a shared flag there is no closing flag at all: the bytes are skipped.
        let out = run(&[&[&a[..], &b[1..]].concat()]);
        assert!(
            matches!(
                out[0],
                Out::Err(Error::Skipped {
                    offset: 0,
                    cause: Skip::NoClosingFlag { .. },
                    ..
                })
            ),
            "{out:?}"
        );
        assert_eq!(out[1], Out::Frame(a.len() as u64 - 1, vec![8; 5]));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn reports_a_truncated_frame_at_the_end_of_input() {
        let a = ui(&[1, 2, 3]);
        assert_eq!(
            run(&[&a[..a.len() - 3]]),
            vec![Out::Err(Error::Truncated {
                offset: 0,
                len: (a.len() - 3) as u64
            })]
        );
    }

    #[test]
    fn idle_flags_are_not_errors() {
        let a = ui(&[1]);
        let input = [&[0x7E, 0x7E, 0x7E][..], &a, &[0x7E, 0x7E]].concat();
        assert_eq!(run(&[&input]), vec![Out::Frame(3, vec![1])]);
    }
}
