//! Physical units: the DLMS/COSEM unit enumeration (IEC 62056-62, Blue Book table "unit") with
//! the symbols used in the reading JSON.
//!
//! Codes not in the table are kept as [`Unit::Dlms`] with their raw number and have no symbol;
//! units named by text (DSMR's `kWh`, KMP's table) use [`Unit::from_symbol`].

use std::borrow::Cow;
use std::fmt;

/// A physical unit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// A DLMS unit code. Known codes have a symbol; `255` ("count", no unit) has none.
    Dlms(u8),
    /// A unit given as text by the meter that has no DLMS code (e.g. DSMR's `kWh`). Borrowed
    /// for the symbols meters commonly send, so that such units cost no allocation.
    Symbol(Cow<'static, str>),
}

impl Unit {
    /// Watt-hours.
    pub const WH: Unit = Unit::Dlms(30);
    /// Watts.
    pub const W: Unit = Unit::Dlms(27);
    /// Volts.
    pub const V: Unit = Unit::Dlms(35);
    /// Amperes.
    pub const A: Unit = Unit::Dlms(33);
    /// Hertz.
    pub const HZ: Unit = Unit::Dlms(44);
    /// Var-hours.
    pub const VARH: Unit = Unit::Dlms(32);
    /// Vars.
    pub const VAR: Unit = Unit::Dlms(29);

    /// The DLMS unit for `code`, or `None` for 0 and 255 (no unit / count).
    pub fn from_dlms(code: u8) -> Option<Unit> {
        match code {
            0 | 255 => None,
            c => Some(Unit::Dlms(c)),
        }
    }

    /// A unit from its symbol. Symbols that match a DLMS unit map to it (`"kWh"` does not: it is
    /// not in the DLMS table and stays a symbol). Empty text is no unit.
    pub fn from_symbol(symbol: &str) -> Option<Unit> {
        let s = symbol.trim();
        if s.is_empty() {
            return None;
        }
        if let Some(code) = dlms_code(s) {
            return Some(Unit::Dlms(code));
        }
        let text = match COMMON_SYMBOLS.iter().find(|&&c| c == s) {
            Some(&common) => Cow::Borrowed(common),
            None => Cow::Owned(s.to_string()),
        };
        Some(Unit::Symbol(text))
    }

    /// The symbol written in outputs; `None` for a DLMS code without a known symbol.
    pub fn symbol(&self) -> Option<&str> {
        match self {
            Unit::Dlms(c) => dlms_symbol(*c),
            Unit::Symbol(s) => Some(s),
        }
    }

    /// The DLMS unit code, when this unit has one.
    pub fn dlms_code(&self) -> Option<u8> {
        match self {
            Unit::Dlms(c) => Some(*c),
            Unit::Symbol(_) => None,
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.symbol() {
            Some(s) => f.write_str(s),
            None => write!(f, "unit#{}", self.dlms_code().unwrap_or(0)),
        }
    }
}

/// Symbols without a DLMS code that meters send (DSMR, KMP), kept without allocating.
const COMMON_SYMBOLS: [&str; 16] = [
    "kWh", "kW", "kvarh", "kvar", "kVArh", "kVAr", "kVAh", "kVA", "MWh", "MW", "GJ", "MJ", "l/h",
    "kV", "mA", "Gcal",
];

/// The lowest DLMS code whose symbol is `s` (the inverse of [`dlms_symbol`]: `m³` is 13,
/// not 14).
fn dlms_code(s: &str) -> Option<u8> {
    Some(match s {
        "a" => 1,
        "mo" => 2,
        "wk" => 3,
        "d" => 4,
        "h" => 5,
        "min" => 6,
        "s" => 7,
        "°" => 8,
        "°C" => 9,
        "currency" => 10,
        "m" => 11,
        "m/s" => 12,
        "m³" => 13,
        "m³/h" => 15,
        "m³/d" => 17,
        "l" => 19,
        "kg" => 20,
        "N" => 21,
        "Nm" => 22,
        "Pa" => 23,
        "bar" => 24,
        "J" => 25,
        "J/h" => 26,
        "W" => 27,
        "VA" => 28,
        "var" => 29,
        "Wh" => 30,
        "VAh" => 31,
        "varh" => 32,
        "A" => 33,
        "C" => 34,
        "V" => 35,
        "V/m" => 36,
        "F" => 37,
        "Ω" => 38,
        "Ωm²/m" => 39,
        "Wb" => 40,
        "T" => 41,
        "A/m" => 42,
        "H" => 43,
        "Hz" => 44,
        "1/(Wh)" => 45,
        "1/(varh)" => 46,
        "1/(VAh)" => 47,
        "V²h" => 48,
        "A²h" => 49,
        "kg/s" => 50,
        "S" => 51,
        "K" => 52,
        "1/(V²h)" => 53,
        "1/(A²h)" => 54,
        "1/m³" => 55,
        "%" => 56,
        "Ah" => 57,
        "Wh/m³" => 60,
        "J/m³" => 61,
        "Mol %" => 62,
        "g/m³" => 63,
        "Pa s" => 64,
        "J/kg" => 65,
        "g/cm²" => 66,
        "atm" => 67,
        "dBm" => 70,
        "dBµV" => 71,
        "dB" => 72,
        _ => return None,
    })
}

/// The DLMS unit table (DLMS UA 1000-1 "Blue Book", class 3 `scaler_unit`).
fn dlms_symbol(code: u8) -> Option<&'static str> {
    Some(match code {
        1 => "a",
        2 => "mo",
        3 => "wk",
        4 => "d",
        5 => "h",
        6 => "min",
        7 => "s",
        8 => "°",
        9 => "°C",
        10 => "currency",
        11 => "m",
        12 => "m/s",
        13 => "m³",
        14 => "m³",
        15 => "m³/h",
        16 => "m³/h",
        17 => "m³/d",
        18 => "m³/d",
        19 => "l",
        20 => "kg",
        21 => "N",
        22 => "Nm",
        23 => "Pa",
        24 => "bar",
        25 => "J",
        26 => "J/h",
        27 => "W",
        28 => "VA",
        29 => "var",
        30 => "Wh",
        31 => "VAh",
        32 => "varh",
        33 => "A",
        34 => "C",
        35 => "V",
        36 => "V/m",
        37 => "F",
        38 => "Ω",
        39 => "Ωm²/m",
        40 => "Wb",
        41 => "T",
        42 => "A/m",
        43 => "H",
        44 => "Hz",
        45 => "1/(Wh)",
        46 => "1/(varh)",
        47 => "1/(VAh)",
        48 => "V²h",
        49 => "A²h",
        50 => "kg/s",
        51 => "S",
        52 => "K",
        53 => "1/(V²h)",
        54 => "1/(A²h)",
        55 => "1/m³",
        56 => "%",
        57 => "Ah",
        60 => "Wh/m³",
        61 => "J/m³",
        62 => "Mol %",
        63 => "g/m³",
        64 => "Pa s",
        65 => "J/kg",
        66 => "g/cm²",
        67 => "atm",
        70 => "dBm",
        71 => "dBµV",
        72 => "dB",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlms_codes_have_their_symbols() {
        assert_eq!(Unit::WH.symbol(), Some("Wh"));
        assert_eq!(Unit::Dlms(9).symbol(), Some("°C"));
        assert_eq!(Unit::Dlms(13).symbol(), Some("m³"));
        assert_eq!(Unit::from_dlms(255), None);
        assert_eq!(Unit::Dlms(200).symbol(), None);
    }

    #[test]
    fn symbols_map_to_dlms_codes_where_they_exist() {
        assert_eq!(Unit::from_symbol("W"), Some(Unit::W));
        assert_eq!(Unit::from_symbol("kWh"), Some(Unit::Symbol("kWh".into())));
        assert_eq!(Unit::from_symbol(""), None);
    }

    #[test]
    fn symbol_lookup_is_the_inverse_of_the_table() {
        for code in 1..=254u8 {
            if let Some(sym) = dlms_symbol(code) {
                let first = (1..=254u8).find(|&c| dlms_symbol(c) == Some(sym));
                assert_eq!(dlms_code(sym), first, "{sym}");
                assert_eq!(Unit::from_symbol(sym), first.map(Unit::Dlms), "{sym}");
            }
        }
        for sym in COMMON_SYMBOLS {
            assert_eq!(dlms_code(sym), None, "{sym} has a DLMS code");
            assert!(matches!(
                Unit::from_symbol(sym),
                Some(Unit::Symbol(Cow::Borrowed(s))) if s == sym
            ));
        }
        assert_eq!(dlms_code("x"), None);
        assert_eq!(
            Unit::from_symbol(" furlong "),
            Some(Unit::Symbol(Cow::Owned("furlong".into())))
        );
    }
}
