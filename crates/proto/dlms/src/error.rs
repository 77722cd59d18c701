//! The one error type of the crate.
//!
//! Every variant belongs to exactly one decoding stage (see [`Error::stage_name`]), so an
//! adapter can report `<stage>: <detail>` without inspecting the variant. Offsets are byte
//! offsets into the buffer that was handed to the failing function. The type is `Copy` and
//! allocation-free; it never carries key material.

use core::fmt;

/// Everything that can go wrong while checking, decrypting or parsing a DLMS push.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not an error yet: more bytes are needed. `needed` is the number of additional bytes
    /// when it is known. Only returned by the `check_*` functions and by functions that
    /// call them on a buffer that may still grow. Stage: framing.
    Incomplete {
        /// How many more bytes are needed, when known.
        needed: Option<usize>,
    },
    /// A length field (BER length of an APDU, system-title length, date-time length, block
    /// length) holds a value outside the range the format allows. Stage: apdu.
    BadLength {
        /// Offset of the length field.
        offset: usize,
        /// The value the field declares.
        declared: usize,
        /// Smallest valid value.
        min: usize,
        /// Largest valid value.
        max: usize,
    },
    /// A BER length with a form this crate does not accept (indefinite `0x80`, or more than
    /// three length bytes). Stage: apdu.
    BadLengthForm {
        /// Offset of the first length byte.
        offset: usize,
        /// The first length byte.
        byte: u8,
    },
    /// A different APDU tag was expected at `offset`. Stage: apdu.
    UnexpectedTag {
        /// Offset of the tag.
        offset: usize,
        /// The tag that was expected.
        expected: u8,
        /// The tag that was found.
        actual: u8,
    },
    /// An APDU type this crate does not decode (anything but data-notification `0x0F`,
    /// general-glo-ciphering `0xDB` and general-block-transfer `0xE0`). Stage: apdu.
    UnknownApdu {
        /// The APDU tag.
        tag: u8,
    },
    /// A complete APDU was parsed but bytes follow it. Stage: apdu.
    TrailingBytes {
        /// Offset of the first unexpected byte.
        offset: usize,
        /// How many bytes follow.
        count: usize,
    },
    /// A complete APDU ends before its header or a fixed-size field does. Stage: apdu.
    ApduTruncated {
        /// Offset of the field that does not fit.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Bytes available from `offset` on.
        available: usize,
    },
    /// Unsupported security control byte: no protection, compression, or a suite other than
    /// 0/1 (AES-128-GCM). Stage: decryption.
    Unsupported(u8),
    /// The plaintext of a frame without a GCM tag does not parse as a data-notification: the
    /// key is probably wrong. Stage: decryption.
    ImplausiblePlaintext,
    /// An encrypted APDU arrived but no key is configured. Stage: decryption.
    MissingKey,
    /// The GCM tag does not verify with the given keys. Stage: authentication.
    AuthenticationFailed,
    /// Encryption with authentication was asked for without an authentication key.
    /// Stage: authentication.
    MissingAuthenticationKey,
    /// An A-XDR data type tag this crate does not know. Stage: data.
    UnknownDataType {
        /// The type tag.
        tag: u8,
        /// Offset of the tag.
        offset: usize,
    },
    /// A-XDR data runs past the end of the buffer. Stage: data.
    DataTruncated {
        /// Offset of the element that does not fit.
        offset: usize,
        /// Bytes the element needs from `offset` on (at least).
        needed: usize,
        /// Bytes available from `offset` on.
        available: usize,
    },
    /// A-XDR data nests deeper than [`crate::axdr::MAX_DEPTH`]. Stage: data.
    TooDeep {
        /// Offset of the element that exceeds the limit.
        offset: usize,
    },
    /// A-XDR data holds more values than [`crate::axdr::MAX_VALUES`] (possible only with
    /// compact-arrays of empty structures or arrays, whose elements take no bytes).
    /// Stage: data.
    TooManyValues {
        /// Offset of the element that exceeds the limit.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// A-XDR value that is well-formed but not valid for its type (a date-time with the
    /// wrong length, a compact-array type description that does not parse). Stage: data.
    InvalidData {
        /// Offset of the element.
        offset: usize,
    },
    /// The notification body does not have the shape of the requested positional
    /// [`crate::cosem::Layout`]. Stage: data.
    LayoutMismatch {
        /// Index of the first body element that does not fit (the element count when the
        /// body is too short or too long).
        position: usize,
        /// Number of elements in the body.
        elements: usize,
    },
    /// General-block-transfer block `actual` arrived where block `expected` was due.
    /// Stage: reassembly.
    BlockOutOfOrder {
        /// The block number that was due.
        expected: u16,
        /// The block number that arrived.
        actual: u16,
    },
    /// The reassembled APDU would exceed the size limit. Stage: reassembly.
    ReassemblyOverflow {
        /// The limit in bytes.
        limit: usize,
    },
}

impl Error {
    /// The decoding stage the error belongs to: one of `framing`, `reassembly`,
    /// `decryption`, `authentication`, `apdu`, `data`.
    pub fn stage_name(&self) -> &'static str {
        match self {
            Error::Incomplete { .. } => "framing",
            Error::BadLength { .. }
            | Error::BadLengthForm { .. }
            | Error::UnexpectedTag { .. }
            | Error::UnknownApdu { .. }
            | Error::TrailingBytes { .. }
            | Error::ApduTruncated { .. } => "apdu",
            Error::Unsupported(_) | Error::ImplausiblePlaintext | Error::MissingKey => "decryption",
            Error::AuthenticationFailed | Error::MissingAuthenticationKey => "authentication",
            Error::UnknownDataType { .. }
            | Error::DataTruncated { .. }
            | Error::TooDeep { .. }
            | Error::TooManyValues { .. }
            | Error::InvalidData { .. }
            | Error::LayoutMismatch { .. } => "data",
            Error::BlockOutOfOrder { .. } | Error::ReassemblyOverflow { .. } => "reassembly",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Incomplete { needed: Some(n) } => write!(f, "incomplete: {n} more bytes needed"),
            Error::Incomplete { needed: None } => f.write_str("incomplete: more bytes needed"),
            Error::BadLength {
                offset,
                declared,
                min,
                max,
            } => write!(
                f,
                "length {declared} at byte {offset} is outside the valid range {min}..={max}"
            ),
            Error::BadLengthForm { offset, byte } => {
                write!(
                    f,
                    "unsupported BER length form 0x{byte:02X} at byte {offset}"
                )
            }
            Error::UnexpectedTag {
                offset,
                expected,
                actual,
            } => write!(
                f,
                "expected tag 0x{expected:02X} at byte {offset}, found 0x{actual:02X}"
            ),
            Error::UnknownApdu { tag } => write!(f, "unsupported APDU type 0x{tag:02X}"),
            Error::TrailingBytes { offset, count } => {
                write!(
                    f,
                    "{count} unexpected bytes after the APDU at byte {offset}"
                )
            }
            Error::ApduTruncated { offset, needed, available } => write!(
                f,
                "APDU field at byte {offset} needs {needed} bytes, only {available} left"
            ),
            Error::MissingKey => f.write_str("the frame is encrypted but no key is configured"),
            Error::Unsupported(sc) => write!(f, "unsupported security control byte 0x{sc:02X}"),
            Error::ImplausiblePlaintext => f.write_str(
                "the decrypted frame is not a data-notification: the key is probably wrong",
            ),
            Error::AuthenticationFailed => {
                f.write_str("GCM tag does not verify (wrong authentication key or altered frame)")
            }
            Error::MissingAuthenticationKey => {
                f.write_str("an authentication key is required for this security control byte")
            }
            Error::UnknownDataType { tag, offset } => {
                write!(f, "unknown A-XDR data type 0x{tag:02X} at byte {offset}")
            }
            Error::DataTruncated {
                offset,
                needed,
                available,
            } => write!(
                f,
                "data element at byte {offset} needs {needed} bytes, only {available} left"
            ),
            Error::TooDeep { offset } => {
                write!(f, "data nests too deeply at byte {offset}")
            }
            Error::TooManyValues { offset, limit } => {
                write!(f, "more than {limit} data values, at byte {offset}")
            }
            Error::InvalidData { offset } => write!(f, "invalid data element at byte {offset}"),
            Error::LayoutMismatch { position, elements } => write!(
                f,
                "notification body of {elements} elements does not match the layout at element {position}"
            ),
            Error::BlockOutOfOrder { expected, actual } => write!(
                f,
                "general-block-transfer block {actual} arrived, block {expected} was due"
            ),
            Error::ReassemblyOverflow { limit } => {
                write!(f, "reassembled APDU would exceed {limit} bytes")
            }
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_name_is_one_of_the_documented_words() {
        let all = [
            Error::Incomplete { needed: None },
            Error::BadLength {
                offset: 0,
                declared: 0,
                min: 0,
                max: 0,
            },
            Error::BadLengthForm {
                offset: 0,
                byte: 0x80,
            },
            Error::UnexpectedTag {
                offset: 0,
                expected: 0,
                actual: 0,
            },
            Error::UnknownApdu { tag: 0 },
            Error::TrailingBytes {
                offset: 0,
                count: 0,
            },
            Error::ApduTruncated {
                offset: 0,
                needed: 1,
                available: 0,
            },
            Error::MissingKey,
            Error::LayoutMismatch {
                position: 0,
                elements: 0,
            },
            Error::Unsupported(0),
            Error::ImplausiblePlaintext,
            Error::AuthenticationFailed,
            Error::MissingAuthenticationKey,
            Error::UnknownDataType { tag: 0, offset: 0 },
            Error::DataTruncated {
                offset: 0,
                needed: 0,
                available: 0,
            },
            Error::TooDeep { offset: 0 },
            Error::TooManyValues {
                offset: 0,
                limit: 0,
            },
            Error::InvalidData { offset: 0 },
            Error::BlockOutOfOrder {
                expected: 0,
                actual: 0,
            },
            Error::ReassemblyOverflow { limit: 0 },
        ];
        let words = [
            "framing",
            "reassembly",
            "decryption",
            "authentication",
            "apdu",
            "data",
        ];
        for e in all {
            assert!(words.contains(&e.stage_name()), "{e:?}");
            assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn wrong_key_message_says_the_key_is_probably_wrong() {
        assert!(Error::ImplausiblePlaintext
            .to_string()
            .contains("key is probably wrong"));
    }
}
