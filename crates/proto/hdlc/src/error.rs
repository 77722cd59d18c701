//! Errors of the HDLC link layer. Every error names the stream offset (bytes since the decoder
//! was created or reset) where the problem starts.

use core::fmt;

pub use proto_stream::ErrorKind;

/// Why the first byte of a skipped run was not the start of a valid frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Skip {
    /// The byte is not a flag `7E` followed by a frame.
    NoFlag,
    /// The frame length is too small for addresses, control and FCS.
    BadLength {
        /// The 11-bit length.
        len: u16,
    },
    /// An address field without its terminating byte (LSB = 1) within 4 bytes, or longer than
    /// the frame.
    BadAddress,
    /// The header check sequence does not match: the header is not trusted, so the frame
    /// boundaries are unknown.
    BadHcs {
        /// The HCS computed.
        expected: u16,
        /// The HCS received.
        actual: u16,
    },
    /// No closing flag where the length says the frame ends.
    NoClosingFlag {
        /// The byte found there.
        found: u8,
    },
    /// The input ended inside a frame.
    Truncated,
}

/// An error of the HDLC link layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that do not belong to any valid frame were skipped. Consecutive skipped bytes are
    /// reported once (a run is cut every [`crate::framer::SKIP_REPORT_LEN`] bytes). Idle flags
    /// are not counted.
    Skipped {
        /// Stream offset of the first skipped byte.
        offset: u64,
        /// Number of skipped bytes.
        len: u64,
        /// Why the first skipped byte did not start a frame.
        cause: Skip,
    },
    /// The input ended inside a frame.
    Truncated {
        /// Stream offset of the frame's opening flag.
        offset: u64,
        /// Bytes of it that were received.
        len: u64,
    },
    /// Header, length and closing flag are right but the frame check sequence is not. The
    /// frame is dropped as a whole.
    BadFcs {
        /// Stream offset of the frame's opening flag.
        offset: u64,
        /// The FCS computed.
        expected: u16,
        /// The FCS received.
        actual: u16,
    },
    /// A segmented message was abandoned before its last segment: a frame that starts a new
    /// message (LLC header, or other addresses) arrived, or the input ended.
    Incomplete {
        /// Stream offset of the message's first frame.
        offset: u64,
        /// Segments received for it.
        segments: u32,
    },
    /// A segmented message grew beyond [`crate::segment::MAX_APDU_LEN`] bytes; it is
    /// dropped.
    TooLong {
        /// Stream offset of the message's first frame.
        offset: u64,
    },
}

impl Error {
    /// The layer this error belongs to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Skipped { .. } | Error::Truncated { .. } => ErrorKind::Framing,
            Error::BadFcs { .. } => ErrorKind::Checksum,
            Error::Incomplete { .. } | Error::TooLong { .. } => ErrorKind::Reassembly,
        }
    }

    /// The stream offset the error refers to.
    pub fn offset(&self) -> u64 {
        match *self {
            Error::Skipped { offset, .. }
            | Error::Truncated { offset, .. }
            | Error::BadFcs { offset, .. }
            | Error::Incomplete { offset, .. }
            | Error::TooLong { offset } => offset,
        }
    }
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Skip::NoFlag => f.write_str("no opening flag 7E"),
            Skip::BadLength { len } => write!(f, "frame length {len} too small"),
            Skip::BadAddress => f.write_str("address field not terminated within 4 bytes"),
            Skip::BadHcs { expected, actual } => write!(
                f,
                "header check sequence expected {expected:04X}, received {actual:04X}"
            ),
            Skip::NoClosingFlag { found } => {
                write!(
                    f,
                    "no closing flag where the length ends (found {found:02X})"
                )
            }
            Skip::Truncated => f.write_str("frame cut off by the end of input"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Skipped { offset, len, cause } => write!(
                f,
                "skipped {len} byte(s) at offset {offset} that are not a valid HDLC frame ({cause})"
            ),
            Error::Truncated { offset, len } => write!(
                f,
                "input ended inside an HDLC frame at offset {offset} ({len} byte(s) received)"
            ),
            Error::BadFcs {
                offset,
                expected,
                actual,
            } => write!(
                f,
                "HDLC frame at offset {offset}: FCS expected {expected:04X}, received {actual:04X}"
            ),
            Error::Incomplete { offset, segments } => write!(
                f,
                "segmented HDLC message starting at offset {offset} ended after {segments} segment(s) without a last segment"
            ),
            Error::TooLong { offset } => write!(
                f,
                "segmented HDLC message starting at offset {offset} is too long"
            ),
        }
    }
}

impl core::error::Error for Error {}
