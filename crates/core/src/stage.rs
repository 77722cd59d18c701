//! Where in the decoding pipeline a frame failed.

use std::fmt;

/// The stage of the pipeline at which a frame was rejected. Printed by `decode` as
/// `error: <stage>: <detail>` and used as a metrics label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// No valid frame boundaries (start/stop bytes, lengths, truncated input).
    Framing,
    /// A link-layer checksum or CRC did not match.
    Checksum,
    /// Segments or blocks could not be put back together.
    Reassembly,
    /// Decryption failed or produced garbage (wrong key).
    Decryption,
    /// The authentication tag did not verify.
    Authentication,
    /// The application PDU is malformed or of an unexpected kind.
    Apdu,
    /// The values inside a well-formed PDU could not be interpreted.
    Data,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 7] = [
        Stage::Framing,
        Stage::Checksum,
        Stage::Reassembly,
        Stage::Decryption,
        Stage::Authentication,
        Stage::Apdu,
        Stage::Data,
    ];

    /// The lowercase name used in messages and metrics.
    pub fn as_str(&self) -> &'static str {
        match self {
            Stage::Framing => "framing",
            Stage::Checksum => "checksum",
            Stage::Reassembly => "reassembly",
            Stage::Decryption => "decryption",
            Stage::Authentication => "authentication",
            Stage::Apdu => "apdu",
            Stage::Data => "data",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A frame that could not be turned into a reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    /// Where it failed.
    pub stage: Stage,
    /// What was wrong, for humans: names byte offsets and expected/actual values where known.
    /// Never contains key material.
    pub detail: String,
}

impl FrameError {
    /// A new error.
    pub fn new(stage: Stage, detail: impl Into<String>) -> Self {
        FrameError {
            stage,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.stage, self.detail)
    }
}

impl std::error::Error for FrameError {}
