//! Errors of the framer and the telegram parser.
//!
//! Small and `Copy`, no allocation: offsets and values, never text from the telegram.

use core::fmt;

/// Why bytes could not be turned into a telegram.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Not a complete telegram yet: more bytes are needed. Never an error of the input itself.
    Incomplete,
    /// The bytes do not start with `/`, the first byte of every telegram.
    NoStart,
    /// A telegram was cut short: a new `/` (or the end of the input) came before its `!`.
    /// `len` bytes of the partial telegram were dropped.
    Truncated {
        /// Bytes dropped, counted from the partial telegram's `/`.
        len: usize,
    },
    /// No `!` within the framer's buffer limit; the partial telegram was dropped.
    TooLong {
        /// The limit in bytes.
        max: usize,
    },
    /// The checksum line after `!` is not 0 to 4 hex digits followed by CR LF.
    BadCrcLine {
        /// Offset of the offending byte from the telegram's `/`.
        offset: usize,
    },
    /// The CRC-16/ARC over `/` … `!` does not match the one the telegram carries.
    BadChecksum {
        /// The CRC written after `!`.
        given: u16,
        /// The CRC computed over the received bytes.
        computed: u16,
    },
    /// A byte that is not ASCII text (invalid UTF-8) inside the telegram.
    NotText {
        /// Offset of the first invalid byte from the telegram's `/`.
        offset: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Incomplete => f.write_str("incomplete telegram, more bytes needed"),
            Error::NoStart => f.write_str("telegram does not start with '/'"),
            Error::Truncated { len } => write!(
                f,
                "telegram cut short: no '!' in the {len} bytes before the next '/' or the end of input"
            ),
            Error::TooLong { max } => write!(f, "no '!' within {max} bytes of the telegram start"),
            Error::BadCrcLine { offset } => write!(
                f,
                "checksum line is not 0-4 hex digits and CR LF (byte at offset {offset})"
            ),
            Error::BadChecksum { given, computed } => write!(
                f,
                "CRC-16 mismatch: telegram says {given:04X}, computed {computed:04X}"
            ),
            Error::NotText { offset } => {
                write!(f, "byte at offset {offset} is not ASCII text")
            }
        }
    }
}

impl core::error::Error for Error {}
