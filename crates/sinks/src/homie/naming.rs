//! What a reading key is, in words and ids: the group (Homie node) it belongs to, its property id,
//! its English name and the physical quantity behind it. Shared by the `homie` and
//! `homeassistant` sinks so both name a value the same way.
//!
//! # Ids
//! - Well-known codes get readable ids. Where the predecessor's Homie sink (smart_meter_reader)
//!   had an id, it is kept, so its users' dashboards keep working: `energy/imported-total`
//!   (1.8.0), `energy/used-tariff-1`, `energy/delivered-tariff-1`, `power/current-usage` (1.7.0),
//!   `power/current-delivery`, and for the Kamstrup heat meter `temperatures/temp1`,
//!   `flow/volume`, `ops/hour-counter`, … The others follow the same style
//!   (`energy/exported-total`, `voltage/l1`, `current/neutral`, `power-factor/total`).
//! - Readable ids are used only for channel `B = 0` and `F = 255`; any other OBIS code gets the
//!   six groups joined by hyphens (`1-0-1-8-3-255`), which is always a valid Homie id and unique.
//! - Kamstrup registers without a readable id are `kmp-<register>`; named keys are slugged.
//!
//! Ids are unique within a group for distinct keys by construction (readable ids contain letters,
//! OBIS ids only digits); the Homie device still checks and de-duplicates, so a slugged named
//! key can never shadow another property.

use smart_meter_core::{describe_obis, Key, Obis};

/// A group of values: a Homie node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Cumulative energy registers.
    Energy,
    /// Instantaneous power.
    Power,
    /// Voltages.
    Voltage,
    /// Currents.
    Current,
    /// Power factors.
    PowerFactor,
    /// Grid frequency.
    Grid,
    /// Heat meter temperatures.
    Temperatures,
    /// Heat meter flow and volume.
    Flow,
    /// Operating counters (hours).
    Ops,
    /// Identity, clock and status of the meter.
    Meter,
    /// Sub-meters on the meter's M-Bus (DSMR channels 1–4: gas, water, heat).
    Mbus,
    /// Everything else.
    Other,
}

impl Group {
    /// Every group, in the order the Homie `$nodes` lists them.
    pub const ALL: [Group; 12] = [
        Group::Energy,
        Group::Power,
        Group::Voltage,
        Group::Current,
        Group::PowerFactor,
        Group::Grid,
        Group::Temperatures,
        Group::Flow,
        Group::Ops,
        Group::Meter,
        Group::Mbus,
        Group::Other,
    ];

    /// The Homie node id.
    pub fn id(self) -> &'static str {
        match self {
            Group::Energy => "energy",
            Group::Power => "power",
            Group::Voltage => "voltage",
            Group::Current => "current",
            Group::PowerFactor => "power-factor",
            Group::Grid => "grid",
            Group::Temperatures => "temperatures",
            Group::Flow => "flow",
            Group::Ops => "ops",
            Group::Meter => "meter",
            Group::Mbus => "mbus",
            Group::Other => "other",
        }
    }

    /// The Homie node `$name`.
    pub fn name(self) -> &'static str {
        match self {
            Group::Energy => "Energy",
            Group::Power => "Power",
            Group::Voltage => "Voltage",
            Group::Current => "Current",
            Group::PowerFactor => "Power factor",
            Group::Grid => "Grid",
            Group::Temperatures => "Temperatures",
            Group::Flow => "Flow",
            Group::Ops => "Operation",
            Group::Meter => "Meter",
            Group::Mbus => "M-Bus devices",
            Group::Other => "Other values",
        }
    }

    /// The Homie node `$type`: what kind of values the node holds.
    pub fn kind(self) -> &'static str {
        match self {
            Group::Energy => "cumulative energy registers",
            Group::Power => "instantaneous power",
            Group::Voltage => "instantaneous voltage",
            Group::Current => "instantaneous current",
            Group::PowerFactor => "instantaneous power factor",
            Group::Grid => "grid quality",
            Group::Temperatures => "heat meter temperatures",
            Group::Flow => "heat meter flow and volume",
            Group::Ops => "operating counters",
            Group::Meter => "meter identity, clock and status",
            Group::Mbus => "sub-meter readings",
            Group::Other => "registers without a known grouping",
        }
    }
}

/// The physical quantity of a value, as far as the key and unit tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Active energy (Wh, kWh, MWh, GJ).
    Energy,
    /// Reactive energy (varh).
    ReactiveEnergy,
    /// Apparent energy (VAh).
    ApparentEnergy,
    /// Active power (W, kW).
    Power,
    /// Reactive power (var).
    ReactivePower,
    /// Apparent power (VA).
    ApparentPower,
    /// Voltage.
    Voltage,
    /// Current.
    Current,
    /// Power factor, a ratio from −1 to 1.
    PowerFactor,
    /// Frequency.
    Frequency,
    /// A temperature.
    Temperature,
    /// A temperature difference (K): not a temperature for Home Assistant.
    TemperatureDifference,
    /// A volume (m³, l).
    Volume,
    /// A volume flow (m³/h, l/h).
    VolumeFlow,
    /// Operating time (h).
    Duration,
    /// A count of events (power failures).
    Count,
    /// The meter's clock.
    Clock,
    /// An identifier or status text (meter number, device name, tariff).
    Text,
    /// Not known.
    Other,
}

impl Quantity {
    /// True for quantities whose registers have a resolution finer than one unit, so that the
    /// Homie property is a `float` even when the first value happens to be whole.
    pub fn is_fractional(self) -> bool {
        matches!(
            self,
            Quantity::Voltage
                | Quantity::Current
                | Quantity::PowerFactor
                | Quantity::Frequency
                | Quantity::Temperature
                | Quantity::TemperatureDifference
                | Quantity::VolumeFlow
        )
    }
}

/// How a key is named and grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    /// The group (Homie node).
    pub group: Group,
    /// The property id within the group: valid per the Homie id rules.
    pub id: String,
    /// English name, never empty.
    pub name: String,
    /// The quantity.
    pub quantity: Quantity,
    /// True for a register that only grows (energy totals, volume totals, hour counters).
    pub cumulative: bool,
}

/// Names a key. `unit` (the symbol, if any) refines the quantity where the key alone does not
/// say (DSMR demand registers in kW, M-Bus channel volumes in m³).
pub fn name_key(key: &Key, unit: Option<&str>) -> Naming {
    let mut n = match key {
        Key::Obis(o) => name_obis(*o),
        Key::Kmp(r) => name_kmp(*r),
        Key::Named(s) => Naming {
            group: Group::Other,
            id: slug(s),
            name: s.to_string(),
            quantity: Quantity::Other,
            cumulative: false,
        },
    };
    if n.quantity == Quantity::Other {
        n.quantity = quantity_from_unit(unit);
    }
    n
}

/// The key as one id-safe token, used in Home Assistant unique ids and state topics:
/// `1-0-1-8-0-255`, `kmp-60`, or the slugged name.
pub fn key_slug(key: &Key) -> String {
    match key {
        Key::Obis(o) => obis_id(*o),
        Key::Kmp(r) => format!("kmp-{r}"),
        Key::Named(s) => slug(s),
    }
}

/// The six groups joined by hyphens: `1-0-1-8-0-255`.
pub fn obis_id(o: Obis) -> String {
    let [a, b, c, d, e, f] = o.groups();
    format!("{a}-{b}-{c}-{d}-{e}-{f}")
}

/// Lower-case ASCII letters and digits, every other run of characters one hyphen, no hyphen at
/// either end; `value` when nothing is left. The result matches `^[a-z0-9]+(-[a-z0-9]+)*$`.
pub fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('-');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    if out.is_empty() {
        out.push_str("value");
    }
    out
}

/// True when `id` is a valid Homie 4 topic id: `^[a-z0-9]+(-[a-z0-9]+)*$`.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.split('-').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn quantity_from_unit(unit: Option<&str>) -> Quantity {
    match unit {
        Some("Wh" | "kWh" | "MWh" | "GWh" | "J" | "kJ" | "MJ" | "GJ") => Quantity::Energy,
        Some("varh" | "kvarh") => Quantity::ReactiveEnergy,
        Some("VAh" | "kVAh") => Quantity::ApparentEnergy,
        Some("W" | "kW" | "MW") => Quantity::Power,
        Some("var" | "kvar") => Quantity::ReactivePower,
        Some("VA" | "kVA") => Quantity::ApparentPower,
        Some("V") => Quantity::Voltage,
        Some("A") => Quantity::Current,
        Some("Hz") => Quantity::Frequency,
        Some("°C") => Quantity::Temperature,
        Some("K") => Quantity::TemperatureDifference,
        Some("m³" | "m3" | "l") => Quantity::Volume,
        Some("m³/h" | "l/h") => Quantity::VolumeFlow,
        Some("h") => Quantity::Duration,
        _ => Quantity::Other,
    }
}

fn naming(group: Group, id: &str, name: &str, quantity: Quantity, cumulative: bool) -> Naming {
    Naming {
        group,
        id: id.to_string(),
        name: name.to_string(),
        quantity,
        cumulative,
    }
}

fn name_obis(o: Obis) -> Naming {
    let [a, b, c, d, e, f] = o.groups();
    let described = describe_obis(o).map(str::to_string);
    let fallback_name = || described.clone().unwrap_or_else(|| o.to_string());
    let plain = b == 0 && f == 255;
    match a {
        1 => name_electricity(o, plain, fallback_name()),
        0 if b == 0 => {
            let (id, quantity) = match (c, d, e) {
                (1, 0, 0) => ("clock", Quantity::Clock),
                (96, 1, 0) => ("number", Quantity::Text),
                (96, 1, 1) => ("serial-number", Quantity::Text),
                (42, 0, 0) => ("device-name", Quantity::Text),
                (96, 14, 0) => ("tariff", Quantity::Text),
                (96, 7, 21) => ("power-failures", Quantity::Count),
                (96, 7, 9) => ("long-power-failures", Quantity::Count),
                (96, 3, 10) => ("breaker-state", Quantity::Text),
                _ => ("", Quantity::Other),
            };
            if plain && !id.is_empty() {
                naming(Group::Meter, id, &fallback_name(), quantity, false)
            } else {
                naming(
                    Group::Meter,
                    &obis_id(o),
                    &fallback_name(),
                    Quantity::Other,
                    false,
                )
            }
        }
        0 => {
            // DSMR / M-Bus channel B ≥ 1 (0-1:24.2.1 gas, 0-2:24.2.1 water, …).
            let (name, quantity, cumulative) = match (c, d) {
                (24, 2) => (format!("M-Bus channel {b} reading"), Quantity::Other, true),
                (24, 1) => (
                    format!("M-Bus channel {b} device type"),
                    Quantity::Text,
                    false,
                ),
                (96, 1) => (
                    format!("M-Bus channel {b} equipment id"),
                    Quantity::Text,
                    false,
                ),
                (24, 4) => (
                    format!("M-Bus channel {b} valve position"),
                    Quantity::Text,
                    false,
                ),
                _ => (fallback_name(), Quantity::Other, false),
            };
            naming(Group::Mbus, &obis_id(o), &name, quantity, cumulative)
        }
        _ => naming(
            Group::Other,
            &obis_id(o),
            &fallback_name(),
            Quantity::Other,
            false,
        ),
    }
}

fn name_electricity(o: Obis, plain: bool, name: String) -> Naming {
    let [_, _, c, d, e, _] = o.groups();
    let id = if plain { electricity_id(c, d, e) } else { None };
    let id = id.map_or_else(|| obis_id(o), str::to_string);
    let energy_kind = match c {
        1 | 2 | 15 | 16 | 21 | 22 | 41 | 42 | 61 | 62 => Quantity::Energy,
        3..=8 | 23 | 24 | 43 | 44 | 63 | 64 => Quantity::ReactiveEnergy,
        9 | 10 | 29 | 30 | 49 | 50 | 69 | 70 => Quantity::ApparentEnergy,
        _ => Quantity::Other,
    };
    let power_kind = match energy_kind {
        Quantity::Energy => Quantity::Power,
        Quantity::ReactiveEnergy => Quantity::ReactivePower,
        Quantity::ApparentEnergy => Quantity::ApparentPower,
        _ => Quantity::Other,
    };
    match (c, d) {
        (0, _) => naming(Group::Meter, &id, &name, Quantity::Text, false),
        (_, 8) => naming(Group::Energy, &id, &name, energy_kind, true),
        (32 | 52 | 72, 7) => naming(Group::Voltage, &id, &name, Quantity::Voltage, false),
        (31 | 51 | 71 | 91, 7) => naming(Group::Current, &id, &name, Quantity::Current, false),
        (13 | 33 | 53 | 73, 7) => {
            naming(Group::PowerFactor, &id, &name, Quantity::PowerFactor, false)
        }
        (14, 7) => naming(Group::Grid, &id, &name, Quantity::Frequency, false),
        (_, 7) if power_kind != Quantity::Other => {
            naming(Group::Power, &id, &name, power_kind, false)
        }
        _ => naming(Group::Other, &id, &name, Quantity::Other, false),
    }
}

/// Readable ids of electricity registers (`1.0.C.D.E.255`).
fn electricity_id(c: u8, d: u8, e: u8) -> Option<&'static str> {
    Some(match (c, d, e) {
        (1, 8, 0) => "imported-total",
        (2, 8, 0) => "exported-total",
        (1, 8, 1) => "used-tariff-1",
        (1, 8, 2) => "used-tariff-2",
        (2, 8, 1) => "delivered-tariff-1",
        (2, 8, 2) => "delivered-tariff-2",
        (3, 8, 0) => "reactive-imported-total",
        (4, 8, 0) => "reactive-exported-total",
        (1, 7, 0) => "current-usage",
        (2, 7, 0) => "current-delivery",
        (3, 7, 0) => "reactive-usage",
        (4, 7, 0) => "reactive-delivery",
        (16, 7, 0) => "net",
        (21, 7, 0) => "usage-l1",
        (41, 7, 0) => "usage-l2",
        (61, 7, 0) => "usage-l3",
        (22, 7, 0) => "delivery-l1",
        (42, 7, 0) => "delivery-l2",
        (62, 7, 0) => "delivery-l3",
        (32, 7, 0) => "l1",
        (52, 7, 0) => "l2",
        (72, 7, 0) => "l3",
        (31, 7, 0) => "l1",
        (51, 7, 0) => "l2",
        (71, 7, 0) => "l3",
        (91, 7, 0) => "neutral",
        (13, 7, 0) => "total",
        (33, 7, 0) => "l1",
        (53, 7, 0) => "l2",
        (73, 7, 0) => "l3",
        (14, 7, 0) => "frequency",
        (0, 2, 0) => "firmware-version",
        _ => return None,
    })
}

/// Kamstrup KMP registers (Multical heat meters), ids as the predecessor published them.
fn name_kmp(register: u16) -> Naming {
    let (group, id, name, quantity, cumulative) = match register {
        60 => (
            Group::Energy,
            "imported-total",
            "Heat energy E1",
            Quantity::Energy,
            true,
        ),
        63 => (
            Group::Energy,
            "cooling-total",
            "Cooling energy E3",
            Quantity::Energy,
            true,
        ),
        266 => (
            Group::Energy,
            "imported-total-high-resolution",
            "Heat energy E1 high resolution",
            Quantity::Energy,
            true,
        ),
        80 => (
            Group::Power,
            "current-usage",
            "Heat power",
            Quantity::Power,
            false,
        ),
        86 => (
            Group::Temperatures,
            "temp1",
            "Flow temperature",
            Quantity::Temperature,
            false,
        ),
        87 => (
            Group::Temperatures,
            "temp2",
            "Return temperature",
            Quantity::Temperature,
            false,
        ),
        89 => (
            Group::Temperatures,
            "temp-diff",
            "Temperature difference",
            Quantity::TemperatureDifference,
            false,
        ),
        74 => (Group::Flow, "flow", "Flow", Quantity::VolumeFlow, false),
        68 => (Group::Flow, "volume", "Volume", Quantity::Volume, true),
        239 => (
            Group::Flow,
            "volume-high-resolution",
            "Volume high resolution",
            Quantity::Volume,
            true,
        ),
        1004 => (
            Group::Ops,
            "hour-counter",
            "Operating hours",
            Quantity::Duration,
            true,
        ),
        99 => (
            Group::Meter,
            "info-code",
            "Info code",
            Quantity::Text,
            false,
        ),
        1001 => (
            Group::Meter,
            "serial-number",
            "Serial number",
            Quantity::Text,
            false,
        ),
        _ => {
            return Naming {
                group: Group::Other,
                id: format!("kmp-{register}"),
                name: format!("KMP register {register}"),
                quantity: Quantity::Other,
                cumulative: false,
            }
        }
    };
    naming(group, id, name, quantity, cumulative)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obis(s: &str) -> Key {
        Key::Obis(s.parse().unwrap())
    }

    #[test]
    fn known_codes_keep_the_predecessor_ids() {
        let n = name_key(&obis("1.0.1.8.0.255"), Some("Wh"));
        assert_eq!((n.group.id(), n.id.as_str()), ("energy", "imported-total"));
        assert_eq!(n.name, "Active energy import");
        assert_eq!(n.quantity, Quantity::Energy);
        assert!(n.cumulative);
        let n = name_key(&obis("1.0.2.8.1.255"), Some("Wh"));
        assert_eq!(
            (n.group.id(), n.id.as_str()),
            ("energy", "delivered-tariff-1")
        );
        let n = name_key(&obis("1.0.1.7.0.255"), Some("W"));
        assert_eq!((n.group.id(), n.id.as_str()), ("power", "current-usage"));
        assert_eq!(n.quantity, Quantity::Power);
        let n = name_key(&Key::Kmp(86), Some("°C"));
        assert_eq!((n.group.id(), n.id.as_str()), ("temperatures", "temp1"));
        let n = name_key(&Key::Kmp(1004), Some("h"));
        assert_eq!((n.group.id(), n.id.as_str()), ("ops", "hour-counter"));
    }

    #[test]
    fn phases_land_in_their_quantity_nodes() {
        let n = name_key(&obis("1.0.52.7.0.255"), Some("V"));
        assert_eq!(
            (n.group.id(), n.id.as_str(), n.name.as_str()),
            ("voltage", "l2", "Voltage L2")
        );
        let n = name_key(&obis("1.0.91.7.0.255"), Some("A"));
        assert_eq!((n.group.id(), n.id.as_str()), ("current", "neutral"));
        let n = name_key(&obis("1.0.13.7.0.255"), None);
        assert_eq!((n.group.id(), n.id.as_str()), ("power-factor", "total"));
        assert_eq!(n.quantity, Quantity::PowerFactor);
        let n = name_key(&obis("1.0.14.7.0.255"), Some("Hz"));
        assert_eq!((n.group.id(), n.id.as_str()), ("grid", "frequency"));
    }

    #[test]
    fn unknown_and_channel_codes_get_obis_ids() {
        let n = name_key(&obis("1.0.1.8.3.255"), Some("Wh"));
        assert_eq!((n.group.id(), n.id.as_str()), ("energy", "1-0-1-8-3-255"));
        assert_eq!(n.name, "1.0.1.8.3.255");
        let n = name_key(&obis("0.1.24.2.1.255"), Some("m³"));
        assert_eq!((n.group.id(), n.id.as_str()), ("mbus", "0-1-24-2-1-255"));
        assert_eq!(n.name, "M-Bus channel 1 reading");
        assert_eq!(n.quantity, Quantity::Volume);
        assert!(n.cumulative);
        let n = name_key(&obis("1.0.1.4.0.255"), Some("kW"));
        assert_eq!((n.group.id(), n.id.as_str()), ("other", "1-0-1-4-0-255"));
        assert_eq!(n.quantity, Quantity::Power);
        let n = name_key(&Key::Kmp(141), Some("l/h"));
        assert_eq!((n.group.id(), n.id.as_str()), ("other", "kmp-141"));
        let n = name_key(&Key::Named("Gas.Timestamp_1".into()), None);
        assert_eq!((n.group.id(), n.id.as_str()), ("other", "gas-timestamp-1"));
    }

    #[test]
    fn slugs_and_ids_follow_the_homie_id_rules() {
        for s in ["", "--", "_a__b_", "Ünïcode 42", "x", "kmp.60"] {
            let id = slug(s);
            assert!(is_valid_id(&id), "{s:?} → {id:?}");
        }
        assert_eq!(slug("_a__b_"), "a-b");
        assert!(!is_valid_id("a--b"));
        assert!(!is_valid_id("-a"));
        assert!(!is_valid_id("a-"));
        assert!(!is_valid_id("$state"));
        assert!(!is_valid_id("A"));
        assert!(!is_valid_id("a_b"));
        assert!(is_valid_id("1-0-1-8-0-255"));
    }
}
