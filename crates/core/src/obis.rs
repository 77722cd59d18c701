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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_six_dotted_groups() {
        assert_eq!(Obis::ENERGY_IMPORT.to_string(), "1.0.1.8.0.255");
    }

    #[test]
    fn parses_common_notations() {
        for s in ["1.0.1.8.0.255", "1-0:1.8.0*255", "1-0:1.8.0", "1-0:1.8.0.255"] {
            assert_eq!(s.parse::<Obis>().unwrap(), Obis::ENERGY_IMPORT, "{s}");
        }
        assert!("1.0.1".parse::<Obis>().is_err());
        assert!("1.0.1.8.0.256".parse::<Obis>().is_err());
    }
}
