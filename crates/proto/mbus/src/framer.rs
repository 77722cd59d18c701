//! The streaming frame finder.
//!
//! Push bytes as they arrive ([`Framer::push`]), then pop frames and errors until `None`
//! ([`Framer::pop`]). The output does not depend on how the input was chunked: every decision
//! is taken only once the bytes it depends on are buffered (or the input has ended, see
//! [`Framer::finish`]).
//!
//! Resynchronisation: a read that starts mid-frame, line noise or a lost byte leaves bytes that
//! are not a valid frame. The framer then skips one byte and searches again from the next `68`.
//! Consecutive skipped bytes are reported once, as [`Error::Skipped`] with the offset and count
//! (and why the first of them was rejected), right before the next frame or at the end of
//! input. A frame with correct boundaries but a wrong checksum is dropped whole and reported as
//! [`Error::BadChecksum`].

use crate::error::{Error, Skip};
use crate::frame::{self, Check, Frame, START};

/// A run of skipped bytes is reported at the latest when it reaches this length, so that a line
/// carrying only noise (wrong baud rate, wrong parity) still produces errors.
pub const SKIP_REPORT_LEN: u64 = 1024;

/// Finds M-Bus long frames in a byte stream.
#[derive(Debug, Default, Clone)]
pub struct Framer {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already consumed.
    start: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    /// The run of skipped bytes not reported yet.
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

    /// Marks the end of input: the next calls to [`pop`](Self::pop) report what is left (a
    /// truncated frame, skipped bytes) instead of waiting for more. Pushing again starts a new
    /// stretch of input at the same stream offset.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// Drops everything buffered and restarts at stream offset 0 (the link was reopened).
    pub fn reset(&mut self) {
        *self = Framer {
            buf: core::mem::take(&mut self.buf),
            ..Framer::default()
        };
        self.buf.clear();
    }

    /// Stream offset of the first byte not yet consumed.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// True after [`finish`](Self::finish) once everything buffered has been popped.
    pub fn at_end(&self) -> bool {
        self.eof && self.buffered() == 0 && self.skipped.is_none()
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
            let verdict = if avail.first() == Some(&START) {
                frame::check(avail, self.eof)
            } else {
                let run = avail
                    .iter()
                    .position(|&b| b == START)
                    .unwrap_or(avail.len());
                if let Some(report) = self.skip(run, Skip::NoStart) {
                    return Some(Err(report));
                }
                continue;
            };
            match verdict {
                Check::Incomplete => return None,
                Check::Invalid(cause) => {
                    if let Some(report) = self.skip(1, cause) {
                        return Some(Err(report));
                    }
                }
                Check::Frame { len, overflowed } => {
                    if let Some(s) = self.skipped.take() {
                        return Some(Err(s.into_error()));
                    }
                    let from = self.start;
                    let offset = self.offset;
                    self.consume(len);
                    let bytes = self
                        .buf
                        .get(from..from.saturating_add(len))
                        .unwrap_or_default();
                    return Some(Ok(Frame::new_unchecked(bytes, offset, overflowed)));
                }
                Check::BadChecksum {
                    len,
                    expected,
                    actual,
                } => {
                    if let Some(s) = self.skipped.take() {
                        return Some(Err(s.into_error()));
                    }
                    let offset = self.offset;
                    self.consume(len);
                    return Some(Err(Error::BadChecksum {
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

    /// Skips up to `n` bytes as garbage; returns the run to report when it reached
    /// [`SKIP_REPORT_LEN`].
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
        // n <= the buffered length, so it fits in usize.
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
    use crate::frame::emit;

    fn frame(ci: u8, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        emit(0x53, 0xFF, ci, data, &mut v).unwrap();
        v
    }

    #[derive(Debug, PartialEq)]
    enum Out {
        Frame(u64, Vec<u8>),
        Err(Error),
    }

    fn drain(f: &mut Framer, out: &mut Vec<Out>) {
        while let Some(r) = f.pop() {
            out.push(match r {
                Ok(fr) => Out::Frame(fr.offset(), fr.as_bytes().to_vec()),
                Err(e) => Out::Err(e),
            });
        }
    }

    fn run(chunks: &[&[u8]]) -> Vec<Out> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            drain(&mut f, &mut out);
        }
        f.finish();
        drain(&mut f, &mut out);
        out
    }

    #[test]
    fn finds_back_to_back_frames() {
        let a = frame(0x00, &[1, 0x67, 5]);
        let b = frame(0x11, &[1, 0x67, 6]);
        let all = [a.clone(), b.clone()].concat();
        assert_eq!(
            run(&[&all]),
            vec![Out::Frame(0, a.clone()), Out::Frame(a.len() as u64, b)]
        );
    }

    #[test]
    fn reports_garbage_before_a_frame_once_with_offset_and_length() {
        let a = frame(0x10, &[1, 0x67, 5]);
        let input = [&[0x00, 0x68, 0x16, 0xAA][..], &a].concat();
        assert_eq!(
            run(&[&input]),
            vec![
                Out::Err(Error::Skipped {
                    offset: 0,
                    len: 4,
                    cause: Skip::NoStart
                }),
                Out::Frame(4, a)
            ]
        );
    }

    #[test]
    fn resyncs_after_a_read_that_starts_mid_frame() {
        let a = frame(0x00, &[7; 40]);
        let b = frame(0x11, &[8; 10]);
        let input = [&a[17..], &b[..]].concat();
        let out = run(&[&input]);
        assert_eq!(out.len(), 2);
        assert!(
            matches!(out[0], Out::Err(Error::Skipped { offset: 0, len, .. }) if len == (a.len() - 17) as u64)
        );
        assert_eq!(out[1], Out::Frame((a.len() - 17) as u64, b));
    }

    #[test]
    fn reports_a_truncated_frame_at_the_end_of_input() {
        let a = frame(0x10, &[1, 0x67, 5]);
        let out = run(&[&a[..a.len() - 1]]);
        assert_eq!(
            out,
            vec![Out::Err(Error::Truncated {
                offset: 0,
                len: (a.len() - 1) as u64
            })]
        );
    }

    #[test]
    fn reports_garbage_and_a_truncated_frame_after_it_separately() {
        let a = frame(0x10, &[1, 0x67, 5]);
        let input = [&[1, 2, 3][..], &a[..a.len() - 2]].concat();
        assert_eq!(
            run(&[&input]),
            vec![
                Out::Err(Error::Skipped {
                    offset: 0,
                    len: 3,
                    cause: Skip::NoStart
                }),
                Out::Err(Error::Truncated {
                    offset: 3,
                    len: (a.len() - 2) as u64
                })
            ]
        );
    }

    #[test]
    fn drops_a_frame_with_bad_checksum_whole_and_finds_the_next() {
        let mut a = frame(0x00, &[1, 0x67, 5, 6]);
        let n = a.len();
        a[n - 2] = a[n - 2].wrapping_add(1);
        let b = frame(0x11, &[1, 0x67]);
        let out = run(&[&[a.clone(), b.clone()].concat()]);
        assert_eq!(
            out,
            vec![
                Out::Err(Error::BadChecksum {
                    offset: 0,
                    expected: a[n - 2].wrapping_sub(1),
                    actual: a[n - 2]
                }),
                Out::Frame(n as u64, b)
            ]
        );
    }

    #[test]
    fn a_lost_byte_costs_only_the_damaged_frame() {
        let mut a = frame(0x00, &[3; 200]);
        a.remove(100);
        let b = frame(0x11, &[4; 20]);
        let c = frame(0x10, &[5; 20]);
        let input = [a.clone(), b.clone(), c.clone()].concat();
        let out = run(&[&input]);
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(matches!(
            out[0],
            Out::Err(Error::Skipped { offset: 0, len, cause: Skip::BadStop { l: 203, .. } })
                if len == a.len() as u64
        ));
        assert_eq!(out[1], Out::Frame(a.len() as u64, b.clone()));
        // Byte by byte, the good frame is found as soon as it is complete.
        let mut f = Framer::new();
        let mut got = Vec::new();
        let upto = a.len() + b.len();
        for byte in &input[..upto] {
            f.push(&[*byte]);
            drain(&mut f, &mut got);
        }
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn noise_alone_is_reported_in_bounded_runs() {
        let noise = vec![0x55u8; 2500];
        let out = run(&[&noise]);
        assert_eq!(
            out,
            vec![
                Out::Err(Error::Skipped {
                    offset: 0,
                    len: 1024,
                    cause: Skip::NoStart
                }),
                Out::Err(Error::Skipped {
                    offset: 1024,
                    len: 1024,
                    cause: Skip::NoStart
                }),
                Out::Err(Error::Skipped {
                    offset: 2048,
                    len: 452,
                    cause: Skip::NoStart
                }),
            ]
        );
    }

    #[test]
    fn holds_less_than_one_frame_after_popping() {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for _ in 0..100 {
            f.push(&[0x68, 0xFA, 0xFA, 0x68, 1, 2, 3]);
            drain(&mut f, &mut out);
            assert!(f.buffered() < frame::MAX_FRAME_LEN);
        }
    }
}
