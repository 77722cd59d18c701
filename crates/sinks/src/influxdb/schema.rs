//! Reading → points: the generic layout and the predecessors' layouts (presets).
//!
//! Field types are fixed per field key, because InfluxDB refuses a write that changes a field's
//! type ("field type conflict"):
//!
//! - `default`: every number is a **float** field (exact decimal → nearest `f64` at this edge),
//!   whatever the meter sent, so a register that is integral today and fractional tomorrow
//!   cannot break the series. Text values are string fields; the meter clock and other dates
//!   are string fields in ISO 8601.
//! - The presets reproduce the field types the predecessors wrote, so their existing
//!   databases keep accepting points. Their integer fields are rounded to whole units (half
//!   away from zero); the documentation of each preset lists which fields are integers.

use serde::Deserialize;
use smart_meter_core::{describe_obis, Decimal, Key, Obis, Reading, Unit, Value};

use super::line_protocol::{FieldValue, Point};

/// The point layout (`preset` in the config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// One point per reading in `measurement` (default `smart_meter`), tags `meter` and
    /// `protocol`, every sample as a field (numbers as floats), the reading's timestamp.
    #[default]
    Default,
    /// The InfluxDB 2 layout of kaifa-ma309-python3: measurement `strom` with the fields
    /// `wirkenergieP`, `wirkenergieN` (Wh), `momentanleistungP`, `momentanleistungN`,
    /// `momentanleistung` (W, P+ − P−) as **integers** and `spannungL1..3` (V), `stromL1..3`
    /// (A), `leistungsfaktor` as floats. One point per reading (the predecessor wrote twelve
    /// one-field points without timestamps); no tags.
    Strom,
    /// The InfluxDB 2 layout of kaifareader: measurement `smartmeter` with the fields
    /// `VoltageL1_V`..`VoltageL3_V`, `CurrentL1_A`..`CurrentL3_A` (floats rounded to 2
    /// decimals), `InstantaneousPowerIn_W`, `InstantaneousPowerOut_W`, `ActiveEnergyIn_Wh`,
    /// `ActiveEnergyOut_Wh`, `ReactiveEnergyInductive_var`, `ReactiveEnergyCapacitive_var`
    /// (**integers**, as the predecessor wrote Python ints for scaler-0 registers) and
    /// `PowerFactor` (float rounded to 3 decimals, signed); no tags.
    Kaifareader,
    /// The InfluxDB 1 database layout of SmartMeterEVN (`AusleseSkript.py`, database
    /// `SmartMeter`): five points per reading, `Wirkenergie` (`Bezug`, `Lieferung`: kWh,
    /// floats), `Momentanleistung` (`Bezug`, `Lieferung`, `Gesamt` = Bezug − Lieferung: W,
    /// **integers**), `Spannung` (`L1`..`L3`: V, floats), `Strom` (`L1`..`L3`: A, floats),
    /// `Leistungsfaktor` (`value`, float, signed: the predecessor lost the sign); no tags.
    #[serde(rename = "smartmeter-v1")]
    SmartmeterV1,
}

impl Preset {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Default => "default",
            Preset::Strom => "strom",
            Preset::Kaifareader => "kaifareader",
            Preset::SmartmeterV1 => "smartmeter-v1",
        }
    }

    /// The measurement used when `measurement` is not set; `None` for layouts with fixed
    /// measurement names.
    pub fn default_measurement(self) -> Option<&'static str> {
        match self {
            Preset::Default => Some("smart_meter"),
            Preset::Strom => Some("strom"),
            Preset::Kaifareader => Some("smartmeter"),
            Preset::SmartmeterV1 => None,
        }
    }
}

/// Field keys of the `default` layout (`field_names`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldNames {
    /// The sample key as in the reading JSON: `1.0.1.8.0.255`, `kmp.60`.
    #[default]
    Obis,
    /// English snake-case names of well-known OBIS codes (`active_energy_import`,
    /// `voltage_l1`), the sample key for others and for a name that two samples of one
    /// reading would share.
    Names,
}

/// Everything that decides how a reading becomes points.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    /// The layout.
    pub preset: Preset,
    /// The measurement (ignored by layouts with fixed names).
    pub measurement: String,
    /// Field keys of the `default` layout.
    pub field_names: FieldNames,
    /// Whether points carry the `meter` and `protocol` tags.
    pub tags: bool,
}

impl Schema {
    /// The points for one reading, all stamped with [`Reading::timestamp`].
    pub fn points(&self, r: &Reading) -> Vec<Point> {
        let time = Some(r.timestamp());
        let tags = if self.tags {
            vec![
                ("meter".to_string(), r.meter.to_string()),
                ("protocol".to_string(), r.protocol.to_string()),
            ]
        } else {
            Vec::new()
        };
        let point = |measurement: &str, fields: Vec<(String, FieldValue)>| Point {
            measurement: measurement.to_string(),
            tags: tags.clone(),
            fields,
            time,
        };
        match self.preset {
            Preset::Default => vec![point(&self.measurement, self.default_fields(r))],
            Preset::Strom => vec![point(&self.measurement, strom_fields(r))],
            Preset::Kaifareader => vec![point(&self.measurement, kaifareader_fields(r))],
            Preset::SmartmeterV1 => smartmeter_v1(r)
                .into_iter()
                .map(|(m, fields)| point(m, fields))
                .collect(),
        }
    }

    fn default_fields(&self, r: &Reading) -> Vec<(String, FieldValue)> {
        let keys: Vec<String> = match self.field_names {
            FieldNames::Obis => r.samples.iter().map(|s| s.key.to_string()).collect(),
            FieldNames::Names => {
                let names: Vec<Option<String>> =
                    r.samples.iter().map(|s| english_name(&s.key)).collect();
                r.samples
                    .iter()
                    .zip(&names)
                    .map(|(s, name)| match name {
                        Some(n)
                            if names.iter().filter(|o| o.as_deref() == Some(n)).count() == 1 =>
                        {
                            n.clone()
                        }
                        _ => s.key.to_string(),
                    })
                    .collect()
            }
        };
        r.samples
            .iter()
            .zip(keys)
            .map(|(s, k)| {
                let v = match &s.value {
                    Value::Number(d) => FieldValue::Float(d.to_f64()),
                    Value::Text(t) => FieldValue::Text(t.clone()),
                    Value::Time(t) => FieldValue::Text(t.to_string()),
                };
                (k, v)
            })
            .collect()
    }
}

/// `Voltage L1` → `voltage_l1`.
fn english_name(key: &Key) -> Option<String> {
    let Key::Obis(o) = key else { return None };
    let name = describe_obis(*o)?;
    Some(
        name.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect(),
    )
}

const fn obis(c: u8, d: u8) -> Obis {
    Obis::new(1, 0, c, d, 0, 255)
}

const A_PLUS: Obis = obis(1, 8);
const A_MINUS: Obis = obis(2, 8);
const P_PLUS: Obis = obis(1, 7);
const P_MINUS: Obis = obis(2, 7);
const R_PLUS: Obis = obis(3, 8);
const R_MINUS: Obis = obis(4, 8);
const U: [Obis; 3] = [obis(32, 7), obis(52, 7), obis(72, 7)];
const I: [Obis; 3] = [obis(31, 7), obis(51, 7), obis(71, 7)];
const PF: Obis = obis(13, 7);

/// The units a preset field is expressed in.
#[derive(Clone, Copy)]
enum Target {
    Wh,
    KWh,
    W,
    Varh,
    V,
    A,
    None,
}

/// The power of ten from `unit` to `target`, or `None` when the unit does not fit. A sample
/// without a unit is taken to be in the target unit already.
fn shift(unit: Option<&Unit>, target: Target) -> Option<i8> {
    let Some(sym) = unit.and_then(|u| u.symbol()) else {
        return Some(0);
    };
    let (base, prefix) = match sym {
        "Wh" | "W" | "varh" | "var" | "V" | "A" => (sym, 0),
        "kWh" | "kW" | "kvarh" | "kvar" | "kV" | "kA" => (sym.get(1..)?, 3),
        "MWh" | "MW" | "Mvarh" | "Mvar" => (sym.get(1..)?, 6),
        _ => return None,
    };
    let (want, scale) = match target {
        Target::Wh => ("Wh", 0),
        Target::KWh => ("Wh", 3),
        Target::W => ("W", 0),
        Target::Varh => ("varh", 0),
        Target::V => ("V", 0),
        Target::A => ("A", 0),
        Target::None => return None,
    };
    (base == want).then(|| prefix - scale)
}

/// The number at `code` converted to `target`.
fn number(r: &Reading, code: Obis, target: Target) -> Option<Decimal> {
    let s = r.obis(code)?;
    let d = s.value.as_number()?;
    match target {
        Target::None => Some(d),
        t => Some(d.scaled(shift(s.unit.as_ref(), t)?)),
    }
}

fn int(d: Decimal) -> Option<FieldValue> {
    d.round_dp(0).to_i64().map(FieldValue::Integer)
}

fn float(d: Decimal) -> Option<FieldValue> {
    Some(FieldValue::Float(d.to_f64()))
}

fn push(fields: &mut Vec<(String, FieldValue)>, key: &str, v: Option<FieldValue>) {
    if let Some(v) = v {
        fields.push((key.to_string(), v));
    }
}

/// P+ − P− in W, when both are present.
fn net_power(r: &Reading) -> Option<Decimal> {
    number(r, P_PLUS, Target::W)?.checked_sub(number(r, P_MINUS, Target::W)?)
}

fn strom_fields(r: &Reading) -> Vec<(String, FieldValue)> {
    let mut f = Vec::with_capacity(12);
    push(
        &mut f,
        "wirkenergieP",
        number(r, A_PLUS, Target::Wh).and_then(int),
    );
    push(
        &mut f,
        "wirkenergieN",
        number(r, A_MINUS, Target::Wh).and_then(int),
    );
    push(
        &mut f,
        "momentanleistungP",
        number(r, P_PLUS, Target::W).and_then(int),
    );
    push(
        &mut f,
        "momentanleistungN",
        number(r, P_MINUS, Target::W).and_then(int),
    );
    push(&mut f, "momentanleistung", net_power(r).and_then(int));
    for (name, code) in ["spannungL1", "spannungL2", "spannungL3"].iter().zip(U) {
        push(&mut f, name, number(r, code, Target::V).and_then(float));
    }
    for (name, code) in ["stromL1", "stromL2", "stromL3"].iter().zip(I) {
        push(&mut f, name, number(r, code, Target::A).and_then(float));
    }
    push(
        &mut f,
        "leistungsfaktor",
        number(r, PF, Target::None).and_then(float),
    );
    f
}

fn kaifareader_fields(r: &Reading) -> Vec<(String, FieldValue)> {
    let mut f = Vec::with_capacity(13);
    let round2 = |d: Decimal| float(d.round_dp(2));
    for (name, code) in ["VoltageL1_V", "VoltageL2_V", "VoltageL3_V"].iter().zip(U) {
        push(&mut f, name, number(r, code, Target::V).and_then(round2));
    }
    for (name, code) in ["CurrentL1_A", "CurrentL2_A", "CurrentL3_A"].iter().zip(I) {
        push(&mut f, name, number(r, code, Target::A).and_then(round2));
    }
    push(
        &mut f,
        "InstantaneousPowerIn_W",
        number(r, P_PLUS, Target::W).and_then(int),
    );
    push(
        &mut f,
        "InstantaneousPowerOut_W",
        number(r, P_MINUS, Target::W).and_then(int),
    );
    push(
        &mut f,
        "ActiveEnergyIn_Wh",
        number(r, A_PLUS, Target::Wh).and_then(int),
    );
    push(
        &mut f,
        "ActiveEnergyOut_Wh",
        number(r, A_MINUS, Target::Wh).and_then(int),
    );
    push(
        &mut f,
        "ReactiveEnergyInductive_var",
        number(r, R_PLUS, Target::Varh).and_then(int),
    );
    push(
        &mut f,
        "ReactiveEnergyCapacitive_var",
        number(r, R_MINUS, Target::Varh).and_then(int),
    );
    push(
        &mut f,
        "PowerFactor",
        number(r, PF, Target::None).and_then(|d| float(d.round_dp(3))),
    );
    f
}

type Measurement = (&'static str, Vec<(String, FieldValue)>);

fn smartmeter_v1(r: &Reading) -> Vec<Measurement> {
    let mut energy = Vec::new();
    push(
        &mut energy,
        "Bezug",
        number(r, A_PLUS, Target::KWh).and_then(float),
    );
    push(
        &mut energy,
        "Lieferung",
        number(r, A_MINUS, Target::KWh).and_then(float),
    );
    let mut power = Vec::new();
    push(
        &mut power,
        "Bezug",
        number(r, P_PLUS, Target::W).and_then(int),
    );
    push(
        &mut power,
        "Lieferung",
        number(r, P_MINUS, Target::W).and_then(int),
    );
    push(&mut power, "Gesamt", net_power(r).and_then(int));
    let mut voltage = Vec::new();
    let mut current = Vec::new();
    for (n, (u, i)) in ["L1", "L2", "L3"].iter().zip(U.into_iter().zip(I)) {
        push(&mut voltage, n, number(r, u, Target::V).and_then(float));
        push(&mut current, n, number(r, i, Target::A).and_then(float));
    }
    let mut pf = Vec::new();
    push(
        &mut pf,
        "value",
        number(r, PF, Target::None).and_then(float),
    );
    vec![
        ("Wirkenergie", energy),
        ("Momentanleistung", power),
        ("Spannung", voltage),
        ("Strom", current),
        ("Leistungsfaktor", pf),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::line_protocol::{encode_points, Precision};
    use super::*;
    use smart_meter_core::{MeterId, MeterTime, Sample};
    use std::time::{Duration, UNIX_EPOCH};

    /// The values of the Netz NÖ brochure vector (predecessors §2.6), with a signed power factor
    /// and export power to exercise signs.
    fn brochure() -> Reading {
        let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
        r.received_at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_500);
        r.meter_time = MeterTime::new(2021, 9, 27, 9, 47, 15, None, Some(120));
        let n = |c, d, m, e, u| Sample::number(Key::Obis(obis(c, d)), Decimal::new(m, e), u);
        r.samples.push(Sample {
            key: Key::Obis(Obis::CLOCK),
            value: Value::Time(r.meter_time.unwrap()),
            unit: None,
        });
        r.samples.push(n(1, 8, 12937, 0, Some(Unit::WH)));
        r.samples.push(n(2, 8, 0, 0, Some(Unit::WH)));
        r.samples.push(n(1, 7, 0, 0, Some(Unit::W)));
        r.samples.push(n(2, 7, 1234, 0, Some(Unit::W)));
        r.samples.push(n(32, 7, 2337, -1, Some(Unit::V)));
        r.samples.push(n(52, 7, 0, -1, Some(Unit::V)));
        r.samples.push(n(72, 7, 0, -1, Some(Unit::V)));
        r.samples.push(n(31, 7, 5, -2, Some(Unit::A)));
        r.samples.push(n(51, 7, 0, -2, Some(Unit::A)));
        r.samples.push(n(71, 7, 0, -2, Some(Unit::A)));
        r.samples.push(n(13, 7, -950, -3, None));
        r.samples
            .push(Sample::text(Key::Obis(Obis::METER_NUMBER), "181220000009"));
        r
    }

    fn schema(preset: Preset) -> Schema {
        Schema {
            preset,
            measurement: preset.default_measurement().unwrap_or("").to_string(),
            field_names: FieldNames::Obis,
            tags: preset == Preset::Default,
        }
    }

    // 2021-09-27T09:47:15+02:00
    const T_MS: &str = "1632728835000";

    #[test]
    fn default_layout_is_one_point_with_every_sample_as_a_field() {
        let lines = encode_points(&schema(Preset::Default).points(&brochure()), Precision::Ms);
        assert_eq!(
            lines,
            format!(
                "smart_meter,meter=evn,protocol=mbus-dlms \
                 0.0.1.0.0.255=\"2021-09-27T09:47:15+02:00\",1.0.1.8.0.255=12937,\
                 1.0.2.8.0.255=0,1.0.1.7.0.255=0,1.0.2.7.0.255=1234,1.0.32.7.0.255=233.7,\
                 1.0.52.7.0.255=0,1.0.72.7.0.255=0,1.0.31.7.0.255=0.05,1.0.51.7.0.255=0,\
                 1.0.71.7.0.255=0,1.0.13.7.0.255=-0.95,0.0.96.1.0.255=\"181220000009\" {T_MS}"
            )
        );
    }

    #[test]
    fn without_a_meter_clock_offset_the_receive_time_is_used() {
        let mut r = brochure();
        r.meter_time = MeterTime::new(2021, 9, 27, 9, 47, 15, None, None);
        let p = schema(Preset::Default).points(&r);
        assert_eq!(p[0].time, Some(r.received_at));
    }

    #[test]
    fn english_field_names_fall_back_to_the_key_when_ambiguous() {
        let mut r = brochure();
        r.samples.truncate(3);
        r.samples.push(Sample::number(
            Key::Obis(Obis::new(1, 1, 1, 8, 0, 255)),
            Decimal::new(1, 0),
            None,
        ));
        r.samples
            .push(Sample::number(Key::Kmp(60), Decimal::new(2, 0), None));
        let s = Schema {
            field_names: FieldNames::Names,
            ..schema(Preset::Default)
        };
        let keys: Vec<String> = s.points(&r)[0].fields.iter().map(|f| f.0.clone()).collect();
        assert_eq!(
            keys,
            [
                "meter_clock",
                "1.0.1.8.0.255",
                "active_energy_export",
                "1.1.1.8.0.255",
                "kmp.60"
            ]
        );
    }

    #[test]
    fn strom_preset_reproduces_the_kaifa_ma309_field_types() {
        let lines = encode_points(&schema(Preset::Strom).points(&brochure()), Precision::Ms);
        assert_eq!(
            lines,
            format!(
                "strom wirkenergieP=12937i,wirkenergieN=0i,momentanleistungP=0i,\
                 momentanleistungN=1234i,momentanleistung=-1234i,spannungL1=233.7,spannungL2=0,\
                 spannungL3=0,stromL1=0.05,stromL2=0,stromL3=0,leistungsfaktor=-0.95 {T_MS}"
            )
        );
    }

    #[test]
    fn kaifareader_preset_uses_its_field_names() {
        let mut r = brochure();
        r.samples.push(Sample::number(
            Key::Obis(R_PLUS),
            Decimal::new(77, 0),
            Some(Unit::VARH),
        ));
        let lines = encode_points(&schema(Preset::Kaifareader).points(&r), Precision::S);
        assert_eq!(
            lines,
            "smartmeter VoltageL1_V=233.7,VoltageL2_V=0,VoltageL3_V=0,CurrentL1_A=0.05,\
             CurrentL2_A=0,CurrentL3_A=0,InstantaneousPowerIn_W=0i,InstantaneousPowerOut_W=1234i,\
             ActiveEnergyIn_Wh=12937i,ActiveEnergyOut_Wh=0i,ReactiveEnergyInductive_var=77i,\
             PowerFactor=-0.95 1632728835"
        );
    }

    #[test]
    fn smartmeter_v1_preset_writes_five_measurements_in_kwh_and_w() {
        let lines = encode_points(
            &schema(Preset::SmartmeterV1).points(&brochure()),
            Precision::Ms,
        );
        assert_eq!(
            lines,
            format!(
                "Wirkenergie Bezug=12.937,Lieferung=0 {T_MS}\n\
                 Momentanleistung Bezug=0i,Lieferung=1234i,Gesamt=-1234i {T_MS}\n\
                 Spannung L1=233.7,L2=0,L3=0 {T_MS}\n\
                 Strom L1=0.05,L2=0,L3=0 {T_MS}\n\
                 Leistungsfaktor value=-0.95 {T_MS}"
            )
        );
    }

    #[test]
    fn presets_convert_units_and_skip_what_does_not_fit() {
        let mut r = Reading::new(MeterId::new("p1").unwrap(), "dsmr");
        r.samples.push(Sample::number(
            Key::Obis(A_PLUS),
            Decimal::new(5305034, -3),
            Unit::from_symbol("kWh"),
        ));
        r.samples.push(Sample::number(
            Key::Obis(P_PLUS),
            Decimal::new(1234, -3),
            Unit::from_symbol("kW"),
        ));
        r.samples.push(Sample::number(
            Key::Obis(A_MINUS),
            Decimal::new(3, 0),
            Unit::from_symbol("GJ"),
        ));
        r.samples.push(Sample::text(Key::Obis(obis(32, 7)), "n/a"));
        let p = schema(Preset::Strom).points(&r);
        assert_eq!(
            p[0].fields,
            vec![
                ("wirkenergieP".to_string(), FieldValue::Integer(5_305_034)),
                ("momentanleistungP".to_string(), FieldValue::Integer(1234)),
            ]
        );
        let v1 = schema(Preset::SmartmeterV1).points(&r);
        assert_eq!(
            v1[0].fields,
            vec![("Bezug".to_string(), FieldValue::Float(5305.034))]
        );
        // Measurements without any value produce no line at all.
        assert_eq!(
            encode_points(&v1, Precision::S).lines().count(),
            2,
            "{v1:?}"
        );
    }

    #[test]
    fn integer_fields_round_half_away_from_zero() {
        let mut r = Reading::new(MeterId::new("x").unwrap(), "dsmr");
        r.samples.push(Sample::number(
            Key::Obis(P_PLUS),
            Decimal::new(15, -1),
            Some(Unit::W),
        ));
        r.samples.push(Sample::number(
            Key::Obis(P_MINUS),
            Decimal::new(4, -1),
            Some(Unit::W),
        ));
        let f = strom_fields(&r);
        assert_eq!(f[0].1, FieldValue::Integer(2));
        assert_eq!(f[1].1, FieldValue::Integer(0));
        assert_eq!(f[2].1, FieldValue::Integer(1));
    }
}
