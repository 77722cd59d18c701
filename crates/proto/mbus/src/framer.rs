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
//!
//! The buffering, the skipped-byte runs and the end of input are the generic
//! [`proto_stream::Framer`]'s; this module gives it the M-Bus rules ([`LongFrames`]).

use proto_stream::{FrameFormat, Verdict};

use crate::error::{Error, Skip};
use crate::frame::{self, Check, Frame, START};

pub use proto_stream::SKIP_REPORT_LEN;

/// Finds M-Bus long frames in a byte stream.
pub type Framer = proto_stream::Framer<LongFrames>;

/// The M-Bus rules for the generic framer: frames start with `68` and are checked by
/// [`frame::check`]; no byte is shared between two frames.
#[derive(Debug, Default, Clone, Copy)]
pub struct LongFrames;

impl FrameFormat for LongFrames {
    const START: u8 = START;
    const SHARED_END: usize = 0;
    const NO_START: Skip = Skip::NoStart;
    const TRUNCATED: Skip = Skip::Truncated;
    /// Whether the L-field overflowed.
    type Meta = bool;
    /// Expected and received checksum.
    type Mismatch = (u8, u8);
    type Skip = Skip;
    type Frame<'a> = Frame<'a>;
    type Error = Error;

    #[inline]
    fn check(buf: &[u8], eof: bool) -> Verdict<bool, (u8, u8), Skip> {
        match frame::check(buf, eof) {
            Check::Frame { len, overflowed } => Verdict::Frame {
                len,
                meta: overflowed,
            },
            Check::BadChecksum {
                len,
                expected,
                actual,
            } => Verdict::Corrupt {
                len,
                mismatch: (expected, actual),
            },
            Check::Incomplete => Verdict::Incomplete,
            Check::Invalid(cause) => Verdict::Invalid(cause),
        }
    }

    fn frame(bytes: &[u8], offset: u64, overflowed: bool) -> Frame<'_> {
        Frame::new_unchecked(bytes, offset, overflowed)
    }

    fn skipped(offset: u64, len: u64, cause: Skip) -> Error {
        Error::Skipped { offset, len, cause }
    }

    fn truncated(offset: u64, len: u64) -> Error {
        Error::Truncated { offset, len }
    }

    fn corrupt(offset: u64, (expected, actual): (u8, u8)) -> Error {
        Error::BadChecksum {
            offset,
            expected,
            actual,
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
