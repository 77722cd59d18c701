//! Errors of the M-Bus link layer. Every error names the stream offset (bytes since the decoder
//! was created or reset) where the problem starts.

use core::fmt;

pub use proto_stream::ErrorKind;

/// Why the first byte of a skipped run was not the start of a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The byte is not the start byte `68`.
    NoStart,
    /// `68 L L` was not followed by the second start byte `68`.
    NoSecondStart {
        /// The byte found where the second `68` belongs.
        found: u8,
    },
    /// The two copies of the L-field differ.
    LengthMismatch {
        /// The first L byte.
        first: u8,
        /// The second L byte.
        second: u8,
    },
    /// The L-field is below 3 (C, A and CI are mandatory) and the frame was not an overflowed
    /// long frame either.
    ShortLength {
        /// The L-field.
        l: u8,
    },
    /// No stop byte `16` after L bytes (and not after L + 256 either).
    BadStop {
        /// The L-field.
        l: u8,
        /// The byte found where the stop byte belongs.
        found: u8,
    },
    /// The input ended inside a frame.
    Truncated,
}

/// An error of the M-Bus link layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that do not belong to any valid frame were skipped. Consecutive skipped bytes are
    /// reported once (a run is cut every [`crate::framer::SKIP_REPORT_LEN`] bytes so that a
    /// line carrying only noise is still reported).
    Skipped {
        /// Stream offset of the first skipped byte.
        offset: u64,
        /// Number of skipped bytes.
        len: u64,
        /// Why the first skipped byte did not start a frame.
        cause: Skip,
    },
    /// The input ended (see [`crate::Framer::finish`]) inside a frame.
    Truncated {
        /// Stream offset of the frame start.
        offset: u64,
        /// Bytes of it that were received.
        len: u64,
    },
    /// Start bytes, lengths and stop byte are right but the checksum is not. The frame is
    /// dropped as a whole.
    BadChecksum {
        /// Stream offset of the frame.
        offset: u64,
        /// The checksum computed over C, A, CI and data.
        expected: u8,
        /// The checksum byte received.
        actual: u8,
    },
    /// The CI field is not a DLMS transport segment (`00`–`1F`).
    NotDlms {
        /// Stream offset of the frame.
        offset: u64,
        /// The CI field.
        ci: u8,
    },
    /// A segment too short to hold the `STSAP DTSAP` pair.
    ShortSegment {
        /// Stream offset of the frame.
        offset: u64,
    },
    /// A segment arrived whose sequence number is not the one expected; the message it would
    /// belong to is dropped.
    OutOfOrder {
        /// Stream offset of the frame.
        offset: u64,
        /// The sequence number expected (0 when no message was in progress).
        expected: u8,
        /// The sequence number received.
        got: u8,
    },
    /// A message was abandoned before its last segment: a new first segment arrived, or the
    /// input ended.
    Incomplete {
        /// Stream offset of the message's first frame.
        offset: u64,
        /// Segments received for it.
        segments: u8,
    },
    /// The segments of one message name different transport SAPs.
    SapMismatch {
        /// Stream offset of the frame.
        offset: u64,
    },
}

impl Error {
    /// The layer this error belongs to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Skipped { .. } | Error::Truncated { .. } => ErrorKind::Framing,
            Error::BadChecksum { .. } => ErrorKind::Checksum,
            Error::NotDlms { .. }
            | Error::ShortSegment { .. }
            | Error::OutOfOrder { .. }
            | Error::Incomplete { .. }
            | Error::SapMismatch { .. } => ErrorKind::Reassembly,
        }
    }

    /// The stream offset the error refers to.
    pub fn offset(&self) -> u64 {
        match *self {
            Error::Skipped { offset, .. }
            | Error::Truncated { offset, .. }
            | Error::BadChecksum { offset, .. }
            | Error::NotDlms { offset, .. }
            | Error::ShortSegment { offset }
            | Error::OutOfOrder { offset, .. }
            | Error::Incomplete { offset, .. }
            | Error::SapMismatch { offset } => offset,
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Skip::NoStart => f.write_str("no start byte 68"),
            Skip::NoSecondStart { found } => {
                write!(f, "second start byte: expected 68, found {found:02X}")
            }
            Skip::LengthMismatch { first, second } => {
                write!(f, "L-field repeated as {first:02X} and {second:02X}")
            }
            Skip::ShortLength { l } => write!(f, "L-field {l} below 3"),
            Skip::BadStop { l, found } => write!(
                f,
                "no stop byte after L={l} (found {found:02X}) nor after L+256"
            ),
            Skip::Truncated => f.write_str("frame cut off by the end of input"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Skipped { offset, len, cause } => write!(
                f,
                "skipped {len} byte(s) at offset {offset} that are not a valid M-Bus frame ({cause})"
            ),
            Error::Truncated { offset, len } => write!(
                f,
                "input ended inside an M-Bus frame at offset {offset} ({len} byte(s) received)"
            ),
            Error::BadChecksum {
                offset,
                expected,
                actual,
            } => write!(
                f,
                "M-Bus frame at offset {offset}: checksum expected {expected:02X}, received {actual:02X}"
            ),
            Error::NotDlms { offset, ci } => write!(
                f,
                "M-Bus frame at offset {offset}: CI {ci:02X} is not a DLMS transport segment (00-1F)"
            ),
            Error::ShortSegment { offset } => write!(
                f,
                "M-Bus frame at offset {offset}: segment too short for STSAP/DTSAP"
            ),
            Error::OutOfOrder {
                offset,
                expected,
                got,
            } => write!(
                f,
                "M-Bus frame at offset {offset}: segment {got} where segment {expected} was expected"
            ),
            Error::Incomplete { offset, segments } => write!(
                f,
                "message starting at offset {offset} ended after {segments} segment(s) without a last segment"
            ),
            Error::SapMismatch { offset } => write!(
                f,
                "M-Bus frame at offset {offset}: transport SAPs differ from the message's first segment"
            ),
        }
    }
}

impl core::error::Error for Error {}
