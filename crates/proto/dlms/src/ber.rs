//! BER length fields as used by the APDU envelopes (general-glo-ciphering, general-block-transfer).
//!
//! ITU-T X.690 §8.1.3: a first byte below 0x80 is the length itself (short form); `0x81`,
//! `0x82`, `0x83` announce one, two or three big-endian length bytes (long form). The
//! indefinite form `0x80` and longer forms never occur in DLMS pushes and are rejected.

use crate::error::Error;

/// Reads the BER length starting at `offset`.
///
/// Returns `(length, bytes the length field occupies)`.
///
/// # Errors
/// [`Error::Incomplete`] when `buf` ends inside the length field, [`Error::BadLengthForm`] for
/// an unsupported first byte.
pub(crate) fn read_length(buf: &[u8], offset: usize) -> Result<(usize, usize), Error> {
    let rest = buf.get(offset..).unwrap_or(&[]);
    let Some((&first, tail)) = rest.split_first() else {
        return Err(Error::Incomplete { needed: None });
    };
    if first < 0x80 {
        return Ok((usize::from(first), 1));
    }
    let count = usize::from(first & 0x7F);
    if count == 0 || count > 3 {
        return Err(Error::BadLengthForm {
            offset,
            byte: first,
        });
    }
    let Some(bytes) = tail.get(..count) else {
        // The remaining length bytes are needed before anything else is known.
        return Err(Error::Incomplete {
            needed: count.checked_sub(tail.len()),
        });
    };
    let len = bytes
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    Ok((len, 1usize.saturating_add(count)))
}

/// Appends `len` as a BER length (shortest form).
///
/// # Errors
/// [`Error::BadLength`] when `len` does not fit in three length bytes.
pub(crate) fn write_length(out: &mut Vec<u8>, len: usize) -> Result<(), Error> {
    let [.., b2, b1, b0] = (len as u64).to_be_bytes();
    match len {
        0..=0x7F => out.push(b0),
        0x80..=0xFF => out.extend_from_slice(&[0x81, b0]),
        0x100..=0xFFFF => out.extend_from_slice(&[0x82, b1, b0]),
        0x1_0000..=0xFF_FFFF => out.extend_from_slice(&[0x83, b2, b1, b0]),
        _ => {
            return Err(Error::BadLength {
                offset: out.len(),
                declared: len,
                min: 0,
                max: 0xFF_FFFF,
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
    use super::*;

    #[test]
    fn reads_short_and_long_forms() {
        assert_eq!(read_length(&[0x4F], 0).unwrap(), (0x4F, 1));
        assert_eq!(read_length(&[0x81, 0xF8], 0).unwrap(), (248, 2));
        assert_eq!(read_length(&[0x82, 0x01, 0x55], 0).unwrap(), (341, 3));
        assert_eq!(
            read_length(&[0x83, 0x01, 0x00, 0x00], 0).unwrap(),
            (0x10000, 4)
        );
    }

    #[test]
    fn rejects_indefinite_and_four_byte_forms() {
        assert!(matches!(
            read_length(&[0x80], 0),
            Err(Error::BadLengthForm { byte: 0x80, .. })
        ));
        assert!(matches!(
            read_length(&[0x84, 0, 0, 0, 1], 0),
            Err(Error::BadLengthForm { .. })
        ));
    }

    #[test]
    fn truncated_length_field_is_incomplete() {
        assert_eq!(read_length(&[], 0), Err(Error::Incomplete { needed: None }));
        assert_eq!(
            read_length(&[0x82, 0x01], 0),
            Err(Error::Incomplete { needed: Some(1) })
        );
    }

    #[test]
    fn written_lengths_read_back() {
        for len in [0usize, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0xFF_FFFF] {
            let mut v = Vec::new();
            write_length(&mut v, len).unwrap();
            assert_eq!(read_length(&v, 0).unwrap(), (len, v.len()));
        }
        assert!(write_length(&mut Vec::new(), 0x100_0000).is_err());
    }
}
