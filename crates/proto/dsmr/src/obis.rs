//! OBIS identifiers as written in P1 telegrams (IEC 62056-61 via DSMR 5.0.2 P1 §6.4):
//! `A-B:C.D.E`, leniently also with a sixth group as `*F` or `.F`.

use core::fmt;

/// An OBIS code: the six value groups A to F. DSMR writes five; F is then 255.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Obis(pub [u8; 6]);

impl Obis {
    /// Builds an OBIS code from six groups.
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8) -> Self {
        Obis([a, b, c, d, e, f])
    }

    /// The meter clock `0-0:1.0.0`.
    pub const CLOCK: Obis = Obis::new(0, 0, 1, 0, 0, 255);
    /// The P1 version `1-3:0.2.8`.
    pub const VERSION: Obis = Obis::new(1, 3, 0, 2, 8, 255);
    /// The power failure event log `1-0:99.97.0`.
    pub const POWER_FAILURE_LOG: Obis = Obis::new(1, 0, 99, 97, 0, 255);

    /// Parses `A-B:C.D.E`, `A-B:C.D.E*F` or `A-B:C.D.E.F`; each group 0..=255 in at most three
    /// decimal digits. `None` for anything else.
    pub fn parse(text: &str) -> Option<Obis> {
        let bytes = text.as_bytes();
        let mut out = [0, 0, 0, 0, 0, 255];
        let mut pos = 0;
        let separators = [Some(b'-'), Some(b':'), Some(b'.'), Some(b'.'), None];
        for (slot, separator) in out.iter_mut().zip(separators) {
            let (value, next) = group(bytes, pos)?;
            *slot = value;
            pos = next;
            if let Some(sep) = separator {
                if bytes.get(pos) != Some(&sep) {
                    return None;
                }
                pos = pos.checked_add(1)?;
            }
        }
        match bytes.get(pos) {
            None => {}
            Some(b'*' | b'.') => {
                let (f, end) = group(bytes, pos.checked_add(1)?)?;
                if end != bytes.len() {
                    return None;
                }
                if let Some(slot) = out.last_mut() {
                    *slot = f;
                }
            }
            Some(_) => return None,
        }
        Some(Obis(out))
    }

    /// The M-Bus channel of a DSMR object: value group B (`0-1:24.2.1` is channel 1).
    pub const fn channel(&self) -> u8 {
        self.0[1]
    }
}

/// One to three decimal digits at `pos`, at most 255: (value, offset after the digits).
fn group(bytes: &[u8], pos: usize) -> Option<(u8, usize)> {
    let mut value: u16 = 0;
    let mut end = pos;
    while let Some(&b) = bytes.get(end) {
        if !b.is_ascii_digit() {
            break;
        }
        if end.checked_sub(pos)? == 3 {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(u16::from(b.checked_sub(b'0')?))?;
        end = end.checked_add(1)?;
    }
    if end == pos {
        return None;
    }
    Some((u8::try_from(value).ok()?, end))
}

impl fmt::Display for Obis {
    /// The DSMR notation `A-B:C.D.E`, with `*F` when F is not 255.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a}-{b}:{c}.{d}.{e}")?;
        if g != 255 {
            write!(f, "*{g}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn parses_five_group_dsmr_codes_with_f_255() {
        assert_eq!(
            Obis::parse("1-0:1.8.1"),
            Some(Obis::new(1, 0, 1, 8, 1, 255))
        );
        assert_eq!(
            Obis::parse("0-2:24.2.1"),
            Some(Obis::new(0, 2, 24, 2, 1, 255))
        );
        assert_eq!(Obis::parse("1-3:0.2.8"), Some(Obis::VERSION));
    }

    #[test]
    fn accepts_a_sixth_group_after_star_or_dot() {
        assert_eq!(
            Obis::parse("1-0:1.8.0*101"),
            Some(Obis::new(1, 0, 1, 8, 0, 101))
        );
        assert_eq!(
            Obis::parse("1-0:1.8.0.7"),
            Some(Obis::new(1, 0, 1, 8, 0, 7))
        );
    }

    #[test]
    fn rejects_what_is_not_an_obis_code() {
        for s in [
            "",
            "1.8.0",
            "1-0:1.8",
            "1-0:1.8.256",
            "a-0:1.8.0",
            "1-0:1..0",
            "1-0:1.8.0.1.2",
        ] {
            assert_eq!(Obis::parse(s), None, "{s}");
        }
    }

    #[test]
    fn keeps_the_mbus_channel() {
        assert_eq!(Obis::parse("0-2:24.2.1").map(|o| o.channel()), Some(2));
        assert_eq!(Obis::new(0, 1, 24, 2, 1, 255).to_string(), "0-1:24.2.1");
    }
}
