//! Exact decimal numbers: `mantissa × 10^exponent`.
//!
//! Energy registers are integers scaled by a power of ten (DLMS scaler, DSMR's fixed number of
//! digits, KMP's SIEX byte). Keeping them as mantissa and exponent means `233.7` stays `233.7`
//! end to end; `f64` is produced only at the edges (InfluxDB fields, Homie floats).

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// An exact decimal number `mantissa × 10^exponent`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decimal {
    mantissa: i128,
    exponent: i8,
}

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal {
        mantissa: 0,
        exponent: 0,
    };

    /// `mantissa × 10^exponent`.
    pub const fn new(mantissa: i128, exponent: i8) -> Self {
        Decimal { mantissa, exponent }
    }

    /// An integer.
    pub const fn from_int(value: i128) -> Self {
        Decimal {
            mantissa: value,
            exponent: 0,
        }
    }

    /// The mantissa as stored (not normalised).
    pub const fn mantissa(&self) -> i128 {
        self.mantissa
    }

    /// The power of ten as stored (not normalised).
    pub const fn exponent(&self) -> i8 {
        self.exponent
    }

    /// The same value with trailing zeros of the mantissa folded into the exponent, and zero as
    /// `0e0`. Two equal numbers have the same normal form.
    pub fn normalized(self) -> Self {
        if self.mantissa == 0 {
            return Decimal::ZERO;
        }
        let mut m = self.mantissa;
        let mut e = self.exponent;
        while m % 10 == 0 && e < i8::MAX {
            m /= 10;
            e += 1;
        }
        Decimal {
            mantissa: m,
            exponent: e,
        }
    }

    /// Applies a further power of ten (a DLMS scaler). Saturates the exponent instead of
    /// overflowing.
    pub fn scaled(self, scaler: i8) -> Self {
        Decimal {
            mantissa: self.mantissa,
            exponent: self.exponent.saturating_add(scaler),
        }
    }

    /// The nearest `f64`. Use only at output edges.
    pub fn to_f64(&self) -> f64 {
        // Division by an exact power of ten is correctly rounded, so 2337e-1 gives exactly the
        // double closest to 233.7 (multiplying by 0.1 would not).
        let m = self.mantissa as f64;
        let e = i32::from(self.exponent);
        if e >= 0 {
            m * 10f64.powi(e)
        } else if e >= -22 {
            m / 10f64.powi(-e)
        } else {
            m * 10f64.powi(e)
        }
    }

    /// The value as an integer when it has no fractional part and fits.
    pub fn to_i64(&self) -> Option<i64> {
        let n = self.normalized();
        if n.exponent < 0 {
            return None;
        }
        let mut m = n.mantissa;
        for _ in 0..n.exponent {
            m = m.checked_mul(10)?;
        }
        i64::try_from(m).ok()
    }

    /// True when the number has digits after the decimal point (after normalisation).
    pub fn has_fraction(&self) -> bool {
        self.normalized().exponent < 0
    }

    /// Multiplies by `10^shift`, rescaling so that the exponent becomes `target` when that is
    /// exact. Used to convert units (Wh → kWh is a shift of -3).
    pub fn shift(self, shift: i8) -> Self {
        self.scaled(shift)
    }

    /// Rounds to `digits` decimal places (half away from zero).
    pub fn round_dp(self, digits: u8) -> Self {
        let target = -(digits.min(38) as i16);
        let exp = i16::from(self.exponent);
        if exp >= target {
            return self;
        }
        let drop = (target - exp) as u32;
        if drop > 38 {
            return Decimal::new(0, target as i8);
        }
        let div = 10i128.pow(drop);
        let q = self.mantissa / div;
        let r = self.mantissa % div;
        let q = if r.abs() * 2 >= div {
            q + self.mantissa.signum()
        } else {
            q
        };
        Decimal::new(q, target as i8)
    }

    /// Adds two decimals exactly (at the finer of both exponents). `None` on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let e = self.exponent.min(other.exponent);
        let a = rescale(self.mantissa, self.exponent, e)?;
        let b = rescale(other.mantissa, other.exponent, e)?;
        Some(Decimal::new(a.checked_add(b)?, e))
    }

    /// Subtracts exactly. `None` on overflow.
    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        self.checked_add(Decimal::new(other.mantissa.checked_neg()?, other.exponent))
    }
}

fn rescale(m: i128, from: i8, to: i8) -> Option<i128> {
    let diff = u32::try_from(i16::from(from) - i16::from(to)).ok()?;
    m.checked_mul(10i128.checked_pow(diff)?)
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        let a = self.normalized();
        let b = other.normalized();
        a.mantissa == b.mantissa && a.exponent == b.exponent
    }
}

impl Eq for Decimal {}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Self) -> Ordering {
        let e = self.exponent.min(other.exponent);
        match (
            rescale(self.mantissa, self.exponent, e),
            rescale(other.mantissa, other.exponent, e),
        ) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self.to_f64().total_cmp(&other.to_f64()),
        }
    }
}

impl From<i64> for Decimal {
    fn from(v: i64) -> Self {
        Decimal::from_int(i128::from(v))
    }
}

impl From<u64> for Decimal {
    fn from(v: u64) -> Self {
        Decimal::from_int(i128::from(v))
    }
}

impl Decimal {
    /// Appends the plain decimal notation of [`Display`](fmt::Display) to `out` as ASCII,
    /// without the formatting machinery (the reading JSON writes every number this way).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let d = self.digits();
        if d.neg {
            out.push(b'-');
        }
        let digits = &d.buf[d.start..];
        if d.exponent >= 0 {
            out.extend_from_slice(digits);
            for _ in 0..d.exponent {
                out.push(b'0');
            }
            return;
        }
        let frac = usize::from(d.exponent.unsigned_abs());
        if digits.len() > frac {
            let (int, fr) = digits.split_at(digits.len() - frac);
            out.extend_from_slice(int);
            out.push(b'.');
            out.extend_from_slice(fr);
        } else {
            out.extend_from_slice(b"0.");
            for _ in 0..frac - digits.len() {
                out.push(b'0');
            }
            out.extend_from_slice(digits);
        }
    }

    /// The normalised value as sign, decimal digits of the mantissa and exponent (the same
    /// normal form as [`normalized`](Self::normalized), computed in `u64` when it fits).
    fn digits(&self) -> Digits {
        let mut d = Digits {
            buf: [b'0'; 40],
            start: 39,
            neg: self.mantissa < 0,
            exponent: 0,
        };
        if self.mantissa == 0 {
            d.neg = false;
            return d;
        }
        let mut e = self.exponent;
        let abs = self.mantissa.unsigned_abs();
        let mut i = d.buf.len();
        match u64::try_from(abs) {
            Ok(mut m) => {
                while m % 10 == 0 && e < i8::MAX {
                    m /= 10;
                    e += 1;
                }
                while m > 0 {
                    i -= 1;
                    d.buf[i] = b'0' + (m % 10) as u8;
                    m /= 10;
                }
            }
            Err(_) => {
                let mut m = abs;
                while m % 10 == 0 && e < i8::MAX {
                    m /= 10;
                    e += 1;
                }
                while m > 0 {
                    i -= 1;
                    d.buf[i] = b'0' + (m % 10) as u8;
                    m /= 10;
                }
            }
        }
        d.start = i;
        d.exponent = e;
        d
    }
}

/// See [`Decimal::digits`]. `u128::MAX` has 39 digits.
struct Digits {
    buf: [u8; 40],
    start: usize,
    neg: bool,
    exponent: i8,
}

impl fmt::Display for Decimal {
    /// Plain decimal notation without exponent and without trailing zeros after the point:
    /// `2337e-1` → `233.7`, `5e3` → `5000`, `100e-2` → `1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = Vec::with_capacity(24);
        self.write_to(&mut s);
        f.write_str(std::str::from_utf8(&s).map_err(|_| fmt::Error)?)
    }
}

/// Error of [`Decimal::from_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDecimalError;

impl fmt::Display for ParseDecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a decimal number")
    }
}

impl std::error::Error for ParseDecimalError {}

impl FromStr for Decimal {
    type Err = ParseDecimalError;

    /// Parses `-12.340`, `+5`, `007.5`; keeps the written number of digits (`0.100` is
    /// `100e-3`). No exponent notation.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (neg, body) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(ParseDecimalError);
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseDecimalError);
        }
        if int.len() + frac.len() > 38 || frac.len() > 100 {
            return Err(ParseDecimalError);
        }
        let mut m: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            m = m * 10 + i128::from(b - b'0');
        }
        if neg {
            m = -m;
        }
        Ok(Decimal::new(m, -(frac.len() as i8)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_scaled_values_exactly() {
        assert_eq!(Decimal::new(2337, -1).to_string(), "233.7");
        assert_eq!(Decimal::new(-819, -3).to_string(), "-0.819");
        assert_eq!(Decimal::new(5, 3).to_string(), "5000");
        assert_eq!(Decimal::new(100, -2).to_string(), "1");
        assert_eq!(Decimal::new(7, -4).to_string(), "0.0007");
        assert_eq!(Decimal::new(0, -3).to_string(), "0");
        assert_eq!(Decimal::new(-5, 0).to_string(), "-5");
    }

    /// The formatting before `write_to`: through `normalized` and `to_string`.
    fn reference(d: Decimal) -> String {
        let n = d.normalized();
        let neg = n.mantissa < 0;
        let digits = n.mantissa.unsigned_abs().to_string();
        let mut s = String::new();
        if neg {
            s.push('-');
        }
        if n.exponent >= 0 {
            s.push_str(&digits);
            for _ in 0..n.exponent {
                s.push('0');
            }
            return s;
        }
        let frac = usize::from(n.exponent.unsigned_abs());
        if digits.len() > frac {
            let (int, fr) = digits.split_at(digits.len() - frac);
            s.push_str(&format!("{int}.{fr}"));
        } else {
            s.push_str("0.");
            for _ in 0..frac - digits.len() {
                s.push('0');
            }
            s.push_str(&digits);
        }
        s
    }

    #[test]
    fn writes_exactly_what_the_normal_form_says() {
        let mut mantissas: Vec<i128> = vec![
            0,
            1,
            -1,
            7,
            10,
            100,
            -1000,
            2337,
            12_345_678_900,
            i128::from(u64::MAX),
            i128::from(u64::MAX) + 1,
            i128::from(u64::MAX) * 10,
            10i128.pow(19),
            10i128.pow(20),
            10i128.pow(38),
            i128::MAX,
            i128::MIN,
            i128::MIN + 1,
        ];
        // A fixed pseudo-random spread over every magnitude.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let digits = (x % 39) as u32;
            let m = i128::from(x >> 8) % 10i128.pow(digits.min(18)) * 10i128.pow(digits / 2);
            mantissas.push(if x & 1 == 0 { m } else { -m });
        }
        for &m in &mantissas {
            for e in [
                i8::MIN,
                -100,
                -40,
                -39,
                -20,
                -3,
                -2,
                -1,
                0,
                1,
                2,
                20,
                126,
                i8::MAX,
            ] {
                let d = Decimal::new(m, e);
                let mut s = b"x".to_vec();
                d.write_to(&mut s);
                assert_eq!(s, format!("x{}", reference(d)).into_bytes(), "{m}e{e}");
                assert_eq!(d.to_string(), reference(d), "{m}e{e}");
            }
        }
    }

    #[test]
    fn parses_fixed_digit_strings() {
        let d: Decimal = "000123.456".parse().unwrap();
        assert_eq!(d, Decimal::new(123456, -3));
        assert_eq!(d.to_string(), "123.456");
        assert_eq!("-0.5".parse::<Decimal>().unwrap(), Decimal::new(-5, -1));
        assert!("1e5".parse::<Decimal>().is_err());
        assert!("".parse::<Decimal>().is_err());
        assert!(".".parse::<Decimal>().is_err());
        assert!("1.2.3".parse::<Decimal>().is_err());
    }

    #[test]
    fn converts_to_nearest_f64() {
        assert_eq!(Decimal::new(2337, -1).to_f64(), 233.7);
        assert_eq!(Decimal::new(12937, 0).to_f64(), 12937.0);
        assert_eq!(Decimal::new(-819, -3).to_f64(), -0.819);
    }

    #[test]
    fn compares_across_exponents() {
        assert_eq!(Decimal::new(10, -1), Decimal::new(1, 0));
        assert!(Decimal::new(15, -1) > Decimal::new(1, 0));
        assert_eq!(
            Decimal::new(15, -1).checked_add(Decimal::new(2, 0)),
            Some(Decimal::new(35, -1))
        );
        assert_eq!(
            Decimal::new(1, 0).checked_sub(Decimal::new(25, -1)),
            Some(Decimal::new(-15, -1))
        );
    }

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(Decimal::new(12345, -3).round_dp(2), Decimal::new(1235, -2));
        assert_eq!(
            Decimal::new(-12345, -3).round_dp(2),
            Decimal::new(-1235, -2)
        );
        assert_eq!(Decimal::new(12, 0).round_dp(2), Decimal::new(12, 0));
    }

    #[test]
    fn integer_conversion_only_when_exact() {
        assert_eq!(Decimal::new(5, 2).to_i64(), Some(500));
        assert_eq!(Decimal::new(50, -1).to_i64(), Some(5));
        assert_eq!(Decimal::new(55, -1).to_i64(), None);
    }
}
