//! Fast byte search: the first byte of a small set, eight bytes per step (SWAR), in safe code.
//!
//! Telegram parsing is dominated by finding delimiters (`!`, line ends, group ends); a plain
//! `position` loop cannot be vectorised because it exits early.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// True when some byte of `word` is zero (the classic "haszero" test; exact, no false
/// positives after the byte-wise recheck below).
#[inline]
const fn has_zero(word: u64) -> bool {
    word.wrapping_sub(LO) & !word & HI != 0
}

/// Index of the first byte of `hay` that is one of `needles` (two or three of them; unused
/// slots repeat a needle).
#[inline]
pub(crate) fn find_any<const N: usize>(hay: &[u8], needles: [u8; N]) -> Option<usize> {
    let (a, b, c) = match needles.as_slice() {
        [a, b] => (*a, *b, *b),
        [a, b, c] => (*a, *b, *c),
        [a] => (*a, *a, *a),
        _ => return hay.iter().position(|x| needles.contains(x)),
    };
    let is = |x: &u8| *x == a || *x == b || *x == c;
    let (sa, sb, sc) = (
        u64::from(a).wrapping_mul(LO),
        u64::from(b).wrapping_mul(LO),
        u64::from(c).wrapping_mul(LO),
    );
    let mut chunks = hay.chunks_exact(8);
    let mut offset: usize = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        if has_zero(word ^ sa) || has_zero(word ^ sb) || has_zero(word ^ sc) {
            if let Some(i) = chunk.iter().position(is) {
                return offset.checked_add(i);
            }
        }
        offset = offset.saturating_add(8);
    }
    let i = chunks.remainder().iter().position(is)?;
    offset.checked_add(i)
}

/// Index of the first `needle` in `hay` (one test per eight bytes).
#[inline]
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    let splat = u64::from(needle).wrapping_mul(LO);
    let mut chunks = hay.chunks_exact(8);
    let mut offset: usize = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        if has_zero(word ^ splat) {
            if let Some(i) = chunk.iter().position(|&x| x == needle) {
                return offset.checked_add(i);
            }
        }
        offset = offset.saturating_add(8);
    }
    let i = chunks.remainder().iter().position(|&x| x == needle)?;
    offset.checked_add(i)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn finds_the_first_of_several_bytes_at_every_position() {
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![b'x'; len];
                hay[at] = b'!';
                if at + 3 < len {
                    hay[at + 3] = b'/';
                }
                assert_eq!(find_any(&hay, [b'!', b'/']), Some(at), "{len} {at}");
                assert_eq!(find_any(&hay, [b'/']), (at + 3 < len).then_some(at + 3));
            }
            assert_eq!(find_any(&vec![b'x'; len], [b'!']), None);
        }
        for len in 0..40 {
            for at in 0..len {
                let mut hay = vec![0xDA; len];
                hay[at] = 0xDB;
                if at + 2 < len {
                    hay[at + 2] = 0xDB;
                }
                assert_eq!(find_byte(&hay, 0xDB), Some(at), "{len} {at}");
            }
            assert_eq!(find_byte(&vec![0xDA; len], 0xDB), None);
        }
        // High bytes next to the needle must not confuse the zero-byte test.
        assert_eq!(find_byte(&[0x80, 0x21, 0xA1, 0x21], 0x21), Some(1));
        assert_eq!(find_byte(&[0xFF; 16], 0x7F), None);
        assert_eq!(find_any(&[0x80, 0x21, 0xA1, 0x21], [0x21]), Some(1));
        assert_eq!(find_any(&[0xFF; 16], [0x7F]), None);
    }
}
