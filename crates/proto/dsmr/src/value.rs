//! What a value group holds: a decimal number, a timestamp, hex-encoded text.
//!
//! DSMR 5.0.2 P1 §6.4 writes numbers as fixed-width decimals (`000123.456`), timestamps as
//! `YYMMDDhhmmssX` where `X` is `S` (summer time) or `W` (winter time), and texts (equipment
//! ids, `0-0:96.13.0` messages) as hex-encoded octet strings.

use core::fmt;

/// An exact decimal number `mantissa × 10^exponent`, as written (`000123.450` keeps its three
/// decimals).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Number {
    /// The digits as an integer, with the sign.
    pub mantissa: i128,
    /// The power of ten: minus the number of digits after the point.
    pub exponent: i8,
}

impl Number {
    /// Parses an optional sign, digits and an optional point with more digits (`-0012.5`,
    /// `+7`, `.5`, `12.`). At most 38 digits. `None` for anything else (exponents, spaces).
    pub fn parse(text: &str) -> Option<Number> {
        let (negative, body) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..)?),
            Some(b'+') => (false, text.get(1..)?),
            _ => (false, text),
        };
        let mut mantissa: i128;
        let frac_len: usize;
        if body.len() <= 19 {
            // At most 19 digits: one pass, accumulated in u64 (19 nines fit).
            let mut m: u64 = 0;
            let mut point: Option<usize> = None;
            for (i, &b) in body.as_bytes().iter().enumerate() {
                if b.is_ascii_digit() {
                    m = m
                        .wrapping_mul(10)
                        .wrapping_add(u64::from(b.wrapping_sub(b'0')));
                } else if b == b'.' && point.is_none() {
                    point = Some(i);
                } else {
                    return None;
                }
            }
            let digits = body.len().saturating_sub(usize::from(point.is_some()));
            if digits == 0 {
                return None;
            }
            mantissa = i128::from(m);
            frac_len = point.map_or(0, |p| body.len().saturating_sub(p).saturating_sub(1));
        } else {
            let (int, frac) = body.split_once('.').unwrap_or((body, ""));
            let digits = int.len().checked_add(frac.len())?;
            if digits == 0 || digits > 38 {
                return None;
            }
            mantissa = 0;
            for b in int.bytes().chain(frac.bytes()) {
                if !b.is_ascii_digit() {
                    return None;
                }
                let d = i128::from(b.checked_sub(b'0')?);
                mantissa = mantissa.checked_mul(10)?.checked_add(d)?;
            }
            frac_len = frac.len();
        }
        if negative {
            mantissa = mantissa.checked_neg()?;
        }
        let exponent = i8::try_from(frac_len).ok()?.checked_neg()?;
        Some(Number { mantissa, exponent })
    }
}

impl fmt::Display for Number {
    /// The number with its written decimals (`12345e-3` is `12.345`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.unsigned_abs();
        if self.mantissa < 0 {
            f.write_str("-")?;
        }
        let frac = usize::from(self.exponent.unsigned_abs());
        if self.exponent >= 0 {
            write!(f, "{digits}")?;
            for _ in 0..frac {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let text = format!("{digits:0>width$}", width = frac.saturating_add(1));
        let split = text.len().saturating_sub(frac);
        match (text.get(..split), text.get(split..)) {
            (Some(int), Some(fr)) => write!(f, "{int}.{fr}"),
            _ => write!(f, "{text}"),
        }
    }
}

/// Whether a timestamp was taken in summer or winter time (the `X` of `YYMMDDhhmmssX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dst {
    /// `S`: summer time. In the DSMR countries (CET zone) this is CEST, UTC+02:00.
    Summer,
    /// `W`: winter time, CET, UTC+01:00.
    Winter,
    /// No flag (DSMR 2.2/3 M-Bus timestamps have twelve digits only).
    Unspecified,
}

/// A P1 timestamp `YYMMDDhhmmssX`: a local civil time and the summer/winter flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Year: 2000 + `YY`.
    pub year: u16,
    /// Month 1..=12.
    pub month: u8,
    /// Day 1..=31 (checked against the month).
    pub day: u8,
    /// Hour 0..=23.
    pub hour: u8,
    /// Minute 0..=59.
    pub minute: u8,
    /// Second 0..=59 (60 accepted for a leap second).
    pub second: u8,
    /// The summer/winter flag.
    pub dst: Dst,
}

impl Timestamp {
    /// Parses `YYMMDDhhmmss` followed by `S`, `W` or nothing. `None` when the fields are not a
    /// calendar date and time (the Fluvius placeholder `632525252525W` is not).
    pub fn parse(text: &str) -> Option<Timestamp> {
        let (digits, dst) = match text.len() {
            12 => (text, Dst::Unspecified),
            13 => match text.as_bytes().get(12) {
                Some(b'S') => (text.get(..12)?, Dst::Summer),
                Some(b'W') => (text.get(..12)?, Dst::Winter),
                _ => return None,
            },
            _ => return None,
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let two = |at: core::ops::Range<usize>| digits.get(at).and_then(|s| s.parse::<u8>().ok());
        let year = 2000u16.checked_add(u16::from(two(0..2)?))?;
        let t = Timestamp {
            year,
            month: two(2..4)?,
            day: two(4..6)?,
            hour: two(6..8)?,
            minute: two(8..10)?,
            second: two(10..12)?,
            dst,
        };
        let valid = (1..=12).contains(&t.month)
            && t.day >= 1
            && t.day <= days_in_month(t.year, t.month)
            && t.hour < 24
            && t.minute < 60
            && t.second <= 60;
        valid.then_some(t)
    }

    /// Minutes east of UTC implied by the flag: `S` → +120 (CEST), `W` → +60 (CET), `None`
    /// without a flag.
    pub const fn utc_offset_minutes(&self) -> Option<i16> {
        match self.dst {
            Dst::Summer => Some(120),
            Dst::Winter => Some(60),
            Dst::Unspecified => None,
        }
    }
}

impl fmt::Display for Timestamp {
    /// ISO 8601 with the offset the flag implies: `2020-04-26T22:33:25+02:00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        match self.dst {
            Dst::Summer => f.write_str("+02:00"),
            Dst::Winter => f.write_str("+01:00"),
            Dst::Unspecified => Ok(()),
        }
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Decodes hex-encoded text (`0-0:96.13.0` messages, equipment ids): `None` unless the text is
/// an even number of hex digits.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)?.checked_mul(16)?.checked_add(nibble(*lo)?)?),
            _ => None,
        })
        .collect()
}

fn nibble(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn parses_fixed_width_numbers_exactly() {
        assert_eq!(
            Number::parse("000123.450"),
            Some(Number {
                mantissa: 123450,
                exponent: -3
            })
        );
        assert_eq!(
            Number::parse("-0001.5"),
            Some(Number {
                mantissa: -15,
                exponent: -1
            })
        );
        assert_eq!(
            Number::parse("+7"),
            Some(Number {
                mantissa: 7,
                exponent: 0
            })
        );
        assert_eq!(
            Number::parse("2317482647"),
            Some(Number {
                mantissa: 2317482647,
                exponent: 0
            })
        );
        for bad in ["", "-", ".", "1e3", "1.2.3", " 1", "1,5", "0x10"] {
            assert_eq!(Number::parse(bad), None, "{bad}");
        }
        assert_eq!(Number::parse(&"9".repeat(39)), None);
        assert!(Number::parse(&"9".repeat(38)).is_some());
    }

    #[test]
    fn short_and_long_numbers_parse_alike_around_the_64_bit_path() {
        for digits in 1..=38 {
            for (int, frac) in [(digits, 0), (0, digits), (digits / 2, digits - digits / 2)] {
                let text = format!("-{}.{}", "9".repeat(int), "7".repeat(frac));
                let expected: i128 = format!("-{}{}", "9".repeat(int), "7".repeat(frac))
                    .parse()
                    .unwrap();
                assert_eq!(
                    Number::parse(&text),
                    Some(Number {
                        mantissa: expected,
                        exponent: -(frac as i8)
                    }),
                    "{text}"
                );
            }
        }
        for bad in [
            "12345678901234567x",
            "1234567890123456789x",
            "1.2.3",
            "..",
            "-.",
            "1-2",
            "1 2",
            "١",
            "1.2.3.4.5.6.7.8.9.0.1",
        ] {
            assert_eq!(Number::parse(bad), None, "{bad}");
        }
        for (text, mantissa, exponent) in [
            ("9999999999999999999", 9_999_999_999_999_999_999i128, 0),
            ("999999999999999999.9", 9_999_999_999_999_999_999, -1),
            ("-12.", -12, 0),
            ("+.5", 5, -1),
            ("0000000000000000000000.1", 1, -1),
        ] {
            assert_eq!(
                Number::parse(text),
                Some(Number { mantissa, exponent }),
                "{text}"
            );
        }
    }

    #[test]
    fn displays_numbers_with_their_written_decimals() {
        for s in ["123.450", "-1.5", "7", "0.007", "-0.050"] {
            assert_eq!(Number::parse(s).map(|n| n.to_string()).as_deref(), Some(s));
        }
        assert_eq!(
            Number::parse("000.000").map(|n| n.to_string()).as_deref(),
            Some("0.000")
        );
    }

    #[test]
    fn reads_summer_and_winter_flags_as_cest_and_cet() {
        let s = Timestamp::parse("200426223325S").unwrap();
        assert_eq!(
            (s.year, s.month, s.day, s.hour, s.minute, s.second),
            (2020, 4, 26, 22, 33, 25)
        );
        assert_eq!(s.utc_offset_minutes(), Some(120));
        assert_eq!(s.to_string(), "2020-04-26T22:33:25+02:00");
        let w = Timestamp::parse("161113205757W").unwrap();
        assert_eq!(w.utc_offset_minutes(), Some(60));
        assert_eq!(w.to_string(), "2016-11-13T20:57:57+01:00");
        let none = Timestamp::parse("161107190000").unwrap();
        assert_eq!(none.dst, Dst::Unspecified);
        assert_eq!(none.utc_offset_minutes(), None);
    }

    #[test]
    fn rejects_impossible_timestamps() {
        for bad in [
            "632525252525W",
            "230229000000W",
            "231301000000S",
            "2304011200X0S",
            "23040112000",
            "230401120000X",
            "",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
        assert!(Timestamp::parse("240229000000W").is_some());
    }

    #[test]
    fn decodes_hex_text() {
        assert_eq!(decode_hex("4B464D").as_deref(), Some(&b"KFM"[..]));
        assert_eq!(decode_hex("").as_deref(), Some(&b""[..]));
        assert_eq!(decode_hex("4B4"), None);
        assert_eq!(decode_hex("4G"), None);
    }
}
