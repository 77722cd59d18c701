//! One HDLC frame of frame format type 3 (IEC 62056-46 §6.4, ISO/IEC 13239):
//!
//! ```text
//! 7E | format(2) | dst addr(1..4) | src addr(1..4) | control | HCS(2) | info… | FCS(2) | 7E
//! ```
//!
//! - format: `1010 S LLL LLLLLLLL`: type 3 (`A`), the segmentation bit S, and an 11-bit length
//!   counting the bytes between the flags (format to FCS). Lengths above 255 occur
//!   (L+G E360, Aidon: vectors `ch-lg-e360-hdlc-long-frame-plain`, `no-aidon-han-list2-plain`).
//! - addresses: variable length; every byte with LSB 0 is followed by another, the byte with
//!   LSB 1 ends the field (IEC 62056-46 §6.4.2). At most 4 bytes each.
//! - HCS: CRC-16/X.25 over format…control, present only when an information field follows.
//! - FCS: CRC-16/X.25 over format…info (HCS included), sent least significant byte first.
//!
//! Push meters do not escape `7E` inside frames (the length field makes it unnecessary), so no
//! byte stuffing is undone here.

use crc::{Crc, Table, CRC_16_IBM_SDLC};

use crate::error::Skip;

/// The flag that opens and closes a frame.
pub const FLAG: u8 = 0x7E;
/// Frame format type 3, in the high nibble of the first format byte.
pub const FORMAT_TYPE: u8 = 0xA0;
/// The segmentation bit in the first format byte.
pub const SEGMENTED: u8 = 0x08;
/// The largest value of the 11-bit length.
pub const MAX_LEN: usize = 0x7FF;
/// The longest frame including both flags.
pub const MAX_FRAME_LEN: usize = MAX_LEN + 2;
/// The smallest length: format (2), two 1-byte addresses, control, FCS (2).
pub const MIN_LEN: usize = 7;
/// Address fields are at most this long.
pub const MAX_ADDRESS_LEN: usize = 4;

/// CRC-16/X.25 (poly 0x1021 reflected, init and xorout 0xFFFF), the HCS and FCS of
/// IEC 62056-46 §6.4.3 / ISO/IEC 13239.
pub const CRC: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_IBM_SDLC);

/// The one place where a received HCS or FCS is compared; always true when fuzzing.
fn crc_matches(expected: u16, actual: u16) -> bool {
    cfg!(fuzzing) || expected == actual
}

/// An HDLC address field as sent: 1 to 4 bytes, the last with LSB 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Address {
    bytes: [u8; MAX_ADDRESS_LEN],
    len: u8,
}

impl Address {
    /// An address from its bytes as sent.
    ///
    /// # Errors
    /// `None` unless 1–4 bytes where only the last has LSB 1.
    pub fn from_bytes(raw: &[u8]) -> Option<Address> {
        let (last, init) = raw.split_last()?;
        if raw.len() > MAX_ADDRESS_LEN || last & 1 == 0 || init.iter().any(|b| b & 1 != 0) {
            return None;
        }
        let mut bytes = [0u8; MAX_ADDRESS_LEN];
        for (dst, src) in bytes.iter_mut().zip(raw) {
            *dst = *src;
        }
        Some(Address {
            bytes,
            len: u8::try_from(raw.len()).ok()?,
        })
    }

    /// The address bytes as sent.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }

    /// The address value: the 7-bit groups of the bytes, most significant first (e.g. client
    /// `CF` → 0x67, server `00 02 00 23` → upper 1, lower 0x11 → 0x4011).
    pub fn value(&self) -> u32 {
        self.as_bytes()
            .iter()
            .fold(0u32, |acc, b| (acc << 7) | u32::from(b >> 1))
    }
}

enum Field {
    Done(Address, usize),
    Incomplete,
    Invalid,
}

/// Parses an address field starting at `at`, which must end before `limit`.
fn address(buf: &[u8], at: usize, limit: usize) -> Field {
    for n in 1..=MAX_ADDRESS_LEN {
        let end = at.saturating_add(n);
        if end > limit {
            return Field::Invalid;
        }
        let Some(&b) = buf.get(end.saturating_sub(1)) else {
            return Field::Incomplete;
        };
        if b & 1 == 1 {
            return match buf.get(at..end).and_then(Address::from_bytes) {
                Some(a) => Field::Done(a, end),
                None => Field::Invalid,
            };
        }
    }
    Field::Invalid
}

/// The verdict of [`check`] on the bytes at the front of a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// A valid frame; `len` counts both flags.
    Frame(Layout),
    /// Header and closing flag are right, the FCS is not; the frame has `len` bytes with both
    /// flags.
    BadFcs {
        /// Length with both flags.
        len: usize,
        /// The FCS computed.
        expected: u16,
        /// The FCS received.
        actual: u16,
    },
    /// The flag at the front is idle fill (followed by another flag or by no frame format).
    Idle,
    /// More bytes are needed to decide.
    Incomplete,
    /// The front does not start a valid frame.
    Invalid(Skip),
}

/// Where the fields of a checked frame are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Length with both flags.
    pub len: usize,
    /// The segmentation bit.
    pub segmented: bool,
    /// Destination address.
    pub dst: Address,
    /// Source address.
    pub src: Address,
    /// The control field.
    pub control: u8,
    /// Start of the information field (index in the frame, flags included).
    pub info_start: usize,
    /// End of the information field (exclusive).
    pub info_end: usize,
}

/// Looks at the front of `buf`, which should start with a flag, and says whether it holds a
/// complete valid frame.
///
/// `eof` says that no more bytes will follow, which turns "need more bytes" into
/// [`Check::Invalid`]`(`[`Skip::Truncated`]`)`. The verdict depends only on the bytes, never on
/// how many of the following bytes happen to be buffered, except that it may be
/// [`Check::Incomplete`] until enough have arrived. The header is checked (HCS) before the rest
/// of the frame is awaited, so a false start costs no waiting.
pub fn check(buf: &[u8], eof: bool) -> Check {
    let need = |eof: bool| {
        if eof {
            Check::Invalid(Skip::Truncated)
        } else {
            Check::Incomplete
        }
    };
    match buf.first() {
        Some(&FLAG) => {}
        Some(_) => return Check::Invalid(Skip::NoFlag),
        None => return Check::Incomplete,
    }
    let f0 = match buf.get(1) {
        Some(&b) if b & 0xF0 == FORMAT_TYPE => b,
        Some(_) => return Check::Idle,
        None if eof => return Check::Idle,
        None => return Check::Incomplete,
    };
    let Some(&f1) = buf.get(2) else {
        return need(eof);
    };
    let len = (usize::from(f0 & 0x07) << 8) | usize::from(f1);
    if len < MIN_LEN {
        return Check::Invalid(Skip::BadLength {
            len: u16::try_from(len).unwrap_or(u16::MAX),
        });
    }
    // Indices in `buf`: content is 1..=len, FCS at len-1..=len, closing flag at len+1.
    let fcs_at = len.saturating_sub(1);
    let (dst, next) = match address(buf, 3, fcs_at) {
        Field::Done(a, n) => (a, n),
        Field::Incomplete => return need(eof),
        Field::Invalid => return Check::Invalid(Skip::BadAddress),
    };
    let (src, next) = match address(buf, next, fcs_at) {
        Field::Done(a, n) => (a, n),
        Field::Incomplete => return need(eof),
        Field::Invalid => return Check::Invalid(Skip::BadAddress),
    };
    let control_at = next;
    let header_end = control_at.saturating_add(1);
    if header_end > fcs_at {
        return Check::Invalid(Skip::BadLength {
            len: u16::try_from(len).unwrap_or(u16::MAX),
        });
    }
    let Some(&control) = buf.get(control_at) else {
        return need(eof);
    };
    let info_start = if header_end == fcs_at {
        // No information field, hence no HCS.
        header_end
    } else {
        let hcs_end = header_end.saturating_add(2);
        // An HCS is only sent in front of a non-empty information field.
        if hcs_end >= fcs_at {
            return Check::Invalid(Skip::BadLength {
                len: u16::try_from(len).unwrap_or(u16::MAX),
            });
        }
        let (Some(header), Some(hcs)) = (buf.get(1..header_end), buf.get(header_end..hcs_end))
        else {
            return need(eof);
        };
        let expected = CRC.checksum(header);
        let actual = le16(hcs);
        if !crc_matches(expected, actual) {
            return Check::Invalid(Skip::BadHcs { expected, actual });
        }
        hcs_end
    };
    let close_at = len.saturating_add(1);
    let Some(&close) = buf.get(close_at) else {
        return need(eof);
    };
    if close != FLAG {
        return Check::Invalid(Skip::NoClosingFlag { found: close });
    }
    let (Some(covered), Some(fcs)) = (buf.get(1..fcs_at), buf.get(fcs_at..close_at)) else {
        return need(eof);
    };
    let expected = CRC.checksum(covered);
    let actual = le16(fcs);
    let total = close_at.saturating_add(1);
    if !crc_matches(expected, actual) {
        return Check::BadFcs {
            len: total,
            expected,
            actual,
        };
    }
    Check::Frame(Layout {
        len: total,
        segmented: f0 & SEGMENTED != 0,
        dst,
        src,
        control,
        info_start,
        info_end: fcs_at,
    })
}

fn le16(b: &[u8]) -> u16 {
    match *b {
        [lo, hi] => u16::from_le_bytes([lo, hi]),
        _ => 0,
    }
}

/// A checked frame, borrowed from the buffer it was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    bytes: &'a [u8],
    offset: u64,
    layout: Layout,
}

impl<'a> Frame<'a> {
    /// Checks one complete frame, flags included, which must fill `bytes` exactly.
    ///
    /// # Errors
    /// The [`Check`] verdict when it is not a frame of exactly `bytes.len()` bytes.
    pub fn parse(bytes: &'a [u8]) -> Result<Frame<'a>, Check> {
        match check(bytes, true) {
            Check::Frame(layout) if layout.len == bytes.len() => Ok(Frame {
                bytes,
                offset: 0,
                layout,
            }),
            Check::Frame(_) => Err(Check::Invalid(Skip::NoFlag)),
            other => Err(other),
        }
    }

    pub(crate) fn new_unchecked(bytes: &'a [u8], offset: u64, layout: Layout) -> Self {
        Frame {
            bytes,
            offset,
            layout,
        }
    }

    /// The whole frame, opening flag to closing flag.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Stream offset of the opening flag (0 for [`Frame::parse`]).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The two format bytes (`A0xx`, `A8xx` for a segment that is not the last).
    pub fn format(&self) -> u16 {
        match self.bytes.get(1..3) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => 0,
        }
    }

    /// The 11-bit length: bytes between the flags.
    pub fn len_field(&self) -> usize {
        usize::from(self.format() & 0x07FF)
    }

    /// The segmentation bit: more segments of the same message follow.
    pub fn segmented(&self) -> bool {
        self.layout.segmented
    }

    /// Destination address (the client, for pushes).
    pub fn dst(&self) -> Address {
        self.layout.dst
    }

    /// Source address (the meter, for pushes).
    pub fn src(&self) -> Address {
        self.layout.src
    }

    /// The control field (`13`: UI frame with the final bit, `03`: UI frame without).
    pub fn control(&self) -> u8 {
        self.layout.control
    }

    /// True for frames that carry user data: I frames (control bit 0 = 0) and UI frames
    /// (control `03`/`13`). Supervisory and other unnumbered frames (RR, SNRM, UA…) do not.
    pub fn carries_data(&self) -> bool {
        let c = self.layout.control;
        c & 0x01 == 0 || c & 0xEF == 0x03
    }

    /// The information field (empty for frames without one).
    pub fn info(&self) -> &'a [u8] {
        self.bytes
            .get(self.layout.info_start..self.layout.info_end)
            .unwrap_or_default()
    }
}

/// Appends a frame with these fields to `out`, with HCS, FCS and both flags.
///
/// # Errors
/// `Err(len)` with the length the frame would need when it exceeds [`MAX_LEN`]; nothing is
/// written then.
pub fn emit(
    segmented: bool,
    dst: Address,
    src: Address,
    control: u8,
    info: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), usize> {
    let header = 2usize
        .saturating_add(dst.as_bytes().len())
        .saturating_add(src.as_bytes().len())
        .saturating_add(1);
    let len = if info.is_empty() {
        header.saturating_add(2)
    } else {
        header.saturating_add(4).saturating_add(info.len())
    };
    if len > MAX_LEN {
        return Err(len);
    }
    let start = out.len();
    out.reserve(len.saturating_add(2));
    out.push(FLAG);
    let seg = if segmented { SEGMENTED } else { 0 };
    // len <= 0x7FF: the high part fits in 3 bits.
    out.push(FORMAT_TYPE | seg | ((len >> 8) as u8 & 0x07));
    out.push((len & 0xFF) as u8);
    out.extend_from_slice(dst.as_bytes());
    out.extend_from_slice(src.as_bytes());
    out.push(control);
    if !info.is_empty() {
        let hcs = CRC.checksum(out.get(start.saturating_add(1)..).unwrap_or_default());
        out.extend_from_slice(&hcs.to_le_bytes());
        out.extend_from_slice(info);
    }
    let fcs = CRC.checksum(out.get(start.saturating_add(1)..).unwrap_or_default());
    out.extend_from_slice(&fcs.to_le_bytes());
    out.push(FLAG);
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

    fn addr(b: &[u8]) -> Address {
        Address::from_bytes(b).unwrap()
    }

    fn ui(info: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        emit(
            false,
            addr(&[0xCF]),
            addr(&[0x02, 0x23]),
            0x13,
            info,
            &mut v,
        )
        .unwrap();
        v
    }

    #[test]
    fn crc_is_x25() {
        // The CRC-16/X.25 check value.
        assert_eq!(CRC.checksum(b"123456789"), 0x906E);
    }

    #[test]
    fn emitted_frame_parses_back_to_its_fields() {
        let bytes = ui(&[0xE6, 0xE7, 0x00, 0x0F, 1, 2]);
        let f = Frame::parse(&bytes).unwrap();
        assert_eq!(f.format(), 0xA000 | (bytes.len() as u16 - 2));
        assert_eq!(f.dst().as_bytes(), &[0xCF]);
        assert_eq!(f.src().as_bytes(), &[0x02, 0x23]);
        assert_eq!(f.control(), 0x13);
        assert!(f.carries_data());
        assert!(!f.segmented());
        assert_eq!(f.info(), &[0xE6, 0xE7, 0x00, 0x0F, 1, 2]);
    }

    #[test]
    fn address_values_join_the_seven_bit_groups() {
        assert_eq!(addr(&[0xCF]).value(), 0x67);
        assert_eq!(addr(&[0x00, 0x02, 0x00, 0x23]).value(), 0x4011);
        assert!(Address::from_bytes(&[0x02]).is_none());
        assert!(Address::from_bytes(&[0x03, 0x03]).is_none());
        assert!(Address::from_bytes(&[0, 0, 0, 0, 1]).is_none());
    }

    #[test]
    fn a_frame_without_information_has_no_hcs() {
        let mut v = Vec::new();
        emit(false, addr(&[0x03]), addr(&[0x21]), 0x51, &[], &mut v).unwrap();
        assert_eq!(v.len(), 9);
        let f = Frame::parse(&v).unwrap();
        assert!(f.info().is_empty());
        assert!(!f.carries_data());
    }

    #[test]
    fn rejects_frame_with_bad_fcs() {
        let mut bytes = ui(&[1, 2, 3, 4]);
        let n = bytes.len();
        bytes[n - 4] ^= 0x01; // last info byte
        assert!(matches!(check(&bytes, false), Check::BadFcs { len, .. } if len == n));
    }

    #[test]
    fn rejects_a_header_whose_hcs_fails_before_waiting_for_the_rest() {
        let mut bytes = ui(&[5; 100]);
        bytes[4] ^= 0x02; // inside the source address
        assert!(matches!(
            check(&bytes[..12], false),
            Check::Invalid(Skip::BadHcs { .. })
        ));
    }

    #[test]
    fn waits_for_the_rest_of_a_frame_unless_input_ended() {
        let bytes = ui(&[5; 10]);
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(check(cut, false), Check::Incomplete);
        assert_eq!(check(cut, true), Check::Invalid(Skip::Truncated));
    }

    #[test]
    fn treats_repeated_flags_as_idle() {
        assert_eq!(check(&[0x7E, 0x7E, 0xA0], false), Check::Idle);
        assert_eq!(check(&[0x7E], true), Check::Idle);
        assert_eq!(check(&[0x7E], false), Check::Incomplete);
        assert_eq!(check(&[0x7E, 0x00], false), Check::Idle);
    }

    #[test]
    fn handles_the_eleven_bit_length_of_long_frames() {
        let info = vec![0x33; 400];
        let bytes = ui(&info);
        assert_eq!(bytes[1] & 0x07, 1);
        let f = Frame::parse(&bytes).unwrap();
        assert_eq!(f.len_field(), bytes.len() - 2);
        assert_eq!(f.info().len(), 400);
        let mut too_long = Vec::new();
        assert!(emit(
            false,
            addr(&[1]),
            addr(&[1]),
            0x13,
            &[0; 2100],
            &mut too_long
        )
        .is_err());
        assert!(too_long.is_empty());
    }

    #[test]
    fn rejects_an_hcs_without_information_after_it() {
        // format(2) + dst + src + control + HCS(2) + FCS(2) = 9: an HCS with nothing to guard.
        let mut v = vec![0x7E, 0xA0, 0x09, 0x03, 0x21, 0x13];
        let hcs = CRC.checksum(&v[1..]);
        v.extend_from_slice(&hcs.to_le_bytes());
        let fcs = CRC.checksum(&v[1..]);
        v.extend_from_slice(&fcs.to_le_bytes());
        v.push(0x7E);
        assert_eq!(check(&v, false), Check::Invalid(Skip::BadLength { len: 9 }));
    }

    #[test]
    fn rejects_an_unterminated_address() {
        let bytes = [0x7E, 0xA0, 0x20, 0x00, 0x02, 0x04, 0x06, 0x08, 0x0A];
        assert_eq!(check(&bytes, false), Check::Invalid(Skip::BadAddress));
    }
}
