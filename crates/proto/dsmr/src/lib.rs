//! DSMR P1: the smart meter "P1" customer port of the Dutch DSMR standard (versions 2.2 to
//! 5.0.2) and its relatives (Belgian e-MUCS, Luxembourg Smarty, Nordic and Austrian P1 ports).
//!
//! Sans-IO: bytes in, borrowed views out. No I/O, no clock, no async.
//!
//! # Layers
//! - [`Framer`] ([`framer`]): finds telegrams (`/` … `!CRC CR LF`) in a byte stream of any
//!   chunking; resynchronises on garbage; bounded buffer.
//! - [`Telegram`] ([`telegram`]): check, then parse one telegram; verifies the CRC-16/ARC
//!   ([`crc`]), accepts DSMR 2.2/3 telegrams without CRC as [`Checksum::Absent`].
//! - [`Line`], [`Object`], [`Group`] ([`line`](mod@line)): the lenient OBIS line grammar, with
//!   continuation lines, M-Bus channel lines, the power failure log; unknown lines are data.
//! - [`Number`], [`Timestamp`] ([`value`]): exact decimals and `YYMMDDhhmmssX` timestamps.
//!
//! - [`EncryptedFramer`] ([`encrypted`]): encrypted P1, a DSMR telegram inside a bare DLMS
//!   general-glo-ciphering APDU (Sagemcom T210-D-r of Energienetze Steiermark, Luxembourg
//!   Smarty). Decryption and tag verification come from `proto-dlms`.
//!
//! # Panics
//! Nothing in this crate panics on any input: no indexing, no unchecked arithmetic, no
//! `unwrap` (enforced by the lints below). Malformed input is an [`Error`] or an
//! [`Line::Unknown`].
//!
//! # Fuzzing
//! Built with `cfg(fuzzing)`, [`crc::verify`] accepts every CRC so fuzzers reach the grammar.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod crc;
pub mod encrypted;
mod error;
pub mod framer;
pub mod line;
mod obis;
mod scan;
pub mod telegram;
pub mod value;

pub use encrypted::{EncryptedError, EncryptedFramer};
pub use error::Error;
pub use framer::Framer;
pub use line::{Group, Groups, Line, Lines, Object, PowerFailure, PowerFailures};
pub use obis::Obis;
pub use telegram::{Checksum, Telegram};
pub use value::{decode_hex, Dst, Number, Timestamp};
