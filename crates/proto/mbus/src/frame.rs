//! One EN 13757-2 long frame: `68 L L 68 | C A CI data… | CS 16`.
//!
//! EN 13757-2 §5 (FT 1.2 long frame): L counts the bytes from C to the end of the user data
//! and is sent twice; CS is the arithmetic sum, modulo 256, of the same bytes; `16` ends the
//! frame. The L-field of a long frame is at least 3 (C, A and CI).
//!
//! Quirk: Sagemcom T210-D meters at Netz Niederösterreich (firmware before V0450) send a first
//! segment of 257 bytes with `L = 01`: only the low byte of the length. The checksum over the
//! 257 bytes and the stop byte after them are right. [`check`] therefore tries `L + 256` when
//! the frame does not end after `L` bytes, and accepts it only when stop byte and checksum
//! confirm it (vector `evn-netznoe-sagemcom-t210d-lfield-0101`).

use crate::error::Skip;

/// The start byte, sent twice.
pub const START: u8 = 0x68;
/// The stop byte.
pub const STOP: u8 = 0x16;
/// Bytes around C…data: `68 L L 68` before, `CS 16` after.
pub const OVERHEAD: usize = 6;
/// The smallest L-field of a long frame (C, A, CI).
pub const MIN_L: usize = 3;
/// The longest frame [`check`] accepts: an overflowed L-field (`L + 256`, L ≤ 255).
pub const MAX_FRAME_LEN: usize = OVERHEAD + 255 + 256;

/// Byte positions inside a frame (smoltcp-style field map).
mod field {
    use core::ops::RangeFrom;
    pub const L1: usize = 1;
    pub const C: usize = 4;
    pub const A: usize = 5;
    pub const CI: usize = 6;
    pub const DATA: RangeFrom<usize> = 7..;
}

/// The verdict of [`check`] on the bytes at the front of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A valid frame of `len` bytes (from the first `68` to the stop byte).
    Frame {
        /// Length of the whole frame.
        len: usize,
        /// True when the frame is 256 bytes longer than its L-field says.
        overflowed: bool,
    },
    /// Boundaries are right but the checksum is not; the frame has `len` bytes.
    BadChecksum {
        /// Length of the whole frame.
        len: usize,
        /// The checksum computed over C…data.
        expected: u8,
        /// The checksum received.
        actual: u8,
    },
    /// More bytes are needed to decide.
    Incomplete,
    /// The first byte does not start a valid frame.
    Invalid(Skip),
}

/// Looks at the front of `buf` and says whether it holds a complete valid frame.
///
/// `eof` says that no more bytes will follow, which turns "need more bytes" into
/// [`Check::Invalid`]`(`[`Skip::Truncated`]`)`. The verdict depends only on the bytes, never
/// on how many of the following bytes happen to be buffered, except that it may be
/// [`Check::Incomplete`] until enough have arrived.
///
/// The overflowed-length candidate (`L + 256`) is abandoned as soon as a complete valid frame
/// with a plain L-field is found entirely inside it: after a byte was lost inside a frame the
/// next frame is then found without waiting for 256 more bytes.
pub fn check(buf: &[u8], eof: bool) -> Check {
    let header = match buf.get(..4) {
        Some(h) => h,
        None if eof => return Check::Invalid(Skip::Truncated),
        None => return Check::Incomplete,
    };
    let (start, l1, l2, start2) = match *header {
        [a, b, c, d] => (a, b, c, d),
        _ => return Check::Incomplete,
    };
    if start != START {
        return Check::Invalid(Skip::NoStart);
    }
    if l1 != l2 {
        return Check::Invalid(Skip::LengthMismatch {
            first: l1,
            second: l2,
        });
    }
    if start2 != START {
        return Check::Invalid(Skip::NoSecondStart { found: start2 });
    }
    let l = usize::from(l1);
    let cause = if l >= MIN_L {
        match plain(buf, l) {
            Plain::Ok => {
                return Check::Frame {
                    len: l.saturating_add(OVERHEAD),
                    overflowed: false,
                }
            }
            Plain::BadChecksum { expected, actual } => {
                return Check::BadChecksum {
                    len: l.saturating_add(OVERHEAD),
                    expected,
                    actual,
                }
            }
            Plain::Incomplete if eof => return Check::Invalid(Skip::Truncated),
            Plain::Incomplete => return Check::Incomplete,
            Plain::BadStop(found) => Skip::BadStop { l: l1, found },
        }
    } else {
        Skip::ShortLength { l: l1 }
    };
    // The T210-D overflow: the real L is 256 more than the L-field.
    let long_l = l.saturating_add(256);
    let long_len = long_l.saturating_add(OVERHEAD);
    if contains_plain_frame(buf, long_len) {
        return Check::Invalid(cause);
    }
    match plain(buf, long_l) {
        Plain::Ok => Check::Frame {
            len: long_len,
            overflowed: true,
        },
        Plain::Incomplete if eof => Check::Invalid(if matches!(cause, Skip::ShortLength { .. }) {
            Skip::Truncated
        } else {
            cause
        }),
        Plain::Incomplete => Check::Incomplete,
        // An L-field below 3 cannot be a plain long frame, so a stop byte in the right place
        // is enough to call it a damaged overflowed frame.
        Plain::BadChecksum { expected, actual } if matches!(cause, Skip::ShortLength { .. }) => {
            Check::BadChecksum {
                len: long_len,
                expected,
                actual,
            }
        }
        Plain::BadStop(_) | Plain::BadChecksum { .. } => Check::Invalid(cause),
    }
}

enum Plain {
    Ok,
    BadChecksum { expected: u8, actual: u8 },
    BadStop(u8),
    Incomplete,
}

/// Checks stop byte and checksum for a frame of C…data length `l` at the front of `buf`.
fn plain(buf: &[u8], l: usize) -> Plain {
    let body_end = field::C.saturating_add(l);
    let (Some(body), Some(&cs), Some(&stop)) = (
        buf.get(field::C..body_end),
        buf.get(body_end),
        buf.get(body_end.saturating_add(1)),
    ) else {
        return Plain::Incomplete;
    };
    if stop != STOP {
        return Plain::BadStop(stop);
    }
    let expected = checksum(body);
    if checksum_matches(expected, cs) {
        Plain::Ok
    } else {
        Plain::BadChecksum {
            expected,
            actual: cs,
        }
    }
}

/// True when a complete valid frame with a plain L-field starts at some position 1.. and ends
/// within the first `region` bytes of `buf` (only bytes already buffered are considered).
fn contains_plain_frame(buf: &[u8], region: usize) -> bool {
    let window = buf.get(..region).unwrap_or(buf);
    let mut from = 1;
    while let Some(rest) = window.get(from..) {
        let Some(pos) = rest.iter().position(|&b| b == START) else {
            return false;
        };
        let at = from.saturating_add(pos);
        let Some(candidate) = window.get(at..) else {
            return false;
        };
        if let [START, l1, l2, START, ..] = *candidate {
            if l1 == l2
                && usize::from(l1) >= MIN_L
                && matches!(plain(candidate, l1.into()), Plain::Ok)
            {
                return true;
            }
        }
        from = at.saturating_add(1);
    }
    false
}

/// EN 13757-2: the checksum is the arithmetic sum of C, A, CI and the user data, modulo 256.
pub fn checksum(body: &[u8]) -> u8 {
    body.iter().fold(0u8, |acc, &b| acc.wrapping_add(b))
}

/// The one place where a checksum is compared; always true when fuzzing.
fn checksum_matches(expected: u8, actual: u8) -> bool {
    cfg!(fuzzing) || expected == actual
}

/// A checked long frame, borrowed from the buffer it was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    offset: u64,
    overflowed: bool,
}

impl<'a> Frame<'a> {
    /// Checks one complete frame, which must fill `bytes` exactly.
    ///
    /// # Errors
    /// The [`Check`] verdict when it is not [`Check::Frame`] of exactly `bytes.len()` bytes
    /// (trailing bytes give [`Check::Invalid`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Frame<'a>, Check> {
        match check(bytes, true) {
            Check::Frame { len, overflowed } if len == bytes.len() => Ok(Frame {
                bytes,
                offset: 0,
                overflowed,
            }),
            Check::Frame { .. } => Err(Check::Invalid(Skip::NoStart)),
            other => Err(other),
        }
    }

    /// A view of bytes already checked by [`check`].
    pub(crate) fn new_unchecked(bytes: &'a [u8], offset: u64, overflowed: bool) -> Self {
        Frame {
            bytes,
            offset,
            overflowed,
        }
    }

    /// The whole frame, start byte to stop byte.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Stream offset of the first byte (0 for [`Frame::parse`]).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The L-field as sent (the low byte only for an overflowed frame).
    pub fn l_field(&self) -> u8 {
        self.bytes.get(field::L1).copied().unwrap_or(0)
    }

    /// The real number of bytes from C to the end of the user data.
    pub fn body_len(&self) -> usize {
        self.bytes.len().saturating_sub(OVERHEAD)
    }

    /// True for a frame whose L-field overflowed (the real length is L + 256).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// The C (control) field, `53` (SND_UD) for the push meters.
    pub fn control(&self) -> u8 {
        self.bytes.get(field::C).copied().unwrap_or(0)
    }

    /// The A (address) field, `FF` (broadcast) for the push meters.
    pub fn address(&self) -> u8 {
        self.bytes.get(field::A).copied().unwrap_or(0)
    }

    /// The CI field.
    pub fn ci(&self) -> u8 {
        self.bytes.get(field::CI).copied().unwrap_or(0)
    }

    /// The user data after CI, without checksum and stop byte.
    pub fn data(&self) -> &'a [u8] {
        let end = self.bytes.len().saturating_sub(2);
        self.bytes.get(field::DATA.start..end).unwrap_or_default()
    }

    /// The checksum byte.
    pub fn checksum(&self) -> u8 {
        let at = self.bytes.len().saturating_sub(2);
        self.bytes.get(at).copied().unwrap_or(0)
    }
}

/// The user data of one frame can hold at most this many bytes (L ≤ 255).
pub const MAX_DATA_LEN: usize = 255 - MIN_L;

/// Appends a long frame with these fields to `out`.
///
/// # Errors
/// `Err(len)` when `data` is longer than [`MAX_DATA_LEN`]; nothing is written then.
pub fn emit(control: u8, address: u8, ci: u8, data: &[u8], out: &mut Vec<u8>) -> Result<(), usize> {
    let Some(l) = data
        .len()
        .checked_add(MIN_L)
        .and_then(|l| u8::try_from(l).ok())
    else {
        return Err(data.len());
    };
    let sum = checksum(data)
        .wrapping_add(control)
        .wrapping_add(address)
        .wrapping_add(ci);
    out.reserve(data.len().saturating_add(OVERHEAD + MIN_L));
    out.extend_from_slice(&[START, l, l, START, control, address, ci]);
    out.extend_from_slice(data);
    out.extend_from_slice(&[sum, STOP]);
    Ok(())
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    fn frame(ci: u8, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        emit(0x53, 0xFF, ci, data, &mut v).unwrap();
        v
    }

    #[test]
    fn emitted_frame_parses_back_to_its_fields() {
        let bytes = frame(0x11, &[0x01, 0x67, 0xAA, 0xBB]);
        assert_eq!(bytes[..4], [0x68, 7, 7, 0x68]);
        let f = Frame::parse(&bytes).unwrap();
        assert_eq!(f.control(), 0x53);
        assert_eq!(f.address(), 0xFF);
        assert_eq!(f.ci(), 0x11);
        assert_eq!(f.data(), &[0x01, 0x67, 0xAA, 0xBB]);
        assert_eq!(f.body_len(), 7);
        assert!(!f.overflowed());
        // EN 13757-2: sum of C, A, CI and data.
        assert_eq!(
            f.checksum(),
            (0x53u32 + 0xFF + 0x11 + 0x01 + 0x67 + 0xAA + 0xBB) as u8
        );
    }

    #[test]
    fn rejects_frame_with_bad_checksum() {
        let mut bytes = frame(0x10, &[1, 2, 3]);
        let n = bytes.len();
        bytes[n - 2] ^= 0xFF;
        assert!(matches!(
            check(&bytes, false),
            Check::BadChecksum { len, .. } if len == n
        ));
    }

    #[test]
    fn rejects_differing_length_bytes() {
        assert_eq!(
            check(&[0x68, 5, 6, 0x68], false),
            Check::Invalid(Skip::LengthMismatch {
                first: 5,
                second: 6
            })
        );
    }

    #[test]
    fn waits_for_the_rest_of_a_frame_unless_input_ended() {
        let bytes = frame(0x10, &[1, 2, 3]);
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(check(cut, false), Check::Incomplete);
        assert_eq!(check(cut, true), Check::Invalid(Skip::Truncated));
        assert_eq!(check(&bytes[..2], false), Check::Incomplete);
    }

    #[test]
    fn accepts_a_frame_whose_length_overflowed_when_the_checksum_confirms_it() {
        // 257 bytes C..data, sent with L = 01 like the T210-D.
        let data: Vec<u8> = (0..254u32).map(|i| (i * 7) as u8).collect();
        let mut bytes = vec![0x68, 0x01, 0x01, 0x68, 0x53, 0xFF, 0x00];
        bytes.extend_from_slice(&data);
        let cs = checksum(&bytes[4..]);
        bytes.extend_from_slice(&[cs, 0x16]);
        assert_eq!(bytes.len(), 263);
        assert_eq!(check(&bytes[..200], false), Check::Incomplete);
        let f = Frame::parse(&bytes).unwrap();
        assert!(f.overflowed());
        assert_eq!(f.l_field(), 1);
        assert_eq!(f.body_len(), 257);
        assert_eq!(f.data().len(), 254);
        // With a wrong checksum it is a damaged frame of that length.
        let mut bad = bytes.clone();
        bad[261] ^= 1;
        assert!(matches!(
            check(&bad, false),
            Check::BadChecksum { len: 263, .. }
        ));
        // Without the stop byte it is not a frame at all.
        bad[262] = 0;
        assert_eq!(
            check(&bad, false),
            Check::Invalid(Skip::ShortLength { l: 1 })
        );
    }

    #[test]
    fn gives_up_the_overflow_candidate_when_a_real_frame_lies_inside_it() {
        // A frame that lost a byte, followed by a good frame: the broken one must not make the
        // framer wait for L + 256 bytes.
        let mut broken = frame(0x00, &[9; 30]);
        broken.remove(20);
        let good = frame(0x11, &[1, 2]);
        let mut bytes = broken.clone();
        bytes.extend_from_slice(&good);
        assert!(matches!(
            check(&bytes, false),
            Check::Invalid(Skip::BadStop { l: 33, .. })
        ));
    }
}
