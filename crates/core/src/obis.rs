//! OBIS codes (IEC 62056-61): six value groups `A-B:C.D.E*F`.

use std::fmt;
use std::str::FromStr;

/// An OBIS code. Displayed as the six groups joined by dots (`1.0.1.8.0.255`), the form used as
/// a key in the reading JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Obis(pub [u8; 6]);

impl Obis {
    /// Builds an OBIS code from its six groups.
    pub const fn new(a: u8, b: u8, c: u8, d: u8, e: u8, f: u8) -> Self {
        Obis([a, b, c, d, e, f])
    }

    /// From six bytes as sent in a DLMS octet-string; `None` unless exactly six.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 6]>::try_from(bytes).ok().map(Obis)
    }

    /// The six groups.
    pub const fn groups(&self) -> [u8; 6] {
        self.0
    }

    /// Appends the dotted form of [`Display`](fmt::Display) to `out` as ASCII, without the
    /// formatting machinery.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // Six groups of up to three digits and five dots, assembled on the stack.
        let mut buf = [0u8; 23];
        let mut n = 0;
        for (i, &g) in self.0.iter().enumerate() {
            if i > 0 {
                buf[n] = b'.';
                n += 1;
            }
            if g >= 100 {
                buf[n] = b'0' + g / 100;
                n += 1;
            }
            if g >= 10 {
                buf[n] = b'0' + g / 10 % 10;
                n += 1;
            }
            buf[n] = b'0' + g % 10;
            n += 1;
        }
        out.extend_from_slice(&buf[..n]);
    }

    /// The meter clock, `0.0.1.0.0.255`.
    pub const CLOCK: Obis = Obis::new(0, 0, 1, 0, 0, 255);
    /// The meter (device) number, `0.0.96.1.0.255`.
    pub const METER_NUMBER: Obis = Obis::new(0, 0, 96, 1, 0, 255);
    /// The COSEM logical device name, `0.0.42.0.0.255`.
    pub const LOGICAL_DEVICE_NAME: Obis = Obis::new(0, 0, 42, 0, 0, 255);
    /// Active energy import total, `1.0.1.8.0.255`.
    pub const ENERGY_IMPORT: Obis = Obis::new(1, 0, 1, 8, 0, 255);
    /// Active energy export total, `1.0.2.8.0.255`.
    pub const ENERGY_EXPORT: Obis = Obis::new(1, 0, 2, 8, 0, 255);
    /// Active power import, `1.0.1.7.0.255`.
    pub const POWER_IMPORT: Obis = Obis::new(1, 0, 1, 7, 0, 255);
    /// Active power export, `1.0.2.7.0.255`.
    pub const POWER_EXPORT: Obis = Obis::new(1, 0, 2, 7, 0, 255);
}

impl fmt::Display for Obis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a}.{b}.{c}.{d}.{e}.{g}")
    }
}

/// Error of [`Obis::from_str`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseObisError(pub String);

impl fmt::Display for ParseObisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not an OBIS code: {:?}", self.0)
    }
}

impl std::error::Error for ParseObisError {}

impl FromStr for Obis {
    type Err = ParseObisError;

    /// Accepts `1.0.1.8.0.255`, `1-0:1.8.0*255`, `1-0:1.8.0.255` and the five-group DSMR form
    /// `1-0:1.8.0` (F defaults to 255).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseObisError(s.to_string());
        let mut groups = Vec::with_capacity(6);
        for part in s.split(['.', '-', ':', '*']) {
            groups.push(part.trim().parse::<u8>().map_err(|_| err())?);
        }
        match groups.len() {
            5 => groups.push(255),
            6 => {}
            _ => return Err(err()),
        }
        let mut out = [0u8; 6];
        out.copy_from_slice(&groups);
        Ok(Obis(out))
    }
}

/// A short English name for well-known OBIS codes (IEC 62056-61 / DLMS UA 1000-1 object list),
/// used by the console table, Homie `$name` and Home Assistant entity names.
pub fn describe(obis: Obis) -> Option<&'static str> {
    let [a, b, c, d, e, _] = obis.0;
    Some(match (a, c, d, e) {
        (0, 1, 0, 0) => "Meter clock",
        (0, 96, 1, 0) => "Meter number",
        (0, 96, 1, 1) => "Meter serial number",
        (0, 42, 0, 0) => "Logical device name",
        (0, 96, 14, 0) => "Tariff indicator",
        (0, 96, 7, 21) => "Power failures",
        (0, 96, 7, 9) => "Long power failures",
        (0, 96, 3, 10) => "Breaker state",
        (0, 24, 2, 1) if b > 0 => "M-Bus channel reading",
        (1, 1, 8, 0) => "Active energy import",
        (1, 2, 8, 0) => "Active energy export",
        (1, 1, 8, 1) => "Active energy import tariff 1",
        (1, 1, 8, 2) => "Active energy import tariff 2",
        (1, 2, 8, 1) => "Active energy export tariff 1",
        (1, 2, 8, 2) => "Active energy export tariff 2",
        (1, 3, 8, 0) => "Reactive energy import",
        (1, 4, 8, 0) => "Reactive energy export",
        (1, 1, 7, 0) => "Active power import",
        (1, 2, 7, 0) => "Active power export",
        (1, 3, 7, 0) => "Reactive power import",
        (1, 4, 7, 0) => "Reactive power export",
        (1, 16, 7, 0) => "Active power",
        (1, 21, 7, 0) => "Active power import L1",
        (1, 41, 7, 0) => "Active power import L2",
        (1, 61, 7, 0) => "Active power import L3",
        (1, 22, 7, 0) => "Active power export L1",
        (1, 42, 7, 0) => "Active power export L2",
        (1, 62, 7, 0) => "Active power export L3",
        (1, 32, 7, 0) => "Voltage L1",
        (1, 52, 7, 0) => "Voltage L2",
        (1, 72, 7, 0) => "Voltage L3",
        (1, 31, 7, 0) => "Current L1",
        (1, 51, 7, 0) => "Current L2",
        (1, 71, 7, 0) => "Current L3",
        (1, 91, 7, 0) => "Current neutral",
        (1, 13, 7, 0) => "Power factor",
        (1, 33, 7, 0) => "Power factor L1",
        (1, 53, 7, 0) => "Power factor L2",
        (1, 73, 7, 0) => "Power factor L3",
        (1, 14, 7, 0) => "Frequency",
        (1, 0, 2, 0) => "Firmware version",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_six_dotted_groups() {
        assert_eq!(Obis::ENERGY_IMPORT.to_string(), "1.0.1.8.0.255");
    }

    #[test]
    fn write_to_matches_display() {
        for g in 0..=255u8 {
            let o = Obis::new(g, g / 2, 255 - g, g % 10, g / 100, g);
            let mut s = Vec::new();
            o.write_to(&mut s);
            assert_eq!(s, o.to_string().into_bytes());
        }
    }

    #[test]
    fn parses_common_notations() {
        for s in [
            "1.0.1.8.0.255",
            "1-0:1.8.0*255",
            "1-0:1.8.0",
            "1-0:1.8.0.255",
        ] {
            assert_eq!(s.parse::<Obis>().unwrap(), Obis::ENERGY_IMPORT, "{s}");
        }
        assert!("1.0.1".parse::<Obis>().is_err());
        assert!("1.0.1.8.0.256".parse::<Obis>().is_err());
    }
}
