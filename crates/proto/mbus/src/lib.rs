//! M-Bus link layer for DLMS/COSEM push meters: EN 13757-2 long frames and the DLMS transport
//! segmentation carried in their CI field.
//!
//! Sans-IO: bytes go in as they arrive from the line, in any chunking; frames, APDUs and
//! per-frame errors come out. No allocation per frame beyond the internal buffers, no tokio,
//! no knowledge of DLMS beyond the CI byte.
//!
//! # Layout
//! - [`frame`]: one long frame `68 L L 68 C A CI data… CS 16`: [`frame::check`],
//!   [`Frame`] (a checked view) and [`frame::emit`].
//! - [`framer`]: [`Framer`], the streaming frame finder: resynchronises after garbage, reports
//!   skipped bytes once, accepts the Sagemcom T210-D frame whose L-field overflowed. It is
//!   `proto-stream`'s generic framer with the M-Bus rules ([`framer::LongFrames`]).
//! - [`segment`]: [`Reassembler`], which joins the DLMS transport segments (CI low nibble =
//!   sequence number, bit 0x10 = last segment) and strips the `STSAP DTSAP` pair.
//! - [`decoder`]: [`Decoder`] = framer + reassembler: bytes in, complete APDUs out
//!   (`proto-stream`'s generic decoder).
//! - [`error`]: [`Error`], a small `Copy` enum with stream offsets.
//!
//! # Panics
//! No function of this crate panics, whatever the input: slicing is checked, arithmetic is
//! checked or saturating, and the lints below enforce it. Memory is bounded: after
//! [`Framer::pop`] has returned `None`, the framer holds less than one maximal frame
//! ([`frame::MAX_FRAME_LEN`] bytes), and a reassembled APDU is at most
//! [`segment::MAX_APDU_LEN`] bytes.
//!
//! # Fuzzing
//! Built with `--cfg fuzzing`, the checksum comparison always succeeds, so fuzzers reach the
//! code behind it.
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
pub use frame::Frame;
pub use framer::Framer;
pub use segment::{Apdu, Reassembler};
