//! KMP register values: the base-10 floating point format and the calendar formats.
//!
//! Kamstrup KMP §4.2: a value is a length byte `len`, a sign/exponent byte SIEX and `len`
//! mantissa bytes, big-endian unsigned. SIEX bit 7 is the sign of the value, bit 6 the sign of
//! the exponent, bits 0–5 the exponent. Value = (−1)^bit7 × mantissa × 10^(±exponent). Example
//! (PyKMP): `02 43 00 FB` is 251 × 10^−3 = 0.251. Decoded exactly, never through a float.

use core::fmt;

use crate::ValueError;

/// SIEX bit 7: the value is negative.
const SIGN: u8 = 0x80;
/// SIEX bit 6: the exponent is negative.
const EXPONENT_SIGN: u8 = 0x40;
/// SIEX bits 0–5: the exponent.
const EXPONENT: u8 = 0x3F;

/// An exact decimal `mantissa × 10^exponent`, as sent (not normalised: `0000D6DE` with
/// exponent −3 stays 55006e−3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Number {
    /// The signed mantissa.
    pub mantissa: i128,
    /// The power of ten, −63..=63.
    pub exponent: i8,
}

impl Number {
    /// Decodes a SIEX byte and its big-endian mantissa bytes.
    ///
    /// # Errors
    /// [`ValueError::MantissaTooLarge`] when the mantissa does not fit 127 bits.
    pub fn from_siex(siex: u8, mantissa: &[u8]) -> Result<Number, ValueError> {
        let mut m: u128 = 0;
        for &b in mantissa {
            m = m
                .checked_mul(256)
                .and_then(|m| m.checked_add(u128::from(b)))
                .ok_or(ValueError::MantissaTooLarge {
                    len: mantissa.len(),
                })?;
        }
        let m = i128::try_from(m).map_err(|_| ValueError::MantissaTooLarge {
            len: mantissa.len(),
        })?;
        // `m` is non-negative, so the negation cannot overflow.
        let mantissa = if siex & SIGN != 0 {
            m.saturating_neg()
        } else {
            m
        };
        // Bits 0–5 are at most 63 and fit i8 with either sign.
        let e = i8::try_from(siex & EXPONENT).unwrap_or(0);
        let exponent = if siex & EXPONENT_SIGN != 0 {
            e.saturating_neg()
        } else {
            e
        };
        Ok(Number { mantissa, exponent })
    }

    /// The SIEX byte and the mantissa bytes for this number, the mantissa left-padded with
    /// zeros to `len` bytes. `None` when the exponent is outside −63..=63 or the mantissa
    /// needs more than `len` bytes.
    pub fn to_siex(&self, len: u8) -> Option<(u8, Vec<u8>)> {
        let exp = self.exponent.unsigned_abs();
        if exp > EXPONENT {
            return None;
        }
        let mut siex = exp;
        if self.exponent < 0 {
            siex |= EXPONENT_SIGN;
        }
        if self.mantissa < 0 {
            siex |= SIGN;
        }
        let magnitude = self.mantissa.unsigned_abs().to_be_bytes();
        let significant = magnitude.iter().skip_while(|&&b| b == 0).count();
        let len = usize::from(len);
        if significant > len {
            return None;
        }
        let mut bytes = vec![0u8; len.saturating_sub(magnitude.len())];
        let skip = magnitude.len().saturating_sub(len);
        bytes.extend(magnitude.iter().skip(skip));
        Some((siex, bytes))
    }

    /// The value as an unsigned integer, when it is one (exponent ≥ 0 or trailing zeros to
    /// cancel a negative one).
    pub fn to_u64(&self) -> Option<u64> {
        let mut m = self.mantissa;
        let mut e = self.exponent;
        while e < 0 {
            if m % 10 != 0 {
                return None;
            }
            m /= 10;
            e = e.saturating_add(1);
        }
        while e > 0 {
            m = m.checked_mul(10)?;
            e = e.saturating_sub(1);
        }
        u64::try_from(m).ok()
    }
}

impl fmt::Display for Number {
    /// Plain decimal notation, digits as sent: 55006e−3 is `55.006`, 0e−1 is `0.0`, 245e0 is
    /// `245`, 12e2 is `1200`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.mantissa < 0 {
            f.write_str("-")?;
        }
        let digits = self.mantissa.unsigned_abs().to_string();
        if self.exponent >= 0 {
            f.write_str(&digits)?;
            for _ in 0..self.exponent {
                f.write_str("0")?;
            }
            return Ok(());
        }
        let frac = usize::from(self.exponent.unsigned_abs());
        match digits.len().checked_sub(frac) {
            Some(int_len) if int_len > 0 => {
                let (int, fr) = digits.split_at(int_len);
                write!(f, "{int}.{fr}")
            }
            _ => {
                f.write_str("0.")?;
                for _ in 0..frac.saturating_sub(digits.len()) {
                    f.write_str("0")?;
                }
                f.write_str(&digits)
            }
        }
    }
}

/// A calendar value of a register whose unit is one of the date/time formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Calendar {
    /// A date (units `yy:mm:dd`, two-digit years are 20yy, and `yyyy:mm:dd`).
    Date {
        /// Year.
        year: u16,
        /// Month 1..=12.
        month: u8,
        /// Day 1..=31.
        day: u8,
    },
    /// A time of day (unit `hh:mm:ss`).
    Time {
        /// Hour 0..=23.
        hour: u8,
        /// Minute 0..=59.
        minute: u8,
        /// Second 0..=59.
        second: u8,
    },
    /// A day of the year without a year (unit `mm:dd`).
    MonthDay {
        /// Month 1..=12.
        month: u8,
        /// Day 1..=31.
        day: u8,
    },
}

impl Calendar {
    /// Splits the decimal digits of `n` as `yymmdd`.
    pub(crate) fn date_yymmdd(n: u64) -> Option<Calendar> {
        if n > 999_999 {
            return None;
        }
        let (yy, mm, dd) = split3(n)?;
        date(2000u16.checked_add(u16::try_from(yy).ok()?)?, mm, dd)
    }

    /// Splits the decimal digits of `n` as `yyyymmdd`.
    pub(crate) fn date_yyyymmdd(n: u64) -> Option<Calendar> {
        if n > 99_999_999 {
            return None;
        }
        let (yyyy, mm, dd) = split3(n)?;
        date(u16::try_from(yyyy).ok()?, mm, dd)
    }

    /// Splits the decimal digits of `n` as `hhmmss`.
    pub(crate) fn time_hhmmss(n: u64) -> Option<Calendar> {
        if n > 999_999 {
            return None;
        }
        let (hh, mm, ss) = split3(n)?;
        (hh < 24 && mm < 60 && ss < 60).then_some(Calendar::Time {
            hour: u8::try_from(hh).ok()?,
            minute: mm,
            second: ss,
        })
    }

    /// Splits the decimal digits of `n` as `mmdd`.
    pub(crate) fn month_day(n: u64) -> Option<Calendar> {
        if n > 9_999 {
            return None;
        }
        let month = u8::try_from(n / 100).ok()?;
        let day = u8::try_from(n % 100).ok()?;
        // 29 February is a valid day of the year.
        (day >= 1 && day <= days_in_month(2000, month)).then_some(Calendar::MonthDay { month, day })
    }
}

impl fmt::Display for Calendar {
    /// ISO 8601: `2024-03-15`, `13:05:00`, `--03-15`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Calendar::Date { year, month, day } => write!(f, "{year:04}-{month:02}-{day:02}"),
            Calendar::Time {
                hour,
                minute,
                second,
            } => write!(f, "{hour:02}:{minute:02}:{second:02}"),
            Calendar::MonthDay { month, day } => write!(f, "--{month:02}-{day:02}"),
        }
    }
}

/// `n` as (leading digits, two digits, two digits).
fn split3(n: u64) -> Option<(u64, u8, u8)> {
    let last = u8::try_from(n % 100).ok()?;
    let mid = u8::try_from(n / 100 % 100).ok()?;
    Some((n / 10_000, mid, last))
}

fn date(year: u16, month: u8, day: u8) -> Option<Calendar> {
    (day >= 1 && day <= days_in_month(year, month)).then_some(Calendar::Date { year, month, day })
}

fn days_in_month(year: u16, month: u8) -> u8 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn decodes_the_pykmp_example_exactly() {
        let n = Number::from_siex(0x43, &[0x00, 0xFB]).unwrap();
        assert_eq!(
            n,
            Number {
                mantissa: 251,
                exponent: -3
            }
        );
        assert_eq!(n.to_string(), "0.251");
    }

    #[test]
    fn bit_7_makes_the_value_negative_and_bit_6_the_exponent() {
        let n = Number::from_siex(0xC2, &[0x01, 0x00]).unwrap();
        assert_eq!(n.to_string(), "-2.56");
        let n = Number::from_siex(0x02, &[0x07]).unwrap();
        assert_eq!(n.to_string(), "700");
        let n = Number::from_siex(0x80, &[0x00]).unwrap();
        assert_eq!(n.to_string(), "0");
    }

    #[test]
    fn keeps_the_digits_as_sent() {
        let n = Number::from_siex(0x41, &[0, 0]).unwrap();
        assert_eq!(n.to_string(), "0.0");
        let n = Number::from_siex(0x45, &[0x01]).unwrap();
        assert_eq!(n.to_string(), "0.00001");
    }

    #[test]
    fn rejects_a_mantissa_beyond_127_bits() {
        assert!(Number::from_siex(0, &[0x7F; 16]).is_ok());
        assert_eq!(
            Number::from_siex(0, &[0x80; 16]),
            Err(ValueError::MantissaTooLarge { len: 16 })
        );
        assert_eq!(
            Number::from_siex(0, &[0x01; 17]),
            Err(ValueError::MantissaTooLarge { len: 17 })
        );
        // Leading zeros do not count.
        let mut long = vec![0u8; 40];
        long.push(5);
        assert_eq!(Number::from_siex(0, &long).unwrap().mantissa, 5);
    }

    #[test]
    fn encodes_what_it_decodes() {
        for (m, e, len) in [
            (55006i128, -3i8, 4u8),
            (-786, -2, 4),
            (0, 0, 1),
            (245, 63, 2),
        ] {
            let n = Number {
                mantissa: m,
                exponent: e,
            };
            let (siex, bytes) = n.to_siex(len).unwrap();
            assert_eq!(bytes.len(), usize::from(len));
            assert_eq!(Number::from_siex(siex, &bytes), Ok(n));
        }
        let too_big = Number {
            mantissa: 70_000,
            exponent: 0,
        };
        assert_eq!(too_big.to_siex(2), None);
        let bad_exp = Number {
            mantissa: 1,
            exponent: -64,
        };
        assert_eq!(bad_exp.to_siex(4), None);
    }

    #[test]
    fn integers_convert_only_when_exact() {
        let n = |mantissa, exponent| Number { mantissa, exponent };
        assert_eq!(n(240315, 0).to_u64(), Some(240315));
        assert_eq!(n(2403150, -1).to_u64(), Some(240315));
        assert_eq!(n(24, 2).to_u64(), Some(2400));
        assert_eq!(n(2403151, -1).to_u64(), None);
        assert_eq!(n(-1, 0).to_u64(), None);
    }

    #[test]
    fn splits_date_and_time_digits() {
        assert_eq!(
            Calendar::date_yymmdd(240315).unwrap().to_string(),
            "2024-03-15"
        );
        assert_eq!(
            Calendar::date_yyyymmdd(20240229).unwrap().to_string(),
            "2024-02-29"
        );
        assert_eq!(Calendar::date_yyyymmdd(20230229), None);
        assert_eq!(Calendar::date_yymmdd(0), None);
        assert_eq!(
            Calendar::time_hhmmss(130500).unwrap().to_string(),
            "13:05:00"
        );
        assert_eq!(Calendar::time_hhmmss(240000), None);
        assert_eq!(Calendar::month_day(229).unwrap().to_string(), "--02-29");
        assert_eq!(Calendar::month_day(1301), None);
    }
}
