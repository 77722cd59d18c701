//! `smart-meter decode`: decode captured bytes offline, one reading JSON per frame on stdout,
//! one `error: <stage>: <detail>` line per failure on stderr.

use std::io::{Read, Write};

use smart_meter_core::MeterId;
use smart_meter_sources::protocol::Output;
use smart_meter_sources::transport::file::capture_bytes;
use smart_meter_sources::ProtocolConfig;

/// Totals of a decode run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Readings printed.
    pub readings: usize,
    /// Errors printed.
    pub errors: usize,
}

/// Reads `input` (a path, or `-` for stdin) fully.
///
/// # Errors
/// The file cannot be read.
pub fn read_input(input: &str) -> std::io::Result<Vec<u8>> {
    if input == "-" {
        let mut buf = Vec::new();
        std::io::stdin().lock().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(input)
    }
}

/// Decodes `raw` (hex text or bytes) with `protocol` and writes readings to `out` and errors to
/// `err`.
///
/// # Errors
/// Writing to `out` or `err` failed.
pub fn decode(
    protocol: &ProtocolConfig,
    meter: MeterId,
    raw: &[u8],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<Summary> {
    let mut summary = Summary::default();
    let bytes = match capture_bytes(raw) {
        Ok(b) => b,
        Err(e) => {
            writeln!(err, "error: framing: {e}")?;
            summary.errors += 1;
            return Ok(summary);
        }
    };
    let mut p = protocol.build(meter);
    let mut results: Output = Vec::new();
    p.on_bytes(&bytes, &mut results);
    p.finish(&mut results);
    for r in results {
        match r {
            Ok(reading) => {
                writeln!(out, "{}", reading.to_json())?;
                summary.readings += 1;
            }
            Err(e) => {
                writeln!(err, "error: {}: {}", e.stage, e.detail)?;
                summary.errors += 1;
            }
        }
    }
    Ok(summary)
}
