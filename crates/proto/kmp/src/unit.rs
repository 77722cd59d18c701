//! The KMP unit byte of a register record.
//!
//! The table follows Kamstrup's KMP unit list as carried by bsdphk/PyKamstrup, golles'
//! kamstrup_403 and gertvdijk/PyKMP, with PyKMP's corrections: code 21 is W and code 25 is var
//! (the older tables list kW and kvar twice, once for 21/22 and once for 25/26, which is a copy
//! error). Codes 65–66 and 85–90 come from PyKMP. Any other code is kept as
//! [`Unit::Unknown`].

macro_rules! units {
    ($( $code:literal => $variant:ident, $symbol:expr, $doc:literal; )*) => {
        /// A KMP unit code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Unit {
            $( #[doc = $doc] $variant, )*
            /// A code not in the table, kept as sent.
            Unknown(u8),
        }

        impl Unit {
            /// The unit for a code byte.
            pub fn from_code(code: u8) -> Unit {
                match code {
                    $( $code => Unit::$variant, )*
                    other => Unit::Unknown(other),
                }
            }

            /// The code byte.
            pub fn code(&self) -> u8 {
                match self {
                    $( Unit::$variant => $code, )*
                    Unit::Unknown(c) => *c,
                }
            }

            /// The physical unit's symbol as written in readings (`kWh`, `°C`, `m³`, `l/h`).
            ///
            /// `None` for plain numbers, for the calendar formats (the value is a date or time,
            /// see [`Register::calendar`](crate::Register::calendar)), for bit fields, text and
            /// clock formats, and for unknown codes.
            pub fn symbol(&self) -> Option<&'static str> {
                match self {
                    $( Unit::$variant => $symbol, )*
                    Unit::Unknown(_) => None,
                }
            }
        }
    };
}

units! {
    0 => NoUnit, None, "No unit (a plain number).";
    1 => Wh, Some("Wh"), "Watt-hours.";
    2 => KWh, Some("kWh"), "Kilowatt-hours.";
    3 => MWh, Some("MWh"), "Megawatt-hours.";
    4 => GWh, Some("GWh"), "Gigawatt-hours.";
    5 => J, Some("J"), "Joules.";
    6 => KJ, Some("kJ"), "Kilojoules.";
    7 => MJ, Some("MJ"), "Megajoules.";
    8 => GJ, Some("GJ"), "Gigajoules.";
    9 => Cal, Some("cal"), "Calories.";
    10 => KCal, Some("kcal"), "Kilocalories.";
    11 => MCal, Some("Mcal"), "Megacalories.";
    12 => GCal, Some("Gcal"), "Gigacalories.";
    13 => Varh, Some("varh"), "Var-hours.";
    14 => KVarh, Some("kvarh"), "Kilovar-hours.";
    15 => MVarh, Some("Mvarh"), "Megavar-hours.";
    16 => GVarh, Some("Gvarh"), "Gigavar-hours.";
    17 => VAh, Some("VAh"), "Volt-ampere-hours.";
    18 => KVAh, Some("kVAh"), "Kilovolt-ampere-hours.";
    19 => MVAh, Some("MVAh"), "Megavolt-ampere-hours.";
    20 => GVAh, Some("GVAh"), "Gigavolt-ampere-hours.";
    21 => W, Some("W"), "Watts (older tables wrongly say kW).";
    22 => KW, Some("kW"), "Kilowatts.";
    23 => MW, Some("MW"), "Megawatts.";
    24 => GW, Some("GW"), "Gigawatts.";
    25 => Var, Some("var"), "Vars (older tables wrongly say kvar).";
    26 => KVar, Some("kvar"), "Kilovars.";
    27 => MVar, Some("Mvar"), "Megavars.";
    28 => GVar, Some("Gvar"), "Gigavars.";
    29 => VA, Some("VA"), "Volt-amperes.";
    30 => KVA, Some("kVA"), "Kilovolt-amperes.";
    31 => MVA, Some("MVA"), "Megavolt-amperes.";
    32 => GVA, Some("GVA"), "Gigavolt-amperes.";
    33 => V, Some("V"), "Volts.";
    34 => A, Some("A"), "Amperes.";
    35 => KV, Some("kV"), "Kilovolts.";
    36 => KA, Some("kA"), "Kiloamperes.";
    37 => DegC, Some("°C"), "Degrees Celsius.";
    38 => K, Some("K"), "Kelvin (temperature differences).";
    39 => L, Some("l"), "Litres.";
    40 => M3, Some("m³"), "Cubic metres.";
    41 => LPerH, Some("l/h"), "Litres per hour.";
    42 => M3PerH, Some("m³/h"), "Cubic metres per hour.";
    43 => M3DegC, Some("m³×°C"), "Cubic metres times degrees Celsius (temperature-weighted volume).";
    44 => Ton, Some("t"), "Tonnes.";
    45 => TonPerH, Some("t/h"), "Tonnes per hour.";
    46 => H, Some("h"), "Hours.";
    47 => HhMmSs, None, "A time of day `hhmmss`.";
    48 => YyMmDd, None, "A date `yymmdd`.";
    49 => YyyyMmDd, None, "A date `yyyymmdd`.";
    50 => MmDd, None, "A day of the year `mmdd`.";
    51 => Number, None, "A plain number.";
    52 => Bar, Some("bar"), "Bar.";
    53 => Rtc, None, "A real-time-clock value.";
    54 => Ascii, None, "ASCII coded.";
    55 => M3x10, Some("m³×10"), "Cubic metres times 10.";
    56 => Tonx10, Some("t×10"), "Tonnes times 10.";
    57 => GJx10, Some("GJ×10"), "Gigajoules times 10.";
    58 => Minutes, Some("min"), "Minutes.";
    59 => Bitfield, None, "A bit field.";
    60 => S, Some("s"), "Seconds.";
    61 => Ms, Some("ms"), "Milliseconds.";
    62 => Days, Some("d"), "Days.";
    63 => RtcQ, None, "A real-time-clock value with quality.";
    64 => DateTime, None, "A date and time.";
    65 => ImpPerL, Some("imp/l"), "Pulses per litre.";
    66 => LPerImp, Some("l/imp"), "Litres per pulse.";
    85 => PercentRh, Some("%RH"), "Relative humidity in percent.";
    86 => PercentO2, Some("%O₂"), "Oxygen in percent.";
    87 => MPerS, Some("m/s"), "Metres per second.";
    88 => KJPerKg, Some("kJ/kg"), "Kilojoules per kilogram.";
    89 => PH, Some("pH"), "pH.";
    90 => GPerKg, Some("g/kg"), "Grams per kilogram.";
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn code_21_is_watt_and_25_is_var() {
        assert_eq!(Unit::from_code(21), Unit::W);
        assert_eq!(Unit::from_code(21).symbol(), Some("W"));
        assert_eq!(Unit::from_code(22).symbol(), Some("kW"));
        assert_eq!(Unit::from_code(25).symbol(), Some("var"));
        assert_eq!(Unit::from_code(26).symbol(), Some("kvar"));
    }

    #[test]
    fn heat_meter_units_have_their_symbols() {
        for (code, sym) in [
            (2, "kWh"),
            (3, "MWh"),
            (8, "GJ"),
            (37, "°C"),
            (38, "K"),
            (40, "m³"),
            (41, "l/h"),
            (42, "m³/h"),
            (46, "h"),
        ] {
            assert_eq!(Unit::from_code(code).symbol(), Some(sym), "code {code}");
        }
    }

    #[test]
    fn every_code_round_trips_and_unknown_codes_are_kept() {
        for code in 0..=255u8 {
            assert_eq!(Unit::from_code(code).code(), code);
        }
        assert_eq!(Unit::from_code(67), Unit::Unknown(67));
        assert_eq!(Unit::from_code(67).symbol(), None);
        assert_eq!(Unit::from_code(48).symbol(), None);
    }
}
