//! Byte stuffing of the KMP physical layer.
//!
//! Kamstrup KMP §3.1: between the start byte and the stop byte, each of the reserved bytes
//! `06` (ACK), `0D` (stop), `1B` (escape), `40` (start from meter) and `80` (start to meter) is
//! sent as `1B` followed by the byte XOR `FF`. The CRC is computed before stuffing, and the CRC
//! bytes are stuffed too. So a reserved byte never appears inside a frame, which is what lets a
//! receiver find frame boundaries (and skip an IR head's echo) by looking for `40` and `0D`.

use crate::Error;

/// The escape byte.
pub const ESCAPE: u8 = 0x1B;

/// Bytes that never appear unescaped between start and stop byte.
pub const RESERVED: [u8; 5] = [0x06, 0x0D, ESCAPE, 0x40, 0x80];

/// True for a byte that must be escaped.
pub fn is_reserved(byte: u8) -> bool {
    RESERVED.contains(&byte)
}

/// Appends `bytes` to `out`, escaping reserved bytes.
pub fn stuff_into(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if is_reserved(b) {
            out.push(ESCAPE);
            out.push(b ^ 0xFF);
        } else {
            out.push(b);
        }
    }
}

/// `bytes` with reserved bytes escaped.
pub fn stuff(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len().saturating_add(4));
    stuff_into(bytes, &mut out);
    out
}

/// Reverses [`stuff`].
///
/// `offset` is added to the offsets in errors, so that they can count from the start byte of
/// the frame.
///
/// # Errors
/// [`Error::BadEscape`] when `1B` is followed by a byte that is not an escaped reserved byte,
/// [`Error::DanglingEscape`] when `1B` is the last byte, [`Error::Unescaped`] for a reserved
/// byte that is not escaped.
pub fn unstuff(bytes: &[u8], offset: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut it = bytes.iter().enumerate();
    while let Some((i, &b)) = it.next() {
        let at = offset.saturating_add(i);
        if b != ESCAPE {
            if is_reserved(b) {
                return Err(Error::Unescaped {
                    offset: at,
                    found: b,
                });
            }
            out.push(b);
            continue;
        }
        match it.next() {
            Some((_, &e)) if is_reserved(e ^ 0xFF) => out.push(e ^ 0xFF),
            Some((_, &e)) => {
                return Err(Error::BadEscape {
                    offset: at,
                    found: e,
                })
            }
            None => return Err(Error::DanglingEscape { offset: at }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn escapes_each_reserved_byte_as_1b_and_its_complement() {
        assert_eq!(
            stuff(&[0x06, 0x0D, 0x1B, 0x40, 0x80, 0x41]),
            [0x1B, 0xF9, 0x1B, 0xF2, 0x1B, 0xE4, 0x1B, 0xBF, 0x1B, 0x7F, 0x41]
        );
    }

    #[test]
    fn unstuffing_restores_every_byte_value() {
        let all: Vec<u8> = (0..=255).collect();
        let stuffed = stuff(&all);
        assert_eq!(stuffed.len(), 256 + RESERVED.len());
        assert!(!stuffed.iter().any(|&b| b != ESCAPE && is_reserved(b)));
        assert_eq!(unstuff(&stuffed, 0), Ok(all));
    }

    #[test]
    fn rejects_an_escape_of_an_ordinary_byte() {
        assert_eq!(
            unstuff(&[0x3F, 0x1B, 0x00], 1),
            Err(Error::BadEscape {
                offset: 2,
                found: 0x00
            })
        );
    }

    #[test]
    fn rejects_a_reserved_byte_that_is_not_escaped() {
        assert_eq!(
            unstuff(&[0x3F, 0x0D, 0x00], 1),
            Err(Error::Unescaped {
                offset: 2,
                found: 0x0D
            })
        );
    }

    #[test]
    fn rejects_an_escape_at_the_end() {
        assert_eq!(
            unstuff(&[0x3F, 0x1B], 1),
            Err(Error::DanglingEscape { offset: 2 })
        );
    }
}
