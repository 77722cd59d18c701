//! Names of well-known KMP registers, for messages and documentation.
//!
//! Register ids and their meanings as listed by bsdphk/PyKamstrup, golles' kamstrup_403 and
//! gertvdijk/PyKMP for Multical heat meters. A register not listed is still read and reported
//! by its id; the name is only a help for people.

/// The registers the predecessor polled (smart_meter_reader's Kamstrup 403 client), in its
/// order: heat energy E1, power, flow and return temperature, temperature difference, flow,
/// volume, hour counter.
pub const DEFAULT: [u16; 8] = [60, 80, 86, 87, 89, 74, 68, 1004];

/// Register 1002: the meter's clock, unit `hh:mm:ss`.
pub const TIME: u16 = 1002;
/// Register 1003: the meter's date, unit `yy:mm:dd`.
pub const DATE: u16 = 1003;

/// A short English name of a known register.
pub fn name(id: u16) -> Option<&'static str> {
    Some(match id {
        60 => "heat energy E1",
        63 => "cooling energy E3",
        68 => "volume V1",
        74 => "flow V1",
        80 => "power",
        86 => "flow temperature t1",
        87 => "return temperature t2",
        89 => "temperature difference",
        97 => "t1 × m³ (E8)",
        99 => "info code",
        110 => "t2 × m³ (E9)",
        113 => "info event counter",
        123 => "max flow date (year)",
        124 => "max flow (year)",
        125 => "min flow date (year)",
        126 => "min flow (year)",
        127 => "max power date (year)",
        128 => "max power (year)",
        129 => "min power date (year)",
        130 => "min power (year)",
        138 => "max flow date (month)",
        139 => "max flow (month)",
        140 => "min flow date (month)",
        141 => "min flow (month)",
        142 => "max power date (month)",
        143 => "max power (month)",
        144 => "min power date (month)",
        145 => "min power (month)",
        146 => "average t1 (year)",
        147 => "average t2 (year)",
        149 => "average t1 (month)",
        150 => "average t2 (month)",
        239 => "volume V1 high resolution",
        266 => "heat energy E1 high resolution",
        1001 => "serial number",
        1002 => "time",
        1003 => "date",
        1004 => "hour counter",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn every_default_register_has_a_name() {
        assert!(DEFAULT.iter().all(|&r| name(r).is_some()));
        assert_eq!(name(60), Some("heat energy E1"));
        assert_eq!(name(4242), None);
    }
}
