//! End to end: every HDLC capture through `Config::build(..).on_bytes` to readings, whole and
//! chunked with garbage between frames; and each kind of bad frame to its stage.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use smart_meter_core::{MeterId, Obis, Stage};

use super::*;
use crate::mbus_dlms::test_support::{
    check_reading, errors, feed, feed_chunked, load, noise, readings, Rng, Vector,
};

fn config(v: &Vector) -> Config {
    Config {
        key: v.key("key_hex"),
        auth_key: v.key("auth_key_hex"),
        layout: None,
        ..Default::default()
    }
}

fn meter() -> MeterId {
    MeterId::new("ir").unwrap()
}

fn vectors() -> Vec<Vector> {
    let v = load("hdlc");
    assert_eq!(v.len(), 19);
    v
}

/// The capture cut into its HDLC frames (each with both flags).
fn frames(wire: &[u8]) -> Vec<Vec<u8>> {
    let mut f = proto_hdlc::Framer::new();
    f.push(wire);
    let mut out = Vec::new();
    while let Some(r) = f.pop() {
        out.push(r.unwrap().as_bytes().to_vec());
    }
    out
}

fn expected_authenticated(v: &Vector) -> Option<bool> {
    if v.meta["key_hex"].is_null() {
        None
    } else {
        Some(v.meta["gcm_tag"]["verified"] == true && !v.meta["auth_key_hex"].is_null())
    }
}

#[test]
fn every_capture_decodes_to_its_published_values() {
    let mut total = 0;
    for v in vectors() {
        let rs = readings(&v.name, feed(config(&v).build(meter()).as_mut(), &v.wire));
        assert_eq!(rs.len(), 1, "{}", v.name);
        let r = &rs[0];
        assert_eq!(r.protocol, NAME);
        assert_eq!(r.authenticated, expected_authenticated(&v), "{}", v.name);
        total += check_reading(&v, r);
    }
    assert!(total >= 200, "only {total} values compared");
}

#[test]
fn chunked_input_with_garbage_between_frames_gives_the_same_readings() {
    let mut rng = Rng(0xFEED_5EED_0BAD_CAFE);
    for v in vectors() {
        // Garbage before, between and after every frame, and a second copy of the capture.
        let mut stream = Vec::new();
        let mut runs = 0;
        for copy in 0..2u8 {
            for (i, f) in frames(&v.wire).iter().enumerate() {
                stream.extend(noise(3 + i, copy.wrapping_mul(7), &[0x7E]));
                runs += 1;
                stream.extend_from_slice(f);
            }
        }
        stream.extend(noise(11, 1, &[0x7E]));
        runs += 1;
        for max in [1, 4, 33, 200, 2000] {
            let out = feed_chunked(config(&v).build(meter()).as_mut(), &stream, &mut rng, max);
            let errs = errors(&out);
            assert_eq!(errs.len(), runs, "{} max {max}: {errs:?}", v.name);
            assert!(errs.iter().all(|e| e.stage == Stage::Framing));
            let rs: Vec<_> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(rs.len(), 2, "{} max {max}", v.name);
            for r in rs {
                check_reading(&v, r);
            }
        }
    }
}

#[test]
fn junk_a_capturing_device_appends_after_the_frame_is_skipped() {
    for v in vectors()
        .iter()
        .filter(|v| v.name.starts_with("wienernetze"))
    {
        let junk = noise(96, 5, &[]);
        let stream = [v.wire.clone(), junk, v.wire.clone()].concat();
        let out = feed(config(v).build(meter()).as_mut(), &stream);
        let stages: Vec<Option<Stage>> = out
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.stage))
            .collect();
        assert_eq!(stages, [None, Some(Stage::Framing), None], "{}", v.name);
    }
}

#[test]
fn a_wrong_key_is_a_decryption_error_that_says_so() {
    for v in vectors().iter().filter(|v| !v.meta["key_hex"].is_null()) {
        let cfg = Config {
            key: Some(AesKey([0xA5; 16])),
            ..Config::default()
        };
        let out = feed(cfg.build(meter()).as_mut(), &v.wire);
        assert_eq!(out.len(), 1, "{}: {out:?}", v.name);
        let e = out[0].as_ref().unwrap_err();
        assert_eq!(e.stage, Stage::Decryption, "{}: {e}", v.name);
        assert!(e.detail.contains("key is probably wrong"), "{}", e.detail);
    }
}

#[test]
fn an_encrypted_push_without_key_is_a_decryption_error() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "wienernetze-iskra-am550-ir")
        .unwrap();
    let out = feed(Config::default().build(meter()).as_mut(), &v.wire);
    let e = out[0].as_ref().unwrap_err();
    assert_eq!(e.stage, Stage::Decryption);
    assert!(e.detail.contains("no key"), "{}", e.detail);
}

#[test]
fn a_damaged_byte_is_a_checksum_error_and_the_next_capture_decodes() {
    for v in vectors() {
        let mut bad = v.wire.clone();
        let n = bad.len();
        bad[n - 8] ^= 0x10;
        let out = feed(
            config(&v).build(meter()).as_mut(),
            &[bad, v.wire.clone()].concat(),
        );
        assert_eq!(
            out[0].as_ref().unwrap_err().stage,
            Stage::Checksum,
            "{}: {out:?}",
            v.name
        );
        let rs: Vec<_> = out.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(rs.len(), 1, "{}: {out:?}", v.name);
        check_reading(&v, rs[0]);
        assert!(out.last().unwrap().is_ok());
    }
}

#[test]
fn a_truncated_capture_is_a_framing_error_and_no_reading() {
    for v in vectors() {
        let cut = &v.wire[..v.wire.len() - 4];
        let out = feed(config(&v).build(meter()).as_mut(), cut);
        assert!(out.iter().all(Result::is_err), "{}", v.name);
        let e = errors(&out);
        assert_eq!(e[0].stage, Stage::Framing, "{}", v.name);
        assert!(e[0].detail.contains("input ended"), "{}", e[0].detail);
        // Multi-frame messages also report the message they could not complete.
        if frames(&v.wire).len() > 1 {
            assert_eq!(e.last().unwrap().stage, Stage::Reassembly, "{}", v.name);
        }
    }
}

#[test]
fn a_lost_block_is_a_reassembly_error() {
    for v in vectors()
        .iter()
        .filter(|v| v.meta.get("general_block_transfer").is_some())
    {
        let f = frames(&v.wire);
        let mut stream: Vec<u8> = f[0].clone();
        for frame in &f[2..] {
            stream.extend_from_slice(frame);
        }
        stream.extend_from_slice(&v.wire);
        let out = feed(config(v).build(meter()).as_mut(), &stream);
        assert_eq!(
            out[0].as_ref().unwrap_err().stage,
            Stage::Reassembly,
            "{}",
            v.name
        );
        assert!(out[0]
            .as_ref()
            .unwrap_err()
            .detail
            .contains("block 3 arrived, block 2"));
        check_reading(v, out.last().unwrap().as_ref().unwrap());
    }
}

/// The Netz Burgenland capture with one ciphertext byte changed and the frame's HCS/FCS
/// recomputed, so only the GCM tag can notice.
fn altered_burgenland() -> (Vector, Vec<u8>) {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "netzburgenland-lg-e450-1")
        .unwrap();
    let f = proto_hdlc::Frame::parse(&v.wire).unwrap();
    let mut info = f.info().to_vec();
    info[40] ^= 0x01;
    let mut wire = Vec::new();
    proto_hdlc::frame::emit(false, f.dst(), f.src(), f.control(), &info, &mut wire).unwrap();
    (v, wire)
}

#[test]
fn a_bad_tag_is_an_authentication_error() {
    let (v, altered) = altered_burgenland();
    let out = feed(config(&v).build(meter()).as_mut(), &altered);
    let e = out[0].as_ref().unwrap_err();
    assert_eq!(e.stage, Stage::Authentication, "{e}");
    // A wrong authentication key on the intact frame, too.
    let cfg = Config {
        auth_key: Some(AesKey([0; 16])),
        ..config(&v)
    };
    let out = feed(cfg.build(meter()).as_mut(), &v.wire);
    assert_eq!(out[0].as_ref().unwrap_err().stage, Stage::Authentication);
    // Without the authentication key the intact frame decodes, unauthenticated.
    let cfg = Config {
        auth_key: None,
        ..config(&v)
    };
    let rs = readings(&v.name, feed(cfg.build(meter()).as_mut(), &v.wire));
    assert_eq!(rs[0].authenticated, Some(false));
    check_reading(&v, &rs[0]);
}

#[test]
fn an_explicit_layout_decodes_its_pushes_and_rejects_others() {
    let vs = vectors();
    let get = |name: &str| vs.iter().find(|v| v.name == name).unwrap();
    for (name, layout) in [
        ("wienernetze-iskra-am550-ir", "wiener-netze"),
        ("wienernetze-siemens-im350-ir", "wiener-netze"),
        ("netzburgenland-lg-e450-2", "netz-burgenland"),
        ("shrdzm-siemens-im350-1", "shrdzm-12"),
        ("shrdzm-siemens-im350-wels-1", "shrdzm-10"),
    ] {
        let v = get(name);
        let cfg = Config {
            layout: Some(layout.to_string()),
            ..config(v)
        };
        assert!(cfg.validate().is_empty());
        let rs = readings(name, feed(cfg.build(meter()).as_mut(), &v.wire));
        check_reading(v, &rs[0]);
    }
    // A Burgenland push read as Wiener Netze: stage data.
    let v = get("netzburgenland-lg-e450-1");
    let cfg = Config {
        layout: Some("wiener-netze".into()),
        ..config(v)
    };
    let out = feed(cfg.build(meter()).as_mut(), &v.wire);
    assert_eq!(out[0].as_ref().unwrap_err().stage, Stage::Data);
}

#[test]
fn positional_pushes_get_the_documented_obis_codes() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "wienernetze-iskra-am550-ir")
        .unwrap();
    let r = &readings(&v.name, feed(config(&v).build(meter()).as_mut(), &v.wire))[0];
    assert_eq!(r.number(Obis::ENERGY_IMPORT).unwrap().to_string(), "855");
    assert_eq!(
        r.obis(Obis::ENERGY_IMPORT)
            .unwrap()
            .unit
            .as_ref()
            .unwrap()
            .symbol(),
        Some("Wh")
    );
    assert_eq!(
        r.meter_time.unwrap().to_string(),
        "2021-10-21T06:44:02+02:00"
    );
}

#[test]
fn config_validates_layout_and_key_combinations() {
    let c: Config = serde_json::from_value(serde_json::json!({
        "key": "927CE4ECA62FE23E19406C5EE452285E",
        "layout": "wiener-netze"
    }))
    .unwrap();
    assert!(c.validate().is_empty());
    let bad = Config {
        layout: Some("vienna".into()),
        auth_key: Some(AesKey([1; 16])),
        ..Config::default()
    };
    let keys: Vec<String> = bad.validate().into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["auth_key", "layout"]);
    assert!(serde_json::from_value::<Config>(serde_json::json!({"baud": 9600})).is_err());
    assert_eq!(LINE.baud, 9600);
    assert_eq!(LINE.parity, crate::serial_settings::Parity::None);
}
