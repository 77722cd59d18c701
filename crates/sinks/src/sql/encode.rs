//! Reading → rows: the pure part of the sink.

use std::time::UNIX_EPOCH;

use smart_meter_core::{Decimal, Key, Obis, Reading, Value};

use super::dialect::{CODE_MAX, TEXT_MAX, UNIT_MAX};

/// The predecessor's eleven value columns in table order, with whether the column is an
/// integer (`int(10) unsigned`) rather than a `double`.
pub const COMPAT_COLUMNS: [(&str, bool); 11] = [
    ("WIn", true),
    ("WOut", true),
    ("PIn", false),
    ("POut", false),
    ("U1", false),
    ("U2", false),
    ("U3", false),
    ("I1", false),
    ("I2", false),
    ("I3", false),
    ("PF", false),
];

/// The OBIS code behind each predecessor column (its `extractValues` table), same order as
/// [`COMPAT_COLUMNS`].
pub const COMPAT_OBIS: [Obis; 11] = [
    Obis::new(1, 0, 1, 8, 0, 255),
    Obis::new(1, 0, 2, 8, 0, 255),
    Obis::new(1, 0, 1, 7, 0, 255),
    Obis::new(1, 0, 2, 7, 0, 255),
    Obis::new(1, 0, 32, 7, 0, 255),
    Obis::new(1, 0, 52, 7, 0, 255),
    Obis::new(1, 0, 72, 7, 0, 255),
    Obis::new(1, 0, 31, 7, 0, 255),
    Obis::new(1, 0, 51, 7, 0, 255),
    Obis::new(1, 0, 71, 7, 0, 255),
    Obis::new(1, 0, 13, 7, 0, 255),
];

/// One row of the normalised history table.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    /// The meter id.
    pub meter: String,
    /// The reading's time ([`Reading::timestamp`]), milliseconds since the epoch.
    pub ts_ms: i64,
    /// The sample key as in the reading JSON (`1.0.1.8.0.255`, `kmp.60`).
    pub code: String,
    /// The number, for numeric samples.
    pub value: Option<Decimal>,
    /// The text, for text and time samples (times as ISO 8601).
    pub text: Option<String>,
    /// The unit symbol, if any.
    pub unit: Option<String>,
}

/// A numeric sample as the aggregator sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct NumericSample {
    /// Sample key (normalised layout) or column name (predecessor layout).
    pub code: String,
    /// The value.
    pub value: Decimal,
    /// The unit symbol, if any.
    pub unit: Option<String>,
}

/// A reading in the predecessor's layout.
#[derive(Clone, Debug, PartialEq)]
pub struct CompatRow {
    /// The reading's time, milliseconds since the epoch.
    pub ts_ms: i64,
    /// WIn … PF in column order, in Wh / W / V / A / 1.
    pub values: [Decimal; 11],
}

/// The time a reading is stored under: [`Reading::timestamp`] in milliseconds since the epoch.
pub fn reading_millis(reading: &Reading) -> i64 {
    reading
        .timestamp()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut = cut.saturating_sub(1);
        }
        s.truncate(cut);
    }
    s
}

/// The history rows of one reading: one per sample key (the first sample of a key wins, as in
/// the reading JSON).
pub fn history_rows(reading: &Reading) -> Vec<HistoryRow> {
    let ts_ms = reading_millis(reading);
    let mut seen: Vec<&Key> = Vec::with_capacity(reading.samples.len());
    let mut rows = Vec::with_capacity(reading.samples.len());
    for s in &reading.samples {
        if seen.contains(&&s.key) {
            continue;
        }
        seen.push(&s.key);
        let (value, text) = match &s.value {
            Value::Number(d) => (Some(*d), None),
            Value::Text(t) => (None, Some(truncate(t.clone(), TEXT_MAX))),
            Value::Time(t) => (None, Some(t.to_string())),
        };
        rows.push(HistoryRow {
            meter: reading.meter.as_str().to_string(),
            ts_ms,
            code: truncate(s.key.to_string(), CODE_MAX),
            value,
            text,
            unit: unit_of(s),
        });
    }
    rows
}

fn unit_of(s: &smart_meter_core::Sample) -> Option<String> {
    s.unit
        .as_ref()
        .and_then(|u| u.symbol())
        .map(|u| truncate(u.to_string(), UNIT_MAX))
}

/// The numeric samples of a reading, for the normalised aggregate table.
pub fn numeric_samples(rows: &[HistoryRow]) -> Vec<NumericSample> {
    rows.iter()
        .filter_map(|r| {
            r.value.map(|value| NumericSample {
                code: r.code.clone(),
                value,
                unit: r.unit.clone(),
            })
        })
        .collect()
}

/// Why a reading has no row in the predecessor's layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompatError {
    /// One of the eleven OBIS codes is missing or not a number (the predecessor stores a row
    /// only when all eleven are there).
    Missing(&'static str),
    /// An energy register is negative or beyond `int(10) unsigned`.
    OutOfRange(&'static str),
}

impl std::fmt::Display for CompatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompatError::Missing(c) => write!(f, "the reading has no numeric value for {c}"),
            CompatError::OutOfRange(c) => write!(f, "{c} does not fit int(10) unsigned"),
        }
    }
}

/// Converts `k`/`M` prefixed energy and power to Wh and W, the predecessor's units.
fn to_base_unit(value: Decimal, unit: Option<&str>) -> Decimal {
    match unit {
        Some("kWh" | "kW" | "kvarh" | "kvar") => value.scaled(3),
        Some("MWh" | "MW") => value.scaled(6),
        _ => value,
    }
}

/// The predecessor-layout row of a reading: all eleven values, energies in Wh.
pub fn compat_row(reading: &Reading) -> Result<CompatRow, CompatError> {
    let mut values = [Decimal::ZERO; 11];
    for ((slot, obis), (name, integer)) in values.iter_mut().zip(COMPAT_OBIS).zip(COMPAT_COLUMNS) {
        let sample = reading.obis(obis).ok_or(CompatError::Missing(name))?;
        let v = sample.value.as_number().ok_or(CompatError::Missing(name))?;
        let v = to_base_unit(v, sample.unit.as_ref().and_then(|u| u.symbol()));
        if integer {
            let n = v
                .round_dp(0)
                .to_i64()
                .ok_or(CompatError::OutOfRange(name))?;
            if !(0..=i64::from(u32::MAX)).contains(&n) {
                return Err(CompatError::OutOfRange(name));
            }
        }
        *slot = v;
    }
    Ok(CompatRow {
        ts_ms: reading_millis(reading),
        values,
    })
}

impl CompatRow {
    /// The eleven values as the aggregator's samples (code = column name).
    pub fn samples(&self) -> Vec<NumericSample> {
        COMPAT_COLUMNS
            .iter()
            .zip(self.values)
            .map(|((name, _), value)| NumericSample {
                code: (*name).to_string(),
                value,
                unit: None,
            })
            .collect()
    }
}

/// A predecessor-layout row ready to bind: timestamp in seconds, integer and float columns.
#[derive(Clone, Debug, PartialEq)]
pub struct CompatBinds {
    /// Unix seconds (rounded, UTC: the predecessor's bug C3 is not reproduced).
    pub timestamp: i64,
    /// WIn, WOut in Wh.
    pub integers: [i64; 2],
    /// PIn … PF.
    pub floats: [f64; 9],
}

/// Binds for a row of values at `ts_ms`; energies rounded to whole Wh.
pub fn compat_binds(ts_ms: i64, values: &[Decimal; 11]) -> CompatBinds {
    let [w_in, w_out, rest @ ..] = values;
    let int = |d: &Decimal| d.round_dp(0).to_i64().unwrap_or(0);
    CompatBinds {
        timestamp: ts_ms.saturating_add(500).div_euclid(1000),
        integers: [int(w_in), int(w_out)],
        floats: rest.map(|d| d.to_f64()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use smart_meter_core::{MeterId, MeterTime, Sample, Unit};
    use std::time::Duration;

    /// The brochure telegram's values (EVN Kaifa MA309 example, see predecessors §6).
    fn brochure() -> Reading {
        let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
        r.received_at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        r.meter_time = MeterTime::new(2021, 9, 27, 9, 47, 15, None, Some(120));
        let o = |c, d| Key::Obis(Obis::new(1, 0, c, d, 0, 255));
        r.samples.push(Sample {
            key: Key::Obis(Obis::CLOCK),
            value: Value::Time(r.meter_time.unwrap()),
            unit: None,
        });
        r.samples.push(Sample::number(
            o(1, 8),
            Decimal::new(12937, 0),
            Some(Unit::WH),
        ));
        r.samples
            .push(Sample::number(o(2, 8), Decimal::new(0, 0), Some(Unit::WH)));
        r.samples
            .push(Sample::number(o(1, 7), Decimal::new(0, 0), Some(Unit::W)));
        r.samples
            .push(Sample::number(o(2, 7), Decimal::new(0, 0), Some(Unit::W)));
        r.samples.push(Sample::number(
            o(32, 7),
            Decimal::new(2337, -1),
            Some(Unit::V),
        ));
        r.samples
            .push(Sample::number(o(52, 7), Decimal::new(0, -1), Some(Unit::V)));
        r.samples
            .push(Sample::number(o(72, 7), Decimal::new(0, -1), Some(Unit::V)));
        r.samples
            .push(Sample::number(o(31, 7), Decimal::new(0, -2), Some(Unit::A)));
        r.samples
            .push(Sample::number(o(51, 7), Decimal::new(0, -2), Some(Unit::A)));
        r.samples
            .push(Sample::number(o(71, 7), Decimal::new(0, -2), Some(Unit::A)));
        r.samples
            .push(Sample::number(o(13, 7), Decimal::new(1000, -3), None));
        r.samples
            .push(Sample::text(Key::Obis(Obis::METER_NUMBER), "181220000009"));
        r
    }

    #[test]
    fn history_has_one_row_per_key_at_the_meter_time() {
        let mut r = brochure();
        r.samples.push(Sample::number(
            Key::Obis(Obis::ENERGY_IMPORT),
            Decimal::new(1, 0),
            Some(Unit::WH),
        ));
        let rows = history_rows(&r);
        assert_eq!(rows.len(), 13);
        assert!(rows
            .iter()
            .all(|row| row.ts_ms == 1_632_728_835_000 && row.meter == "evn"));
        assert_eq!(
            rows[0],
            HistoryRow {
                meter: "evn".into(),
                ts_ms: 1_632_728_835_000,
                code: "0.0.1.0.0.255".into(),
                value: None,
                text: Some("2021-09-27T09:47:15+02:00".into()),
                unit: None,
            }
        );
        assert_eq!(rows[1].code, "1.0.1.8.0.255");
        assert_eq!(rows[1].value, Some(Decimal::new(12937, 0)));
        assert_eq!(rows[1].unit.as_deref(), Some("Wh"));
        assert_eq!(rows[5].value.unwrap().to_string(), "233.7");
        assert_eq!(rows[11].code, "1.0.13.7.0.255");
        assert_eq!(rows[11].unit, None);
        assert_eq!(rows[12].text.as_deref(), Some("181220000009"));
        assert_eq!(numeric_samples(&rows).len(), 11);
    }

    #[test]
    fn falls_back_to_the_receive_time_without_a_meter_offset() {
        let mut r = brochure();
        r.meter_time = None;
        assert_eq!(history_rows(&r)[1].ts_ms, 1_700_000_000_500);
    }

    #[test]
    fn cuts_long_text_at_a_character_boundary() {
        let mut r = Reading::new(MeterId::new("m").unwrap(), "test");
        r.samples
            .push(Sample::text(Key::Named("x".into()), "é".repeat(200)));
        let rows = history_rows(&r);
        let t = rows[0].text.as_ref().unwrap();
        assert_eq!(t.len(), 254);
        assert!(t.chars().all(|c| c == 'é'));
    }

    #[test]
    fn maps_the_eleven_predecessor_columns() {
        let row = compat_row(&brochure()).unwrap();
        assert_eq!(row.ts_ms, 1_632_728_835_000);
        assert_eq!(row.values[0], Decimal::new(12937, 0));
        assert_eq!(row.values[4], Decimal::new(2337, -1));
        assert_eq!(row.values[10], Decimal::new(1, 0));
        let b = compat_binds(row.ts_ms, &row.values);
        assert_eq!(b.timestamp, 1_632_728_835);
        assert_eq!(b.integers, [12937, 0]);
        assert_eq!(b.floats[2], 233.7);
        assert_eq!(b.floats[8], 1.0);
    }

    #[test]
    fn predecessor_rows_need_all_eleven_values() {
        let mut r = brochure();
        r.samples
            .retain(|s| s.key != Key::Obis(Obis::new(1, 0, 71, 7, 0, 255)));
        assert_eq!(compat_row(&r), Err(CompatError::Missing("I3")));
    }

    #[test]
    fn predecessor_energy_is_converted_to_whole_watt_hours() {
        let mut r = brochure();
        r.samples[1] = Sample::number(
            Key::Obis(Obis::ENERGY_IMPORT),
            Decimal::new(12_9375, -4),
            Unit::from_symbol("kWh"),
        );
        let row = compat_row(&r).unwrap();
        assert_eq!(row.values[0], Decimal::new(129375, -1));
        assert_eq!(compat_binds(row.ts_ms, &row.values).integers[0], 12938);
        r.samples[1] = Sample::number(Key::Obis(Obis::ENERGY_IMPORT), Decimal::new(-1, 0), None);
        assert_eq!(compat_row(&r), Err(CompatError::OutOfRange("WIn")));
    }

    #[test]
    fn predecessor_timestamps_round_to_the_nearest_second() {
        let v = [Decimal::ZERO; 11];
        assert_eq!(compat_binds(1_499, &v).timestamp, 1);
        assert_eq!(compat_binds(1_500, &v).timestamp, 2);
    }
}
