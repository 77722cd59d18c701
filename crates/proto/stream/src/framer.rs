//! The streaming frame finder, generic over the frame format.
//!
//! Push bytes as they arrive ([`Framer::push`]), then pop frames and errors until `None`
//! ([`Framer::pop`]). The output does not depend on how the input was chunked: every decision
//! is taken only once the bytes it depends on are buffered (or the input has ended, see
//! [`Framer::finish`]), provided the format's [`FrameFormat::check`] is equally patient.
//!
//! Resynchronisation: bytes that are not a valid frame (a read that starts mid-frame, line
//! noise, a lost byte) are skipped: a run up to the next [`FrameFormat::START`] byte at once,
//! a start byte that opens no valid frame one at a time. Consecutive skipped bytes are
//! reported once, with their offset and count and why the first of them was rejected, right
//! before the next frame or checksum error, after idle fill, at the end of input, or when the
//! run reaches [`SKIP_REPORT_LEN`]. A frame cut off by the end of input is reported on its own
//! (the format's `truncated` error), not merged into the garbage before it. A frame with
//! correct boundaries but a wrong checksum is dropped whole.

use core::fmt;

/// A run of skipped bytes is reported at the latest when it reaches this length, so that a line
/// carrying only noise (wrong baud rate, wrong parity) still produces errors.
pub const SKIP_REPORT_LEN: u64 = 1024;

/// What a [`FrameFormat`] says about the bytes at the front of the buffer, which start with
/// [`FrameFormat::START`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict<M, C, S> {
    /// A valid frame of `len` bytes.
    Frame {
        /// Length of the whole frame.
        len: usize,
        /// What the format learnt about it, handed to [`FrameFormat::frame`].
        meta: M,
    },
    /// Boundaries are right but the checksum is not; the frame has `len` bytes and is dropped
    /// whole.
    Corrupt {
        /// Length of the whole frame.
        len: usize,
        /// Expected and received checksum, handed to [`FrameFormat::corrupt`].
        mismatch: C,
    },
    /// The start byte is idle fill: dropped without being reported.
    Idle,
    /// More bytes are needed to decide.
    Incomplete,
    /// The start byte does not open a valid frame; it is skipped.
    Invalid(S),
}

/// One link layer's frame rules, as the [`Framer`] needs them.
pub trait FrameFormat {
    /// The byte every frame starts with.
    const START: u8;
    /// Bytes at the end of a frame left in the buffer because they may also open the next
    /// frame (HDLC's shared flag: 1; otherwise 0).
    const SHARED_END: usize;
    /// The skip cause of bytes that are not [`START`](Self::START).
    const NO_START: Self::Skip;
    /// The skip cause [`check`](Self::check) gives when the input ended inside a frame.
    const TRUNCATED: Self::Skip;

    /// What [`check`](Self::check) learns about a valid frame.
    type Meta: Copy + fmt::Debug;
    /// Expected and received checksum of a corrupt frame.
    type Mismatch: Copy + fmt::Debug;
    /// Why a byte did not start a valid frame.
    type Skip: Copy + PartialEq + fmt::Debug;
    /// A checked frame, borrowed from the framer's buffer.
    type Frame<'a>;
    /// The link layer's error.
    type Error;

    /// The verdict on `buf`, whose first byte is [`START`](Self::START). `eof` says that no
    /// more bytes will follow: instead of [`Verdict::Incomplete`] the format then says
    /// [`Verdict::Invalid`]`(`[`TRUNCATED`](Self::TRUNCATED)`)`.
    fn check(buf: &[u8], eof: bool) -> Verdict<Self::Meta, Self::Mismatch, Self::Skip>;
    /// The frame `bytes` found at stream offset `offset`, checked with the verdict `meta`.
    fn frame(bytes: &[u8], offset: u64, meta: Self::Meta) -> Self::Frame<'_>;
    /// The error for `len` skipped bytes at `offset`, the first of them for `cause`.
    fn skipped(offset: u64, len: u64, cause: Self::Skip) -> Self::Error;
    /// The error for a frame at `offset` cut off by the end of input after `len` bytes.
    fn truncated(offset: u64, len: u64) -> Self::Error;
    /// The error for a frame at `offset` whose checksum does not match.
    fn corrupt(offset: u64, mismatch: Self::Mismatch) -> Self::Error;
}

/// Finds the frames of format `F` in a byte stream.
pub struct Framer<F: FrameFormat> {
    buf: Vec<u8>,
    /// Bytes at the front of `buf` already consumed.
    start: usize,
    /// Stream offset of `buf[start]`.
    offset: u64,
    /// The run of skipped bytes not reported yet.
    skipped: Option<SkipRun<F::Skip>>,
    eof: bool,
}

/// A run of consecutive skipped bytes.
#[derive(Debug, Clone, Copy)]
struct SkipRun<S> {
    offset: u64,
    len: u64,
    cause: S,
}

impl<S: Copy + PartialEq> SkipRun<S> {
    fn into_error<F: FrameFormat<Skip = S>>(self) -> F::Error {
        if self.cause == F::TRUNCATED {
            F::truncated(self.offset, self.len)
        } else {
            F::skipped(self.offset, self.len, self.cause)
        }
    }
}

impl<F: FrameFormat> Default for Framer<F> {
    fn default() -> Self {
        Framer {
            buf: Vec::new(),
            start: 0,
            offset: 0,
            skipped: None,
            eof: false,
        }
    }
}

impl<F: FrameFormat> Clone for Framer<F> {
    fn clone(&self) -> Self {
        Framer {
            buf: self.buf.clone(),
            start: self.start,
            offset: self.offset,
            skipped: self.skipped,
            eof: self.eof,
        }
    }
}

impl<F: FrameFormat> fmt::Debug for Framer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framer")
            .field("buf", &self.buf)
            .field("start", &self.start)
            .field("offset", &self.offset)
            .field("skipped", &self.skipped)
            .field("eof", &self.eof)
            .finish()
    }
}

impl<F: FrameFormat> Framer<F> {
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

    /// Drops everything buffered and restarts at stream offset 0 (the link was reopened). The
    /// buffer's memory is kept.
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

    /// True after [`finish`](Self::finish) once everything buffered has been popped.
    pub fn at_end(&self) -> bool {
        self.eof && self.buffered() == 0 && self.skipped.is_none()
    }

    /// Bytes buffered and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// The next complete frame or error, or `None` when more bytes are needed.
    pub fn pop(&mut self) -> Option<Result<F::Frame<'_>, F::Error>> {
        loop {
            let avail = self.buf.get(self.start..).unwrap_or_default();
            if avail.is_empty() {
                return if self.eof {
                    self.skipped.take().map(|s| Err(s.into_error::<F>()))
                } else {
                    None
                };
            }
            if avail.first() != Some(&F::START) {
                let run = avail
                    .iter()
                    .position(|&b| b == F::START)
                    .unwrap_or(avail.len());
                if let Some(report) = self.skip(run, F::NO_START) {
                    return Some(Err(report));
                }
                continue;
            }
            match F::check(avail, self.eof) {
                Verdict::Incomplete => return None,
                Verdict::Idle => {
                    self.consume(1);
                    if let Some(s) = self.skipped.take() {
                        return Some(Err(s.into_error::<F>()));
                    }
                }
                Verdict::Invalid(cause) => {
                    if let Some(report) = self.skip(1, cause) {
                        return Some(Err(report));
                    }
                }
                Verdict::Frame { len, meta } => {
                    if let Some(s) = self.skipped.take() {
                        return Some(Err(s.into_error::<F>()));
                    }
                    let from = self.start;
                    let offset = self.offset;
                    self.consume(len.saturating_sub(F::SHARED_END));
                    let bytes = self
                        .buf
                        .get(from..from.saturating_add(len))
                        .unwrap_or_default();
                    return Some(Ok(F::frame(bytes, offset, meta)));
                }
                Verdict::Corrupt { len, mismatch } => {
                    if let Some(s) = self.skipped.take() {
                        return Some(Err(s.into_error::<F>()));
                    }
                    let offset = self.offset;
                    self.consume(len.saturating_sub(F::SHARED_END));
                    return Some(Err(F::corrupt(offset, mismatch)));
                }
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        self.offset = self.offset.saturating_add(n as u64);
    }

    /// Skips up to `n` bytes as garbage; returns an error to report now, if any.
    fn skip(&mut self, n: usize, cause: F::Skip) -> Option<F::Error> {
        // A frame cut off by the end of input is reported on its own, not merged into the
        // garbage before it.
        let flushed = match self.skipped {
            Some(run) if cause == F::TRUNCATED && run.cause != F::TRUNCATED => {
                self.skipped.take().map(SkipRun::into_error::<F>)
            }
            _ => None,
        };
        let run = self.skipped.get_or_insert(SkipRun {
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
            self.skipped.take().map(SkipRun::into_error::<F>)
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
    use crate::toy::{Cause, Error, Toy};

    #[derive(Debug, PartialEq)]
    enum Out {
        Frame(u64, Vec<u8>),
        Err(Error),
    }

    fn run(chunks: &[&[u8]]) -> Vec<Out> {
        let mut f = Framer::<Toy>::new();
        let mut out = Vec::new();
        let drain = |f: &mut Framer<Toy>, out: &mut Vec<Out>| {
            while let Some(r) = f.pop() {
                out.push(match r {
                    Ok((offset, bytes)) => Out::Frame(offset, bytes.to_vec()),
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
        assert!(f.at_end());
        out
    }

    #[test]
    fn skipped_bytes_idle_fill_corrupt_and_truncated_frames_are_reported_in_order() {
        let input = [
            &[1, 2, 0xAA, 0][..],   // garbage, then a start byte that opens no frame
            &[0xAA, 1, 7, 0xFF],    // frame at 4
            &[0xAA, 0xAA],          // idle fill
            &[0xAA, 2, 1, 2, 0x00], // corrupt frame at 10
            &[9, 9],                // garbage, flushed by the idle fill below
            &[0xAA, 0xAA],          // idle fill
            &[0xAA, 0, 0xAA, 3, 1], // garbage (at 19), then a frame cut off by the end (at 21)
        ]
        .concat();
        let want = vec![
            Out::Err(Error::Skipped(0, 4, Cause::NoStart)),
            Out::Frame(4, vec![0xAA, 1, 7, 0xFF]),
            Out::Err(Error::Corrupt(10, 0x00)),
            Out::Err(Error::Skipped(15, 2, Cause::NoStart)),
            Out::Err(Error::Skipped(19, 2, Cause::Zero)),
            Out::Err(Error::Truncated(21, 3)),
        ];
        assert_eq!(run(&[&input]), want);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(&bytes), want, "byte by byte");
    }

    #[test]
    fn noise_alone_is_reported_in_bounded_runs() {
        let out = run(&[&[0x55; 2100]]);
        assert_eq!(
            out,
            vec![
                Out::Err(Error::Skipped(0, 1024, Cause::NoStart)),
                Out::Err(Error::Skipped(1024, 1024, Cause::NoStart)),
                Out::Err(Error::Skipped(2048, 52, Cause::NoStart)),
            ]
        );
    }

    #[test]
    fn reset_restarts_at_offset_zero_and_pushing_after_finish_continues() {
        let mut f = Framer::<Toy>::new();
        f.push(&[1, 2, 3, 0xAA, 1]);
        assert_eq!(f.pop(), None);
        assert_eq!(f.offset(), 3);
        assert_eq!(f.buffered(), 2);
        f.reset();
        assert_eq!((f.offset(), f.buffered()), (0, 0));
        f.push(&[0xAA, 0]);
        f.finish();
        // `AA 00` opens no frame; the `00` after it joins the run.
        assert_eq!(f.pop(), Some(Err(Error::Skipped(0, 2, Cause::Zero))));
        f.push(&[0xAA, 1, 5, 0xFF]);
        assert_eq!(f.pop(), Some(Ok((2, &[0xAA, 1, 5, 0xFF][..]))));
        assert_eq!(f.pop(), None);
        assert!(!f.at_end());
    }
}
