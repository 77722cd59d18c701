//! The streaming skeleton shared by the link layers of the DLMS push meters (M-Bus in
//! `proto-mbus`, HDLC in `proto-hdlc`).
//!
//! Sans-IO: bytes go in as they arrive from the line, in any chunking; frames, APDUs and
//! per-frame errors come out. What a frame is, how it is checked and how frames join into an
//! APDU stay in the protocol crates; this crate holds what both do the same way:
//! - [`framer`]: [`Framer`], generic over a [`FrameFormat`]: the stream buffer and its stream
//!   offsets, the search for the start byte, resynchronisation after garbage, the run of
//!   skipped bytes reported once (cut every [`SKIP_REPORT_LEN`] bytes), the end of input.
//! - [`decoder`]: [`Decoder`], generic over a [`Reassemble`]r: framer + reassembler, bytes in,
//!   APDUs out.
//! - [`assembly`]: [`Assembly`], the joined bytes and state (idle, collecting, complete) of
//!   the message a reassembler is building.
//! - [`ErrorKind`]: the layer an error belongs to.
//! - `testing` (feature `testing`): helpers for the protocol crates' tests, benches and fuzz
//!   targets.
//!
//! # Panics
//! No function of this crate panics, whatever the input: slicing is checked, arithmetic is
//! checked or saturating, and the lints below enforce it. After [`Framer::pop`] has returned
//! `None`, the framer holds no more than the format's longest frame.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod assembly;
pub mod decoder;
pub mod framer;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(test)]
mod toy;

pub use assembly::Assembly;
pub use decoder::{Decoder, Reassemble};
pub use framer::{FrameFormat, Framer, Verdict, SKIP_REPORT_LEN};

/// Which layer a link-layer error belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No valid frame boundaries: skipped garbage, truncated input.
    Framing,
    /// A frame with correct boundaries whose checksum or frame check sequence does not match.
    Checksum,
    /// Segments that cannot be joined into one APDU.
    Reassembly,
}
