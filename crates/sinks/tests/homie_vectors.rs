//! The Homie encoder over the readings of real meters: every value gets a valid, unique
//! property, the device conforms to Homie 4.0.0, and every published value equals the
//! vector's expected value exactly.

mod homie_support;

use std::collections::{BTreeMap, BTreeSet};

use smart_meter_core::Decimal;
use smart_meter_sinks::homie::conformance::{self, Options};
use smart_meter_sinks::homie::topics::HomieDevice;

#[test]
fn every_vector_becomes_a_conforming_homie_device_with_exact_values() {
    for f in homie_support::all() {
        let mut device = HomieDevice::new("homie", "meter", "Meter");
        let msgs = device.update(&f.reading);
        assert!(msgs.iter().all(|m| m.retain && m.qos == 1), "{}", f.file);
        let mut topics = BTreeMap::new();
        for m in &msgs {
            topics.insert(m.topic.clone(), m.payload.clone());
        }
        let problems = conformance::check_device("homie", "meter", &topics, Options::default());
        assert!(problems.is_empty(), "{}: {problems:#?}", f.file);
        assert_eq!(topics["homie/meter/$state"], "ready", "{}", f.file);

        // Every expected value that is not empty text is published exactly once, unchanged.
        let mut topics_used = BTreeSet::new();
        for (key, want) in &f.expected {
            let prop = device.nodes().iter().find_map(|n| {
                n.properties
                    .iter()
                    .find(|p| &p.key == key)
                    .map(|p| format!("homie/meter/{}/{}", n.group.id(), p.id))
            });
            if want.is_empty() {
                assert!(prop.is_none(), "{}: empty {key} was announced", f.file);
                continue;
            }
            let topic = prop.unwrap_or_else(|| panic!("{}: {key} has no property", f.file));
            assert!(
                topics_used.insert(topic.clone()),
                "{}: {topic} used twice",
                f.file
            );
            let got = &topics[&topic];
            match want.parse::<Decimal>() {
                Ok(d) if !want.starts_with('0') || want.contains('.') || want == "0" => {
                    let g: Decimal = got.parse().unwrap_or_else(|_| panic!("{topic}={got}"));
                    assert_eq!(g, d, "{}: {topic}", f.file);
                }
                _ => assert_eq!(got, want, "{}: {topic}", f.file),
            }
        }
    }
}

#[test]
fn the_announcement_after_a_reconnect_repeats_the_same_retained_state() {
    for f in homie_support::all() {
        let mut device = HomieDevice::new("homie", "meter", "Meter");
        let first: BTreeMap<_, _> = device
            .update(&f.reading)
            .into_iter()
            .map(|m| (m.topic, m.payload))
            .collect();
        let again: BTreeMap<_, _> = device
            .announcement()
            .into_iter()
            .map(|m| (m.topic, m.payload))
            .collect();
        assert_eq!(first, again, "{}", f.file);
    }
}
