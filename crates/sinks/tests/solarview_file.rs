//! The `solarview` sink: byte-exact classic and full files, atomic replacement, and readings
//! with missing or non-numeric values.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use smart_meter_core::stats::SinkStats;
use smart_meter_core::{Bus, Decimal, Key, MeterId, MeterTime, Obis, Reading, Sample, Unit, Value};
use smart_meter_sinks::solarview::{self, encode, Config, Format, FULL_VALUES};

fn obis(c: u8, d: u8) -> Key {
    Key::Obis(Obis::new(1, 0, c, d, 0, 255))
}

/// The Netz NÖ brochure vector as the M-Bus/DLMS source decodes it, in telegram order: clock,
/// energies, powers, voltages, currents, power factor (UInt16 1000, scaler −3), meter number.
fn brochure(meter: &str) -> Reading {
    let mut r = Reading::new(MeterId::new(meter).unwrap(), "mbus-dlms");
    let t = MeterTime::new(2021, 9, 27, 9, 47, 15, None, Some(120)).unwrap();
    r.meter_time = Some(t);
    r.samples.push(Sample {
        key: Key::Obis(Obis::CLOCK),
        value: Value::Time(t),
        unit: None,
    });
    let n = |k, m, e, u| Sample::number(k, Decimal::new(m, e), u);
    r.samples.push(n(obis(1, 8), 12937, 0, Some(Unit::WH)));
    r.samples.push(n(obis(2, 8), 0, 0, Some(Unit::WH)));
    r.samples.push(n(obis(1, 7), 0, 0, Some(Unit::W)));
    r.samples.push(n(obis(2, 7), 0, 0, Some(Unit::W)));
    r.samples.push(n(obis(32, 7), 2337, -1, Some(Unit::V)));
    r.samples.push(n(obis(52, 7), 0, -1, Some(Unit::V)));
    r.samples.push(n(obis(72, 7), 0, -1, Some(Unit::V)));
    r.samples.push(n(obis(31, 7), 0, -2, Some(Unit::A)));
    r.samples.push(n(obis(51, 7), 0, -2, Some(Unit::A)));
    r.samples.push(n(obis(71, 7), 0, -2, Some(Unit::A)));
    r.samples.push(n(obis(13, 7), 1000, -3, None));
    r.samples
        .push(Sample::text(Key::Obis(Obis::METER_NUMBER), "181220000009"));
    r
}

/// kaifareader's file for the brochure vector (predecessors §5, verified there).
const FULL_BROCHURE: &str = "/?!\n/KAIFA\n\
32.7.0(000233.700*V)\n\
52.7.0(000000.000*V)\n\
72.7.0(000000.000*V)\n\
31.7.0(000000.000*A)\n\
51.7.0(000000.000*A)\n\
71.7.0(000000.000*A)\n\
1.7.0(000000.000*W)\n\
2.7.0(000000.000*W)\n\
1.8.0(012937.000*Wh)\n\
2.8.0(000000.000*Wh)\n\
13.7.0(000001.000*)\n\
!\n";

#[test]
fn full_format_reproduces_kaifareader_byte_for_byte() {
    assert_eq!(
        encode(&brochure("evn"), Format::Full, &FULL_VALUES).unwrap(),
        FULL_BROCHURE
    );
}

#[test]
fn classic_format_writes_only_energies_in_kwh() {
    assert_eq!(
        encode(&brochure("evn"), Format::Classic, &[]).unwrap(),
        "/?!\n/KAIFA\n1.8.0(000012.937*kWh)\n2.8.0(000000.000*kWh)\n!\n"
    );
    let mut r = brochure("evn");
    r.samples[1].value = Value::Number(Decimal::new(5_305_034, 0));
    r.samples[2].value = Value::Number(Decimal::new(1_234_567_891, 0));
    assert_eq!(
        encode(&r, Format::Classic, &[]).unwrap(),
        "/?!\n/KAIFA\n1.8.0(005305.034*kWh)\n2.8.0(1234567.891*kWh)\n!\n"
    );
}

#[test]
fn classic_format_accepts_energies_already_in_kwh() {
    // DSMR meters report kWh with three decimals.
    let mut r = Reading::new(MeterId::new("p1").unwrap(), "dsmr");
    r.samples.push(Sample::number(
        Key::Obis(Obis::ENERGY_IMPORT),
        Decimal::new(5_305_034, -3),
        Unit::from_symbol("kWh"),
    ));
    assert_eq!(
        encode(&r, Format::Classic, &[]).unwrap(),
        "/?!\n/KAIFA\n1.8.0(005305.034*kWh)\n!\n"
    );
}

#[test]
fn full_format_widens_large_values_and_keeps_signs_and_real_units() {
    let mut r = brochure("evn");
    r.samples[1].value = Value::Number(Decimal::new(3_744_082, 0));
    r.samples[11].value = Value::Number(Decimal::new(-819, -3));
    r.samples.push(Sample::number(
        obis(3, 8),
        Decimal::new(42, 0),
        Some(Unit::VARH),
    ));
    let text = encode(&r, Format::Full, &FULL_VALUES).unwrap();
    assert!(text.contains("\n1.8.0(3744082.000*Wh)\n"), "{text}");
    assert!(text.contains("\n13.7.0(-00000.819*)\n"), "{text}");
    assert!(text.contains("\n3.8.0(000042.000*varh)\n13.7.0"), "{text}");
}

#[test]
fn non_numeric_and_missing_values_are_skipped_not_fatal() {
    let mut r = brochure("evn");
    // The energy register arrives as text (garbled), the clock and meter number are asked for.
    r.samples[1].value = Value::Text("n/a".into());
    let values = [
        Obis::CLOCK,
        Obis::METER_NUMBER,
        Obis::LOGICAL_DEVICE_NAME,
        Obis::ENERGY_IMPORT,
        Obis::ENERGY_EXPORT,
    ];
    assert_eq!(
        encode(&r, Format::Full, &values).unwrap(),
        "/?!\n/KAIFA\n2.8.0(000000.000*Wh)\n!\n"
    );
    assert_eq!(
        encode(&r, Format::Classic, &[]).unwrap(),
        "/?!\n/KAIFA\n2.8.0(000000.000*kWh)\n!\n"
    );
    r.samples.retain(|s| s.value.as_number().is_none());
    assert_eq!(encode(&r, Format::Full, &values), None);
    assert_eq!(encode(&r, Format::Classic, &[]), None);
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_sink_keeps_the_newest_good_file_and_no_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("export/solarview.txt");
    let bus = Bus::new(64);
    let sub = bus.subscribe("solarview");
    let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
    let p = bus.publisher();
    drop(bus);
    let config = Config {
        path: path.clone(),
        format: Format::Full,
        meter: Some("evn".into()),
        values: None,
    };
    assert!(config.validate().is_empty());
    let task = tokio::spawn(solarview::run(config, sub, stats.clone()));

    p.publish(brochure("evn"));
    // Another meter's reading is ignored.
    let mut other = brochure("heat");
    other.samples[1].value = Value::Number(Decimal::new(1, 0));
    p.publish(other);
    wait_for(&path, FULL_BROCHURE).await;
    // A reading with nothing to write leaves the file alone.
    let mut empty = brochure("evn");
    empty.samples.retain(|s| s.value.as_number().is_none());
    p.publish(empty);
    let mut newer = brochure("evn");
    newer.samples[1].value = Value::Number(Decimal::new(12938, 0));
    p.publish(newer);
    drop(p);
    task.await.unwrap().unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        FULL_BROCHURE.replace("012937.000", "012938.000")
    );
    assert_eq!(entries(&dir.path().join("export")), ["solarview.txt"]);
    assert!(stats.delivered.load(Ordering::Relaxed) >= 2);
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
}

async fn wait_for(path: &Path, want: &str) {
    for _ in 0..500 {
        if std::fs::read_to_string(path).is_ok_and(|t| t == want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{} never became {want:?}; it is {:?}",
        path.display(),
        std::fs::read_to_string(path)
    );
}

#[tokio::test]
async fn a_failing_write_is_counted_and_the_sink_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    // The target is a folder, so the rename over it fails on every write.
    let path = dir.path().join("taken");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("inside"), "x").unwrap();
    let bus = Bus::new(64);
    let sub = bus.subscribe("solarview");
    let stats = Arc::new(SinkStats::new(sub.dropped_counter()));
    let p = bus.publisher();
    drop(bus);
    let config = Config {
        path: path.clone(),
        format: Format::Classic,
        meter: None,
        values: None,
    };
    let task = tokio::spawn(solarview::run(config, sub, stats.clone()));
    p.publish(brochure("evn"));
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.publish(brochure("evn"));
    drop(p);
    task.await.unwrap().unwrap();
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 2);
    assert_eq!(stats.delivered.load(Ordering::Relaxed), 0);
    assert!(!stats.connected.load(Ordering::Relaxed));
    assert!(stats.last_error.lock().unwrap().is_some());
    assert_eq!(entries(dir.path()), ["taken"]);
}

#[test]
fn the_sink_table_selects_solarview_by_type() {
    let c: smart_meter_sinks::SinkConfig = serde_json::from_value(serde_json::json!({
        "type": "solarview", "path": "/tmp/export.txt", "format": "full",
        "values": ["1.0.1.8.0.255", "1-0:2.8.0"]
    }))
    .unwrap();
    assert_eq!(c.kind(), "solarview");
    assert!(c.validate().is_empty());
    let unknown = serde_json::from_value::<smart_meter_sinks::SinkConfig>(serde_json::json!({
        "type": "solarview", "path": "x", "format": "csv"
    }));
    assert!(unknown.is_err());
}
