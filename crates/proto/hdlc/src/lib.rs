//! HDLC link layer for DLMS/COSEM push meters (IEC 62056-46, frame format type 3 of
//! ISO/IEC 13239).
//!
//! Sans-IO: bytes go in as they arrive from the line, in any chunking; frames, APDUs and
//! per-frame errors come out. No tokio, no knowledge of DLMS: the APDUs popped here may be
//! whole `data-notification`s, ciphered APDUs or General-Block-Transfer blocks (`E0 …`);
//! joining GBT blocks is the DLMS layer's job.
//!
//! # Layout
//! - [`frame`]: one frame `7E | A0/A8 len | dst | src | control | HCS | info | FCS | 7E`:
//!   [`frame::check`], [`Frame`] (a checked view), [`frame::emit`] and the CRC-16/X.25.
//! - [`framer`]: [`Framer`], the streaming frame finder: resynchronises after garbage,
//!   reports skipped bytes once, tolerates shared and repeated flags. It is `proto-stream`'s
//!   generic framer with the HDLC rules ([`framer::Frames`]).
//! - [`segment`]: [`Reassembler`], which joins frames sent with the segmentation bit and
//!   strips the LLC header `E6 E7 00`.
//! - [`decoder`]: [`Decoder`] = framer + reassembler: bytes in, APDUs out (`proto-stream`'s
//!   generic decoder).
//! - [`error`]: [`Error`], a small `Copy` enum with stream offsets.
//!
//! # Panics
//! No function of this crate panics, whatever the input: slicing is checked, arithmetic is
//! checked or saturating, and the lints below enforce it. Memory is bounded: after
//! [`Framer::pop`] has returned `None`, the framer holds less than one maximal frame
//! ([`frame::MAX_FRAME_LEN`] bytes); a reassembled APDU is at most
//! [`segment::MAX_APDU_LEN`] bytes.
//!
//! # Fuzzing
//! Built with `--cfg fuzzing`, HCS and FCS comparisons always succeed, so fuzzers reach the
//! code behind them.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod decoder;
pub mod error;
pub mod frame;
pub mod framer;
pub mod segment;

pub use decoder::Decoder;
pub use error::{Error, ErrorKind, Skip};
pub use frame::{Address, Frame};
pub use framer::Framer;
pub use segment::{Apdu, Reassembler};
