//! Pure encoders: a reading → the MQTT messages (topic, payload) of each `format`.
//!
//! The predecessor presets reproduce the topics and payload text their users' dashboards and
//! scripts parse, with their bugs fixed (signed power factor, no float artefacts such as
//! `233.70000000000002`, correct UTC epoch seconds, real JSON). Values are converted to the
//! unit each preset always used (a DSMR meter's `kWh` becomes `Wh` where the preset says `Wh`),
//! so a preset's output does not depend on the meter family. Values the meter did not send are
//! left out; predecessors that published a stale value instead were wrong to do so.

use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use serde::Deserialize;
use smart_meter_core::{Decimal, Key, Obis, Reading, Sample, Unit, Value};

/// The `format` of an `mqtt` sink.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// The reading JSON of SPEC.md on `<base>/<meter>`.
    #[default]
    Json,
    /// One topic per value, `<base>/<meter>/<key>`, plain-text payload.
    PerValue,
    /// EVNSmartmeterDecrypter: one JSON object `{"WIn": {"value": …, "unit": "Wh"}, …,
    /// "timestamp": {…}}` on `<base>/values` (base `sensors/smartmeter`).
    EvnJson,
    /// kaifareader: `<base>/<FieldName>` (base `kaifareader`), e.g. `kaifareader/VoltageL1_V`.
    Kaifareader,
    /// SmartMeterEVN V1: `<base>/WirkenergieP` … (base `Smartmeter`), energy in kWh.
    Smartmeterevn,
    /// SmartMeterEVN V2 (`AusleseSkript.py`): `<base>/WirkenergieBezug` …, energy in kWh.
    SmartmeterevnV2,
}

impl Format {
    /// The config name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::PerValue => "per-value",
            Format::EvnJson => "evn-json",
            Format::Kaifareader => "kaifareader",
            Format::Smartmeterevn => "smartmeterevn",
            Format::SmartmeterevnV2 => "smartmeterevn-v2",
        }
    }

    /// `base_topic` when the config does not set one.
    pub fn default_base(self) -> &'static str {
        match self {
            Format::Json | Format::PerValue => "smart-meter",
            Format::EvnJson => "sensors/smartmeter",
            Format::Kaifareader => "kaifareader",
            Format::Smartmeterevn | Format::SmartmeterevnV2 => "Smartmeter",
        }
    }

    /// The field names a preset can publish (`fields` key), in publishing order, with whether
    /// each is on by default. Empty for formats without named fields.
    pub fn fields(self) -> Vec<(&'static str, bool)> {
        match self {
            Format::Kaifareader => KAIFAREADER.iter().map(|f| (f.name, f.default_on)).collect(),
            Format::Smartmeterevn => SMARTMETEREVN_V1.iter().map(|f| (f.name, true)).collect(),
            Format::SmartmeterevnV2 => SMARTMETEREVN_V2.iter().map(|f| (f.name, true)).collect(),
            Format::EvnJson => EVN_JSON.iter().map(|(n, _)| (*n, true)).collect(),
            Format::Json | Format::PerValue => Vec::new(),
        }
    }
}

/// Active power (total, signed): the derived net power import − export.
pub const NET_POWER: Obis = Obis::new(1, 0, 16, 7, 0, 255);

/// Turns readings into messages for one sink.
#[derive(Clone, Debug)]
pub struct Encoder {
    format: Format,
    base: String,
    net_power: bool,
    fields: Option<Vec<String>>,
}

impl Encoder {
    /// An encoder. `base_topic` defaults per format. `fields` (presets only) selects which of
    /// the preset's fields are published, always in the preset's order (default: the
    /// predecessor's default set).
    pub fn new(
        format: Format,
        base_topic: Option<&str>,
        net_power: bool,
        fields: Option<Vec<String>>,
    ) -> Self {
        Encoder {
            format,
            base: base_topic
                .unwrap_or(format.default_base())
                .trim_end_matches('/')
                .to_string(),
            net_power,
            fields,
        }
    }

    /// The base topic in use.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The messages for one reading, in publishing order.
    pub fn encode(&self, r: &Reading) -> Vec<(String, Vec<u8>)> {
        match self.format {
            Format::Json => {
                let mut json = Vec::new();
                if self.net_power {
                    with_net_power(r).write_json(&mut json);
                } else {
                    r.write_json(&mut json);
                }
                vec![(format!("{}/{}", self.base, r.meter), json)]
            }
            Format::PerValue => {
                let derived;
                let r = if self.net_power {
                    derived = with_net_power(r);
                    &derived
                } else {
                    r
                };
                let mut seen: Vec<&Key> = Vec::new();
                let mut out = Vec::with_capacity(r.samples.len());
                for s in &r.samples {
                    // One topic per key: the first occurrence wins, as in the reading JSON.
                    if seen.contains(&&s.key) {
                        continue;
                    }
                    seen.push(&s.key);
                    let topic = format!("{}/{}/{}", self.base, r.meter, topic_level(&s.key));
                    out.push((topic, s.value.to_string().into_bytes()));
                }
                out
            }
            Format::EvnJson => self.evn_json(r),
            Format::Kaifareader => self.named(r, KAIFAREADER),
            Format::Smartmeterevn => self.named(r, SMARTMETEREVN_V1),
            Format::SmartmeterevnV2 => self.named(r, SMARTMETEREVN_V2),
        }
    }

    fn enabled(&self, name: &str, default_on: bool) -> bool {
        match &self.fields {
            Some(list) => list.iter().any(|f| f == name),
            None => default_on,
        }
    }

    fn named(&self, r: &Reading, table: &[Field]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        for f in table {
            if !self.enabled(f.name, f.default_on) {
                continue;
            }
            if let Some(text) = f.value.render(r) {
                out.push((format!("{}/{}", self.base, f.name), text.into_bytes()));
            }
        }
        out
    }

    /// `{"WIn": {"value": 12937.0, "unit": "Wh"}, …, "timestamp": {"value": …, "unit": "s"}}`:
    /// the predecessor's layout (Python's spacing, floats with a decimal point, keys in the
    /// meter's order, `timestamp` last) as real JSON.
    fn evn_json(&self, r: &Reading) -> Vec<(String, Vec<u8>)> {
        let mut out = String::from("{");
        let mut seen: Vec<&str> = Vec::new();
        for s in &r.samples {
            let Key::Obis(o) = &s.key else { continue };
            let Some((name, unit)) = EVN_JSON
                .iter()
                .find(|(_, (obis, _))| obis == o)
                .map(|(n, (_, u))| (*n, *u))
            else {
                continue;
            };
            if seen.contains(&name) || !self.enabled(name, true) {
                continue;
            }
            let Some(v) = number_in(s, unit) else {
                continue;
            };
            seen.push(name);
            let shown_unit = if unit.is_empty() { "1" } else { unit };
            let _ = write!(
                out,
                "\"{name}\": {{\"value\": {}, \"unit\": \"{shown_unit}\"}}, ",
                py_float(v.round_dp(3))
            );
        }
        let secs = r
            .timestamp()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let _ = write!(
            out,
            "\"timestamp\": {{\"value\": {secs}, \"unit\": \"s\"}}}}"
        );
        vec![(format!("{}/values", self.base), out.into_bytes())]
    }
}

/// A topic level for a key: OBIS as dotted groups, `kmp.<id>`, named keys with MQTT's special
/// characters replaced.
fn topic_level(key: &Key) -> String {
    key.to_string()
        .chars()
        .map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c })
        .collect()
}

/// The reading with the net power `1.0.16.7.0.255` (import − export, in W) added, when the
/// meter sends both powers and no net power of its own.
pub fn with_net_power(r: &Reading) -> Reading {
    let mut out = r.clone();
    if r.obis(NET_POWER).is_some() {
        return out;
    }
    if let Some(net) = net_power(r) {
        out.samples
            .push(Sample::number(Key::Obis(NET_POWER), net, Some(Unit::W)));
    }
    out
}

fn net_power(r: &Reading) -> Option<Decimal> {
    let p_in = number_in(r.obis(Obis::POWER_IMPORT)?, "W")?;
    let p_out = number_in(r.obis(Obis::POWER_EXPORT)?, "W")?;
    p_in.checked_sub(p_out)
}

/// The sample's number in `target` (a unit symbol such as `Wh` or `kWh`; empty: no unit),
/// converting between `k`/`M` prefixes of the same unit. `None` for text or another unit.
fn number_in(s: &Sample, target: &str) -> Option<Decimal> {
    let Value::Number(d) = &s.value else {
        return None;
    };
    let sym = s.unit.as_ref().and_then(|u| u.symbol()).unwrap_or("");
    if target.is_empty() {
        return s.unit.is_none().then_some(*d);
    }
    if sym == target {
        return Some(*d);
    }
    let (pu, bu) = split_prefix(sym);
    let (pt, bt) = split_prefix(target);
    (bu == bt).then(|| d.shift(pu - pt))
}

/// `kWh` → (3, `Wh`), `MWh` → (6, `Wh`), `W` → (0, `W`); only for electrical units.
fn split_prefix(sym: &str) -> (i8, &str) {
    const BASES: [&str; 6] = ["W", "Wh", "var", "varh", "VA", "VAh"];
    for (prefix, exp) in [("k", 3), ("M", 6)] {
        if let Some(base) = sym.strip_prefix(prefix) {
            if BASES.contains(&base) {
                return (exp, base);
            }
        }
    }
    (0, sym)
}

/// Python's `str(float)` for the numbers meters send: a decimal point always (`12937.0`).
fn py_float(d: Decimal) -> String {
    let s = d.to_string();
    if s.contains('.') {
        s
    } else {
        s + ".0"
    }
}

/// How a preset field is computed and written.
#[derive(Clone, Copy)]
enum Render {
    /// A register in `unit`, written like Python wrote the scaled value: as a float when the
    /// meter's scaler is negative, else as an integer (kaifareader: `value × 10**scaler`),
    /// rounded to `round` decimals when given.
    Scaled(Obis, &'static str, Option<u8>),
    /// A register in `unit`, always written as a float, rounded to `round` decimals.
    Float(Obis, &'static str, u8),
    /// A register in `unit`, written as a plain number (integers without a decimal point).
    Plain(Obis, &'static str),
    /// Import − export power in W.
    NetPower,
    /// Text as sent (meter number, device name).
    Text(Obis),
    /// The meter clock as an ISO 8601 string.
    Time(Obis),
}

impl Render {
    fn render(self, r: &Reading) -> Option<String> {
        match self {
            Render::Scaled(o, unit, round) => {
                let s = r.obis(o)?;
                let d = number_in(s, unit)?;
                let d = match round {
                    Some(n) => d.round_dp(n),
                    None => d,
                };
                Some(if d.exponent() < 0 {
                    py_float(d)
                } else {
                    d.to_string()
                })
            }
            Render::Float(o, unit, round) => {
                Some(py_float(number_in(r.obis(o)?, unit)?.round_dp(round)))
            }
            Render::Plain(o, unit) => Some(number_in(r.obis(o)?, unit)?.to_string()),
            Render::NetPower => Some(net_power(r)?.to_string()),
            Render::Text(o) => match &r.obis(o)?.value {
                Value::Text(t) => Some(t.clone()),
                other => Some(other.to_string()),
            },
            Render::Time(o) => match &r.obis(o)?.value {
                Value::Time(t) => Some(t.to_string()),
                Value::Text(t) => Some(t.clone()),
                Value::Number(_) => None,
            },
        }
    }
}

struct Field {
    name: &'static str,
    value: Render,
    default_on: bool,
}

const fn field(name: &'static str, value: Render) -> Field {
    Field {
        name,
        value,
        default_on: true,
    }
}

const fn o(c: u8, d: u8, e: u8) -> Obis {
    Obis::new(1, 0, c, d, e, 255)
}

/// kaifareader's field names (`<base>/<FieldName>`); `DateAndTime` is off by default as in its
/// template.
const KAIFAREADER: &[Field] = &[
    field("VoltageL1_V", Render::Scaled(o(32, 7, 0), "V", Some(2))),
    field("VoltageL2_V", Render::Scaled(o(52, 7, 0), "V", Some(2))),
    field("VoltageL3_V", Render::Scaled(o(72, 7, 0), "V", Some(2))),
    field("CurrentL1_A", Render::Scaled(o(31, 7, 0), "A", Some(2))),
    field("CurrentL2_A", Render::Scaled(o(51, 7, 0), "A", Some(2))),
    field("CurrentL3_A", Render::Scaled(o(71, 7, 0), "A", Some(2))),
    field(
        "InstantaneousPowerIn_W",
        Render::Scaled(o(1, 7, 0), "W", None),
    ),
    field(
        "InstantaneousPowerOut_W",
        Render::Scaled(o(2, 7, 0), "W", None),
    ),
    field("ActiveEnergyIn_Wh", Render::Scaled(o(1, 8, 0), "Wh", None)),
    field("ActiveEnergyOut_Wh", Render::Scaled(o(2, 8, 0), "Wh", None)),
    field(
        "ReactiveEnergyInductive_var",
        Render::Scaled(o(3, 8, 0), "varh", None),
    ),
    field(
        "ReactiveEnergyCapacitive_var",
        Render::Scaled(o(4, 8, 0), "varh", None),
    ),
    field("PowerFactor", Render::Scaled(o(13, 7, 0), "", Some(3))),
    field("DeviceNumber", Render::Text(Obis::METER_NUMBER)),
    field("DeviceName", Render::Text(Obis::LOGICAL_DEVICE_NAME)),
    Field {
        name: "DateAndTime",
        value: Render::Time(Obis::CLOCK),
        default_on: false,
    },
];

/// SmartMeterEVN `EvnSmartmeterMQTT.py` / `EVNSmartmeterMQTT_V01.py` topics, energy in kWh.
const SMARTMETEREVN_V1: &[Field] = &[
    field("WirkenergieP", Render::Float(o(1, 8, 0), "kWh", 3)),
    field("WirkenergieN", Render::Float(o(2, 8, 0), "kWh", 3)),
    field("MomentanleistungP", Render::Plain(o(1, 7, 0), "W")),
    field("MomentanleistungN", Render::Plain(o(2, 7, 0), "W")),
    field("Momentanleistung", Render::NetPower),
    field("SpannungL1", Render::Float(o(32, 7, 0), "V", 2)),
    field("SpannungL2", Render::Float(o(52, 7, 0), "V", 2)),
    field("SpannungL3", Render::Float(o(72, 7, 0), "V", 2)),
    field("StromL1", Render::Float(o(31, 7, 0), "A", 2)),
    field("StromL2", Render::Float(o(51, 7, 0), "A", 2)),
    field("StromL3", Render::Float(o(71, 7, 0), "A", 2)),
    field("Leistungsfaktor", Render::Float(o(13, 7, 0), "", 3)),
];

/// SmartMeterEVN `AusleseSkript.py` (V2) topics, energy in kWh.
const SMARTMETEREVN_V2: &[Field] = &[
    field("WirkenergieBezug", Render::Float(o(1, 8, 0), "kWh", 3)),
    field("WirkenergieLieferung", Render::Float(o(2, 8, 0), "kWh", 3)),
    field("WirkleistungBezug", Render::Plain(o(1, 7, 0), "W")),
    field("WirkleistungLieferung", Render::Plain(o(2, 7, 0), "W")),
    field("Wirkleistunggesamt", Render::NetPower),
    field("SpannungL1", Render::Float(o(32, 7, 0), "V", 2)),
    field("SpannungL2", Render::Float(o(52, 7, 0), "V", 2)),
    field("SpannungL3", Render::Float(o(72, 7, 0), "V", 2)),
    field("StromL1", Render::Float(o(31, 7, 0), "A", 2)),
    field("StromL2", Render::Float(o(51, 7, 0), "A", 2)),
    field("StromL3", Render::Float(o(71, 7, 0), "A", 2)),
    field("Leistungsfaktor", Render::Float(o(13, 7, 0), "", 3)),
];

/// EVNSmartmeterDecrypter's keys with their OBIS code and unit.
const EVN_JSON: &[(&str, (Obis, &str))] = &[
    ("WIn", (o(1, 8, 0), "Wh")),
    ("WOut", (o(2, 8, 0), "Wh")),
    ("PIn", (o(1, 7, 0), "W")),
    ("POut", (o(2, 7, 0), "W")),
    ("U1", (o(32, 7, 0), "V")),
    ("U2", (o(52, 7, 0), "V")),
    ("U3", (o(72, 7, 0), "V")),
    ("I1", (o(31, 7, 0), "A")),
    ("I2", (o(51, 7, 0), "A")),
    ("I3", (o(71, 7, 0), "A")),
    ("PF", (o(13, 7, 0), "")),
];

#[cfg(test)]
mod tests {
    use super::*;
    use smart_meter_core::{MeterId, MeterTime};
    use std::time::Duration;

    /// The values of the Netz NÖ brochure frame (Kaifa MA309, predecessors §2.6), in the
    /// meter's order, as the DLMS adapter produces them (scalers kept as exponents).
    fn brochure() -> Reading {
        let mut r = Reading::new(MeterId::new("evn").unwrap(), "mbus-dlms");
        r.received_at = UNIX_EPOCH + Duration::from_millis(1_632_728_835_400);
        r.meter_time = MeterTime::new(2021, 9, 27, 9, 47, 15, None, None);
        let n = |c, d, v: i128, e: i8, u: Option<Unit>| {
            Sample::number(Key::Obis(o(c, d, 0)), Decimal::new(v, e), u)
        };
        r.samples = vec![
            Sample {
                key: Key::Obis(Obis::CLOCK),
                value: Value::Time(r.meter_time.unwrap()),
                unit: None,
            },
            n(1, 8, 12937, 0, Some(Unit::WH)),
            n(2, 8, 0, 0, Some(Unit::WH)),
            n(1, 7, 0, 0, Some(Unit::W)),
            n(2, 7, 0, 0, Some(Unit::W)),
            n(32, 7, 2337, -1, Some(Unit::V)),
            n(52, 7, 0, -1, Some(Unit::V)),
            n(72, 7, 0, -1, Some(Unit::V)),
            n(31, 7, 0, -2, Some(Unit::A)),
            n(51, 7, 0, -2, Some(Unit::A)),
            n(71, 7, 0, -2, Some(Unit::A)),
            n(13, 7, 1000, -3, None),
            Sample::text(Key::Obis(Obis::METER_NUMBER), "181220000009"),
        ];
        r
    }

    fn text(msgs: &[(String, Vec<u8>)]) -> Vec<(String, String)> {
        msgs.iter()
            .map(|(t, p)| (t.clone(), String::from_utf8(p.clone()).unwrap()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn json_is_the_reading_json_on_base_slash_meter() {
        let r = brochure();
        let e = Encoder::new(Format::Json, None, false, None);
        let m = text(&e.encode(&r));
        assert_eq!(m, pairs(&[("smart-meter/evn", &r.to_json())]));
        let e = Encoder::new(Format::Json, Some("home/meters/"), false, None);
        assert_eq!(e.encode(&r)[0].0, "home/meters/evn");
    }

    #[test]
    fn json_adds_net_power_when_asked() {
        let mut r = brochure();
        r.samples[3] = Sample::number(Key::Obis(o(1, 7, 0)), Decimal::new(120, 0), Some(Unit::W));
        r.samples[4] = Sample::number(Key::Obis(o(2, 7, 0)), Decimal::new(1530, 0), Some(Unit::W));
        let e = Encoder::new(Format::Json, None, true, None);
        let m = e.encode(&r);
        let v: serde_json::Value = serde_json::from_slice(&m[0].1).unwrap();
        assert_eq!(v["values"]["1.0.16.7.0.255"]["value"], -1410);
        assert_eq!(v["values"]["1.0.16.7.0.255"]["unit"], "W");
    }

    #[test]
    fn per_value_publishes_one_plain_topic_per_value() {
        let r = brochure();
        let e = Encoder::new(Format::PerValue, None, true, None);
        let m = text(&e.encode(&r));
        assert_eq!(
            m,
            pairs(&[
                ("smart-meter/evn/0.0.1.0.0.255", "2021-09-27T09:47:15"),
                ("smart-meter/evn/1.0.1.8.0.255", "12937"),
                ("smart-meter/evn/1.0.2.8.0.255", "0"),
                ("smart-meter/evn/1.0.1.7.0.255", "0"),
                ("smart-meter/evn/1.0.2.7.0.255", "0"),
                ("smart-meter/evn/1.0.32.7.0.255", "233.7"),
                ("smart-meter/evn/1.0.52.7.0.255", "0"),
                ("smart-meter/evn/1.0.72.7.0.255", "0"),
                ("smart-meter/evn/1.0.31.7.0.255", "0"),
                ("smart-meter/evn/1.0.51.7.0.255", "0"),
                ("smart-meter/evn/1.0.71.7.0.255", "0"),
                ("smart-meter/evn/1.0.13.7.0.255", "1"),
                ("smart-meter/evn/0.0.96.1.0.255", "181220000009"),
                ("smart-meter/evn/1.0.16.7.0.255", "0"),
            ])
        );
    }

    #[test]
    fn evn_json_matches_the_predecessor_output_for_the_brochure_frame() {
        let e = Encoder::new(Format::EvnJson, None, true, None);
        let m = text(&e.encode(&brochure()));
        // predecessors §6, with the power-factor unit fixed ("1" instead of "Unknown a9") and
        // the timestamp from the reading (no UTC offset in the meter clock: receive time).
        let expected = "{\"WIn\": {\"value\": 12937.0, \"unit\": \"Wh\"}, \"WOut\": {\"value\": 0.0, \
             \"unit\": \"Wh\"}, \"PIn\": {\"value\": 0.0, \"unit\": \"W\"}, \"POut\": {\"value\": \
             0.0, \"unit\": \"W\"}, \"U1\": {\"value\": 233.7, \"unit\": \"V\"}, \"U2\": {\"value\": \
             0.0, \"unit\": \"V\"}, \"U3\": {\"value\": 0.0, \"unit\": \"V\"}, \"I1\": {\"value\": \
             0.0, \"unit\": \"A\"}, \"I2\": {\"value\": 0.0, \"unit\": \"A\"}, \"I3\": {\"value\": \
             0.0, \"unit\": \"A\"}, \"PF\": {\"value\": 1.0, \"unit\": \"1\"}, \"timestamp\": \
             {\"value\": 1632728835, \"unit\": \"s\"}}";
        assert_eq!(m, pairs(&[("sensors/smartmeter/values", expected)]));
        let v: serde_json::Value = serde_json::from_str(expected).unwrap();
        assert_eq!(v["U1"]["value"], 233.7);
    }

    #[test]
    fn evn_json_uses_the_meter_clock_when_it_has_an_offset_and_converts_kwh() {
        let mut r = Reading::new(MeterId::new("p1").unwrap(), "dsmr");
        r.meter_time = MeterTime::new(2021, 9, 27, 9, 47, 15, None, Some(120));
        r.samples = vec![
            Sample::number(
                Key::Obis(o(1, 8, 0)),
                Decimal::new(12937512, -3),
                Unit::from_symbol("kWh"),
            ),
            Sample::number(
                Key::Obis(o(1, 7, 0)),
                Decimal::new(1234, -3),
                Unit::from_symbol("kW"),
            ),
        ];
        let e = Encoder::new(Format::EvnJson, Some("x/y"), true, None);
        let m = text(&e.encode(&r));
        assert_eq!(
            m,
            pairs(&[(
                "x/y/values",
                "{\"WIn\": {\"value\": 12937512.0, \"unit\": \"Wh\"}, \"PIn\": {\"value\": \
                 1234.0, \"unit\": \"W\"}, \"timestamp\": {\"value\": 1632728835, \"unit\": \"s\"}}"
            )])
        );
    }

    #[test]
    fn kaifareader_publishes_field_names_with_pythons_number_types() {
        let e = Encoder::new(Format::Kaifareader, None, true, None);
        let m = text(&e.encode(&brochure()));
        assert_eq!(
            m,
            pairs(&[
                ("kaifareader/VoltageL1_V", "233.7"),
                ("kaifareader/VoltageL2_V", "0.0"),
                ("kaifareader/VoltageL3_V", "0.0"),
                ("kaifareader/CurrentL1_A", "0.0"),
                ("kaifareader/CurrentL2_A", "0.0"),
                ("kaifareader/CurrentL3_A", "0.0"),
                ("kaifareader/InstantaneousPowerIn_W", "0"),
                ("kaifareader/InstantaneousPowerOut_W", "0"),
                ("kaifareader/ActiveEnergyIn_Wh", "12937"),
                ("kaifareader/ActiveEnergyOut_Wh", "0"),
                ("kaifareader/PowerFactor", "1.0"),
                ("kaifareader/DeviceNumber", "181220000009"),
            ])
        );
        let e = Encoder::new(
            Format::Kaifareader,
            Some("meter"),
            true,
            Some(vec!["DateAndTime".into(), "PowerFactor".into()]),
        );
        let m = text(&e.encode(&brochure()));
        assert_eq!(
            m,
            pairs(&[
                ("meter/PowerFactor", "1.0"),
                ("meter/DateAndTime", "2021-09-27T09:47:15"),
            ])
        );
    }

    #[test]
    fn smartmeterevn_publishes_kwh_net_power_and_a_signed_power_factor() {
        let mut r = brochure();
        r.samples[2] = Sample::number(
            Key::Obis(o(2, 8, 0)),
            Decimal::new(5305034, 0),
            Some(Unit::WH),
        );
        r.samples[3] = Sample::number(Key::Obis(o(1, 7, 0)), Decimal::new(120, 0), Some(Unit::W));
        r.samples[4] = Sample::number(Key::Obis(o(2, 7, 0)), Decimal::new(1530, 0), Some(Unit::W));
        r.samples[8] = Sample::number(Key::Obis(o(31, 7, 0)), Decimal::new(123, -2), Some(Unit::A));
        // T210-D sends the power factor as Int16: -0.950 (0xFC4A), not 64.586.
        r.samples[11] = Sample::number(Key::Obis(o(13, 7, 0)), Decimal::new(-950, -3), None);
        let e = Encoder::new(Format::Smartmeterevn, None, true, None);
        assert_eq!(
            text(&e.encode(&r)),
            pairs(&[
                ("Smartmeter/WirkenergieP", "12.937"),
                ("Smartmeter/WirkenergieN", "5305.034"),
                ("Smartmeter/MomentanleistungP", "120"),
                ("Smartmeter/MomentanleistungN", "1530"),
                ("Smartmeter/Momentanleistung", "-1410"),
                ("Smartmeter/SpannungL1", "233.7"),
                ("Smartmeter/SpannungL2", "0.0"),
                ("Smartmeter/SpannungL3", "0.0"),
                ("Smartmeter/StromL1", "1.23"),
                ("Smartmeter/StromL2", "0.0"),
                ("Smartmeter/StromL3", "0.0"),
                ("Smartmeter/Leistungsfaktor", "-0.95"),
            ])
        );
        let e = Encoder::new(Format::SmartmeterevnV2, None, true, None);
        let names: Vec<String> = e.encode(&r).into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            names,
            [
                "Smartmeter/WirkenergieBezug",
                "Smartmeter/WirkenergieLieferung",
                "Smartmeter/WirkleistungBezug",
                "Smartmeter/WirkleistungLieferung",
                "Smartmeter/Wirkleistunggesamt",
                "Smartmeter/SpannungL1",
                "Smartmeter/SpannungL2",
                "Smartmeter/SpannungL3",
                "Smartmeter/StromL1",
                "Smartmeter/StromL2",
                "Smartmeter/StromL3",
                "Smartmeter/Leistungsfaktor",
            ]
        );
    }

    #[test]
    fn values_the_meter_did_not_send_are_left_out() {
        let mut r = Reading::new(MeterId::new("k").unwrap(), "kamstrup");
        r.samples.push(Sample::number(
            Key::Kmp(60),
            Decimal::new(5, 0),
            Unit::from_symbol("GJ"),
        ));
        for f in [
            Format::Kaifareader,
            Format::Smartmeterevn,
            Format::SmartmeterevnV2,
        ] {
            assert!(
                Encoder::new(f, None, true, None).encode(&r).is_empty(),
                "{f:?}"
            );
        }
        let m = text(&Encoder::new(Format::EvnJson, None, true, None).encode(&r));
        assert!(m[0].1.starts_with("{\"timestamp\": {\"value\": "), "{m:?}");
        let m = text(&Encoder::new(Format::PerValue, None, true, None).encode(&r));
        assert_eq!(m, pairs(&[("smart-meter/k/kmp.60", "5")]));
    }
}
