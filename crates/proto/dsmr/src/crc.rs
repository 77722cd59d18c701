//! The telegram checksum.
//!
//! DSMR 5.0.2 P1 §6.2: "CRC is a CRC16 value calculated over the preceding characters in the data
//! message (from "/" to "!" using the polynomial: x16+x15+x2+1)", LSB first, no initial value and
//! no final XOR: CRC-16/ARC (`0xA001` reflected). It is written as four upper-case hex digits;
//! some meters drop leading zeros (`!B9F`, vector `nl-dsmr5-warmtelink-unpadded-crc`).

use crate::Error;

const ARC: crc::Crc<u16, crc::Table<16>> = crc::Crc::<u16, crc::Table<16>>::new(&crc::CRC_16_ARC);

/// CRC-16/ARC of `data`.
pub fn crc16(data: &[u8]) -> u16 {
    ARC.checksum(data)
}

/// Checks `given` against the CRC of `data` (the bytes from `/` through `!`).
///
/// Builds with `cfg(fuzzing)` accept every CRC, so fuzzers reach the line grammar.
///
/// # Errors
/// [`Error::BadChecksum`] when they differ.
pub fn verify(data: &[u8], given: u16) -> Result<(), Error> {
    if cfg!(fuzzing) {
        return Ok(());
    }
    let computed = crc16(data);
    if computed == given {
        Ok(())
    } else {
        Err(Error::BadChecksum { given, computed })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn matches_the_crc_16_arc_check_value() {
        // The catalogue check value of CRC-16/ARC over "123456789".
        assert_eq!(crc16(b"123456789"), 0xBB3D);
    }

    #[test]
    fn rejects_a_wrong_checksum_with_both_values() {
        let data = b"123456789";
        assert_eq!(verify(data, 0xBB3D), Ok(()));
        assert_eq!(
            verify(data, 0x1234),
            Err(Error::BadChecksum {
                given: 0x1234,
                computed: 0xBB3D
            })
        );
    }
}
