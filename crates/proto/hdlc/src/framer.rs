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
//!
//! The buffering, the skipped-byte runs and the end of input are the generic
//! [`proto_stream::Framer`]'s; this module gives it the HDLC rules ([`Frames`]).

use proto_stream::{FrameFormat, Verdict};

use crate::error::{Error, Skip};
use crate::frame::{self, Check, Frame, Layout, FLAG};

pub use proto_stream::SKIP_REPORT_LEN;

/// Finds HDLC frames in a byte stream.
pub type Framer = proto_stream::Framer<Frames>;

/// The HDLC rules for the generic framer: frames start with a flag `7E` and are checked by
/// [`frame::check`]; the closing flag stays in the buffer, as it may open the next frame.
#[derive(Debug, Default, Clone, Copy)]
pub struct Frames;

impl FrameFormat for Frames {
    const START: u8 = FLAG;
    const SHARED_END: usize = 1;
    const NO_START: Skip = Skip::NoFlag;
    const TRUNCATED: Skip = Skip::Truncated;
    /// Where the fields are.
    type Meta = Layout;
    /// Expected and received FCS.
    type Mismatch = (u16, u16);
    type Skip = Skip;
    type Frame<'a> = Frame<'a>;
    type Error = Error;

    #[inline]
    fn check(buf: &[u8], eof: bool) -> Verdict<Layout, (u16, u16), Skip> {
        match frame::check(buf, eof) {
            Check::Frame(layout) => Verdict::Frame {
                len: layout.len,
                meta: layout,
            },
            Check::BadFcs {
                len,
                expected,
                actual,
            } => Verdict::Corrupt {
                len,
                mismatch: (expected, actual),
            },
            Check::Idle => Verdict::Idle,
            Check::Incomplete => Verdict::Incomplete,
            Check::Invalid(cause) => Verdict::Invalid(cause),
        }
    }

    fn frame(bytes: &[u8], offset: u64, layout: Layout) -> Frame<'_> {
        Frame::new_unchecked(bytes, offset, layout)
    }

    fn skipped(offset: u64, len: u64, cause: Skip) -> Error {
        Error::Skipped { offset, len, cause }
    }

    fn truncated(offset: u64, len: u64) -> Error {
        Error::Truncated { offset, len }
    }

    fn corrupt(offset: u64, (expected, actual): (u16, u16)) -> Error {
        Error::BadFcs {
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
