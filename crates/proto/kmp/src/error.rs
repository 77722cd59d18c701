//! Errors of the KMP codec: small, `Copy`, no allocation, with the offsets and values needed
//! to explain a rejected frame.

use core::fmt;

/// Why a frame or a register could not be decoded.
///
/// Offsets count bytes from the start byte of the frame as it was received (stuffed), except
/// in [`Error::Truncated`], where they count bytes of the un-stuffed application data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Not a complete frame yet: no stop byte so far. Not an error, just "wait for more".
    Incomplete,
    /// The first byte is not the expected start byte.
    BadStart {
        /// The start byte this direction uses (`0x40` from the meter, `0x80` to it).
        expected: u8,
        /// The byte found.
        found: u8,
    },
    /// A start byte appeared before the stop byte: the previous frame was cut short.
    Truncated {
        /// Bytes of the cut frame, start byte included.
        len: usize,
    },
    /// The input ended inside a frame, before its stop byte.
    Unterminated {
        /// Bytes received of the frame, start byte included.
        len: usize,
    },
    /// The frame exceeds the longest frame the decoder accepts.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// An escape byte `1B` was followed by a byte that does not stand for one of the reserved
    /// bytes `06 0D 1B 40 80`.
    BadEscape {
        /// Offset of the `1B`.
        offset: usize,
        /// The byte after it.
        found: u8,
    },
    /// A reserved byte (`06 0D 1B 40 80`) appeared unescaped between start and stop byte.
    Unescaped {
        /// Its offset.
        offset: usize,
        /// The byte.
        found: u8,
    },
    /// An escape byte `1B` was the last byte before the stop byte.
    DanglingEscape {
        /// Offset of the `1B`.
        offset: usize,
    },
    /// Fewer bytes between start and stop than address, command id and CRC need.
    TooShort {
        /// Un-stuffed bytes between start and stop byte.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// The CRC does not match.
    BadCrc {
        /// CRC-16/XMODEM computed over address, command id and data.
        computed: u16,
        /// CRC sent in the frame.
        received: u16,
    },
    /// The destination address is not the one the request went to.
    UnexpectedAddress {
        /// The address that was asked.
        expected: u8,
        /// The address in the frame.
        found: u8,
    },
    /// The command id is not GetRegister (`0x10`).
    UnexpectedCommand {
        /// The command id in the frame.
        found: u8,
    },
    /// A register record runs past the end of the data.
    RecordTruncated {
        /// Offset of the record in the application data (after the command id).
        offset: usize,
        /// Bytes the record needs from that offset.
        needed: usize,
        /// Bytes that are left.
        available: usize,
    },
    /// A request asks for no register or for more than [`MAX_REGISTERS`](crate::MAX_REGISTERS).
    RegisterCount {
        /// The number of registers.
        count: usize,
    },
    /// A request's register count byte does not match the register ids that follow.
    RequestLength {
        /// The count byte.
        count: u8,
        /// Bytes of register ids that follow it.
        id_bytes: usize,
    },
}

impl Error {
    /// The layer that rejected the frame, for reports: `framing`, `checksum` or `apdu`.
    pub fn layer(&self) -> Layer {
        match self {
            Error::Incomplete
            | Error::BadStart { .. }
            | Error::Truncated { .. }
            | Error::Unterminated { .. }
            | Error::TooLong { .. }
            | Error::Unescaped { .. }
            | Error::BadEscape { .. }
            | Error::DanglingEscape { .. }
            | Error::TooShort { .. } => Layer::Framing,
            Error::BadCrc { .. } => Layer::Checksum,
            Error::UnexpectedAddress { .. }
            | Error::UnexpectedCommand { .. }
            | Error::RecordTruncated { .. }
            | Error::RegisterCount { .. }
            | Error::RequestLength { .. } => Layer::Application,
        }
    }
}

/// Which layer of KMP rejected a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// Physical layer: start/stop bytes, stuffing, lengths.
    Framing,
    /// Data link layer: the CRC.
    Checksum,
    /// Application layer: address, command id, register records.
    Application,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Incomplete => f.write_str("incomplete frame: no stop byte 0D yet"),
            Error::BadStart { expected, found } => {
                write!(
                    f,
                    "start byte at offset 0 is {found:02X}, expected {expected:02X}"
                )
            }
            Error::Truncated { len } => write!(
                f,
                "frame cut short: a new start byte came after {len} bytes, before the stop byte"
            ),
            Error::Unterminated { len } => write!(
                f,
                "input ended {len} bytes into a frame, before its stop byte"
            ),
            Error::Unescaped { offset, found } => write!(
                f,
                "reserved byte {found:02X} at offset {offset} is not escaped"
            ),
            Error::TooLong { max } => {
                write!(f, "no stop byte within {max} bytes after the start byte")
            }
            Error::BadEscape { offset, found } => write!(
                f,
                "escape byte 1B at offset {offset} is followed by {found:02X}, which stands for \
                 no reserved byte"
            ),
            Error::DanglingEscape { offset } => {
                write!(
                    f,
                    "escape byte 1B at offset {offset} directly before the stop byte"
                )
            }
            Error::TooShort { len, min } => write!(
                f,
                "{len} bytes between start and stop byte, at least {min} needed \
                 (address, command id, CRC)"
            ),
            Error::BadCrc { computed, received } => write!(
                f,
                "CRC mismatch: frame says {received:04X}, computed {computed:04X}"
            ),
            Error::UnexpectedAddress { expected, found } => {
                write!(f, "address {found:02X}, expected {expected:02X}")
            }
            Error::UnexpectedCommand { found } => {
                write!(f, "command id {found:02X}, expected 10 (GetRegister)")
            }
            Error::RecordTruncated {
                offset,
                needed,
                available,
            } => write!(
                f,
                "register record at data offset {offset} needs {needed} bytes, {available} left"
            ),
            Error::RegisterCount { count } => write!(
                f,
                "a GetRegister request holds 1 to {} registers, not {count}",
                crate::MAX_REGISTERS
            ),
            Error::RequestLength { count, id_bytes } => write!(
                f,
                "request announces {count} registers but carries {id_bytes} bytes of register ids"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Why a register's value could not be turned into a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueError {
    /// The mantissa does not fit a signed 128-bit integer.
    MantissaTooLarge {
        /// Mantissa bytes sent.
        len: usize,
    },
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ValueError::MantissaTooLarge { len } => {
                write!(f, "{len}-byte mantissa does not fit 127 bits")
            }
        }
    }
}

impl core::error::Error for ValueError {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn crc_errors_show_both_values_in_hex() {
        let e = Error::BadCrc {
            computed: 0xB25F,
            received: 0xB25E,
        };
        assert_eq!(
            e.to_string(),
            "CRC mismatch: frame says B25E, computed B25F"
        );
        assert_eq!(e.layer(), Layer::Checksum);
    }

    #[test]
    fn every_error_names_its_layer() {
        assert_eq!(Error::Incomplete.layer(), Layer::Framing);
        assert_eq!(
            Error::UnexpectedCommand { found: 1 }.layer(),
            Layer::Application
        );
    }
}
