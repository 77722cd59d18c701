//! The Home Assistant discovery encoder over the readings of real meters, validated field by
//! field: ids, topics, device and state classes with units Home Assistant accepts for them, the
//! device block, and states equal to the vectors' expected values.

mod homie_support;

use std::collections::BTreeSet;

use serde_json::Value as Json;
use smart_meter_core::{Decimal, Key};
use smart_meter_sinks::homeassistant::topics::{Discovery, Settings};

/// Units Home Assistant accepts per sensor device class (the subset a meter can send).
fn accepted_units(device_class: &str) -> &'static [&'static str] {
    match device_class {
        "energy" => &["Wh", "kWh", "MWh", "GWh", "MJ", "GJ"],
        "power" => &["W", "kW", "MW"],
        "reactive_power" => &["var", "kvar"],
        "apparent_power" => &["VA", "kVA"],
        "voltage" => &["V", "mV", "kV"],
        "current" => &["A", "mA"],
        "frequency" => &["Hz", "kHz"],
        "temperature" => &["°C", "°F", "K"],
        "volume" | "water" | "gas" => &["m³", "L"],
        "volume_flow_rate" => &["m³/h"],
        "duration" => &["h", "min", "s", "d"],
        other => panic!("unexpected device class {other}"),
    }
}

fn is_ha_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[test]
fn every_vector_yields_valid_discovery_configs_and_exact_states() {
    let mut unique_ids = BTreeSet::new();
    for f in homie_support::all() {
        let meter = f.reading.meter.as_str().to_string();
        let mut d = Discovery::new(Settings::default());
        let msgs = d.update(&f.reading);
        let mut state_topics = BTreeSet::new();
        for m in msgs.iter().filter(|m| m.topic.ends_with("/config")) {
            let what = format!("{}: {}", f.file, m.topic);
            assert!(m.retain && m.qos == 1, "{what}");
            let levels: Vec<&str> = m.topic.split('/').collect();
            assert_eq!(levels.len(), 5, "{what}");
            assert_eq!(&levels[..2], &["homeassistant", "sensor"], "{what}");
            assert_eq!(levels[2], format!("smart-meter-{meter}"), "{what}");
            assert!(is_ha_id(levels[2]) && is_ha_id(levels[3]), "{what}");

            let c: Json = serde_json::from_str(&m.payload).unwrap();
            let obj = c.as_object().unwrap();
            for field in obj.keys() {
                assert!(
                    [
                        "name",
                        "unique_id",
                        "state_topic",
                        "availability_topic",
                        "payload_available",
                        "payload_not_available",
                        "unit_of_measurement",
                        "device_class",
                        "state_class",
                        "suggested_display_precision",
                        "entity_category",
                        "device",
                        "origin",
                    ]
                    .contains(&field.as_str()),
                    "{what}: unexpected field {field}"
                );
            }
            assert!(!c["name"].as_str().unwrap().is_empty(), "{what}");
            let uid = c["unique_id"].as_str().unwrap();
            assert_eq!(uid, format!("smart-meter-{meter}-{}", levels[3]), "{what}");
            assert!(
                unique_ids.insert(uid.to_string()),
                "{what}: unique_id {uid} twice"
            );
            let st = c["state_topic"].as_str().unwrap();
            assert_eq!(
                st,
                format!("smart-meter/ha/{meter}/{}", levels[3]),
                "{what}"
            );
            state_topics.insert(st.to_string());
            assert_eq!(c["availability_topic"], "smart-meter/ha/status", "{what}");
            assert_eq!(c["payload_available"], "online");
            assert_eq!(c["payload_not_available"], "offline");

            let unit = c.get("unit_of_measurement").and_then(Json::as_str);
            if let Some(dc) = c.get("device_class").and_then(Json::as_str) {
                match dc {
                    "power_factor" => assert!(unit.is_none() || unit == Some("%"), "{what}"),
                    "timestamp" => assert!(unit.is_none(), "{what}"),
                    _ => assert!(
                        unit.is_some_and(|u| accepted_units(dc).contains(&u)),
                        "{what}: unit {unit:?} not accepted for {dc}"
                    ),
                }
            }
            match c.get("state_class").and_then(Json::as_str) {
                None => assert!(unit.is_none(), "{what}: a unit without a state class"),
                Some("measurement") => {
                    assert_ne!(c.get("device_class"), Some(&Json::from("energy")))
                }
                Some("total_increasing" | "total") => {}
                Some(other) => panic!("{what}: state_class {other}"),
            }
            if let Some(p) = c.get("suggested_display_precision") {
                assert!(p.as_u64().is_some_and(|p| p <= 6), "{what}");
            }
            if let Some(cat) = c.get("entity_category") {
                assert_eq!(cat, "diagnostic", "{what}");
            }
            let dev = &c["device"];
            assert_eq!(
                dev["identifiers"],
                serde_json::json!([format!("smart-meter-{meter}")])
            );
            assert_eq!(dev["name"], meter.as_str());
            assert!(dev["model"].is_string(), "{what}");
            assert_eq!(c["origin"]["name"], "smart-meter");
        }

        // States: one per non-empty expected value, equal to it, after every config.
        let first_state = msgs
            .iter()
            .position(|m| !m.topic.ends_with("/config"))
            .unwrap();
        assert!(msgs[first_state..]
            .iter()
            .all(|m| !m.topic.ends_with("/config")));
        for (key, want) in &f.expected {
            let slug = match key {
                Key::Obis(o) => {
                    let [a, b, c, dd, e, g] = o.groups();
                    format!("{a}-{b}-{c}-{dd}-{e}-{g}")
                }
                Key::Kmp(r) => format!("kmp-{r}"),
                Key::Named(n) => n.to_string(),
            };
            let topic = format!("smart-meter/ha/{meter}/{slug}");
            let state = msgs.iter().find(|m| m.topic == topic);
            if want.is_empty() {
                assert!(state.is_none(), "{}: empty {key} published", f.file);
                assert!(!state_topics.contains(&topic));
                continue;
            }
            let state = state.unwrap_or_else(|| panic!("{}: no state for {key}", f.file));
            assert!(
                state_topics.contains(&topic),
                "{}: {topic} has no config",
                f.file
            );
            match (want.parse::<Decimal>(), state.payload.parse::<Decimal>()) {
                (Ok(w), Ok(g)) if want.contains('.') || !want.starts_with('0') || want == "0" => {
                    assert_eq!(g, w, "{}: {topic}", f.file)
                }
                _ => assert_eq!(&state.payload, want, "{}: {topic}", f.file),
            }
        }
    }
}

#[test]
fn energy_registers_of_every_vector_are_accepted_by_the_energy_dashboard() {
    let mut seen = 0;
    for f in homie_support::all() {
        let mut d = Discovery::new(Settings::default());
        let msgs = d.update(&f.reading);
        for (key, _) in &f.expected {
            let Key::Obis(o) = key else { continue };
            let [a, b, c, dd, _, _] = o.groups();
            // Active energy import/export registers: 1.0.1.8.x and 1.0.2.8.x.
            if !(a == 1 && b == 0 && (c == 1 || c == 2) && dd == 8) {
                continue;
            }
            let [_, _, _, _, e, g] = o.groups();
            let topic = format!(
                "homeassistant/sensor/smart-meter-{}/{a}-{b}-{c}-{dd}-{e}-{g}/config",
                f.reading.meter
            );
            let m = msgs.iter().find(|m| m.topic == topic).unwrap();
            let cfg: Json = serde_json::from_str(&m.payload).unwrap();
            assert_eq!(cfg["device_class"], "energy", "{topic}");
            assert_eq!(cfg["state_class"], "total_increasing", "{topic}");
            assert!(["Wh", "kWh"].contains(&cfg["unit_of_measurement"].as_str().unwrap()));
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} energy registers in the fixtures");
}
