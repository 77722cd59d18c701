//! End to end: every M-Bus capture through `Config::build(..).on_bytes` to readings, whole
//! and chunked with garbage; and each kind of bad frame to its stage.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use smart_meter_core::{MeterId, Stage};

use super::test_support::{
    check_reading, errors, feed, feed_chunked, load, noise, readings, Rng, Vector,
};
use super::*;

fn config(v: &Vector) -> Config {
    Config {
        key: v.key("key_hex"),
        auth_key: v.key("auth_key_hex"),
        ..Default::default()
    }
}

fn meter() -> MeterId {
    MeterId::new("evn").unwrap()
}

fn vectors() -> Vec<Vector> {
    let v = load("mbus");
    assert_eq!(v.len(), 6);
    v
}

#[test]
fn every_capture_decodes_to_its_published_values() {
    let mut total = 0;
    for v in vectors() {
        let mut p = config(&v).build(meter());
        let rs = readings(&v.name, feed(p.as_mut(), &v.wire));
        assert_eq!(rs.len(), 1, "{}", v.name);
        let r = &rs[0];
        assert_eq!(r.protocol, NAME);
        // No tag on the M-Bus pushes: decrypted, not authenticated.
        assert_eq!(r.authenticated, Some(false), "{}", v.name);
        total += check_reading(&v, r);
    }
    // 11 or 12 values per capture plus EVN's clock and meter number.
    assert!(total >= 70, "only {total} values compared");
}

#[test]
fn chunked_input_with_garbage_between_telegrams_gives_the_same_readings() {
    let mut rng = Rng(0xC0FF_EE00_1234_5678);
    for v in vectors() {
        let g1 = noise(5, 3, &[0x68]);
        let g2 = noise(17, 9, &[0x68]);
        let stream = [g1.clone(), v.wire.clone(), g2.clone(), v.wire.clone(), g1].concat();
        for max in [1, 3, 10, 64, 300, 1000] {
            let mut p = config(&v).build(meter());
            let out = feed_chunked(p.as_mut(), &stream, &mut rng, max);
            let stages: Vec<Option<Stage>> = out
                .iter()
                .map(|r| r.as_ref().err().map(|e| e.stage))
                .collect();
            assert_eq!(
                stages,
                [
                    Some(Stage::Framing),
                    None,
                    Some(Stage::Framing),
                    None,
                    Some(Stage::Framing)
                ],
                "{} max {max}: {out:?}",
                v.name
            );
            for r in out.iter().filter_map(|r| r.as_ref().ok()) {
                check_reading(&v, r);
            }
            let garbage = &errors(&out)[1].detail;
            assert!(
                garbage.contains(&format!(
                    "skipped {} byte(s) at offset {}",
                    g2.len(),
                    5 + v.wire.len()
                )),
                "{garbage}"
            );
        }
    }
}

#[test]
fn a_wrong_key_is_a_decryption_error_that_says_so() {
    for v in vectors() {
        let cfg = Config {
            key: Some(AesKey([0x5A; 16])),
            auth_key: None,
            ..Default::default()
        };
        let out = feed(cfg.build(meter()).as_mut(), &v.wire);
        assert_eq!(out.len(), 1, "{}", v.name);
        let e = out[0].as_ref().unwrap_err();
        assert_eq!(e.stage, Stage::Decryption, "{}: {e}", v.name);
        assert!(e.detail.contains("key is probably wrong"), "{}", e.detail);
        assert!(!e.detail.contains("5A5A"), "the key never appears");
    }
}

#[test]
fn no_key_is_a_decryption_error_and_a_config_problem() {
    let v = &vectors()[0];
    let cfg = Config::default();
    assert_eq!(cfg.validate().len(), 1);
    assert_eq!(cfg.validate()[0].0, "key");
    let out = feed(cfg.build(meter()).as_mut(), &v.wire);
    assert_eq!(out[0].as_ref().unwrap_err().stage, Stage::Decryption);
    assert!(config(v).validate().is_empty());
}

#[test]
fn a_damaged_byte_is_a_checksum_error_and_the_next_telegram_decodes() {
    for v in vectors() {
        let mut bad = v.wire.clone();
        bad[100] ^= 0x01;
        let out = feed(
            config(&v).build(meter()).as_mut(),
            &[bad, v.wire.clone()].concat(),
        );
        let stages: Vec<Option<Stage>> = out
            .iter()
            .map(|r| r.as_ref().err().map(|e| e.stage))
            .collect();
        // The damaged first frame, then its orphaned second frame, then a good telegram.
        assert_eq!(
            stages,
            [Some(Stage::Checksum), Some(Stage::Reassembly), None],
            "{}: {out:?}",
            v.name
        );
        let detail = &out[0].as_ref().unwrap_err().detail;
        assert!(
            detail.contains("offset 0") && detail.contains("expected"),
            "{detail}"
        );
        check_reading(&v, out[2].as_ref().unwrap());
    }
}

#[test]
fn a_truncated_telegram_is_a_framing_error() {
    for v in vectors() {
        let cut = &v.wire[..v.wire.len() - 3];
        let out = feed(config(&v).build(meter()).as_mut(), cut);
        let stages: Vec<Stage> = errors(&out).iter().map(|e| e.stage).collect();
        assert_eq!(out.len(), 2, "{}: {out:?}", v.name);
        assert_eq!(stages, [Stage::Framing, Stage::Reassembly], "{}", v.name);
        assert!(errors(&out)[0].detail.contains("input ended"));
    }
}

#[test]
fn a_lost_byte_is_a_framing_error_and_the_next_telegram_decodes() {
    for v in vectors() {
        let mut lossy = v.wire.clone();
        lossy.remove(200);
        let mut p = config(&v).build(meter());
        let out = feed_chunked(
            p.as_mut(),
            &[lossy, v.wire.clone()].concat(),
            &mut Rng(3),
            40,
        );
        assert_eq!(
            out[0].as_ref().unwrap_err().stage,
            Stage::Framing,
            "{}",
            v.name
        );
        check_reading(&v, out.last().unwrap().as_ref().unwrap());
    }
}

/// The EVN document plaintext re-encrypted with a tag (SC 0x30) under a test key and split
/// into two M-Bus frames like a real telegram.
fn tagged_telegram(auth_key: &AesKey, tamper: bool) -> (Vector, Vec<u8>) {
    let v = vectors().remove(0);
    let plain = hex::decode(v.meta["decrypted_apdu_hex"].as_str().unwrap()).unwrap();
    let key = v.key("key_hex").unwrap();
    let title: [u8; 8] = hex::decode(v.meta["system_title_hex"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let keys = proto_dlms::Keys {
        encryption: key.bytes(),
        authentication: Some(auth_key.bytes()),
    };
    let mut apdu = proto_dlms::encrypt_glo(&plain, &title, 36, 0x30, &keys).unwrap();
    if tamper {
        let n = apdu.len();
        apdu[n - 20] ^= 0x80;
    }
    let mut wire = Vec::new();
    let (a, b) = apdu.split_at(200);
    proto_mbus::frame::emit(
        0x53,
        0xFF,
        0x00,
        &[&[0x01, 0x67][..], a].concat(),
        &mut wire,
    )
    .unwrap();
    proto_mbus::frame::emit(
        0x53,
        0xFF,
        0x11,
        &[&[0x01, 0x67][..], b].concat(),
        &mut wire,
    )
    .unwrap();
    (v, wire)
}

#[test]
fn a_tagged_frame_is_authenticated_with_the_auth_key_and_rejected_when_altered() {
    let ak = AesKey([0xC3; 16]);
    let (v, wire) = tagged_telegram(&ak, false);
    let with_ak = Config {
        key: v.key("key_hex"),
        auth_key: Some(ak.clone()),
        ..Default::default()
    };
    let rs = readings(&v.name, feed(with_ak.build(meter()).as_mut(), &wire));
    assert_eq!(rs[0].authenticated, Some(true));
    check_reading(&v, &rs[0]);

    // Without the authentication key: decrypted, but not authenticated.
    let rs = readings(&v.name, feed(config(&v).build(meter()).as_mut(), &wire));
    assert_eq!(rs[0].authenticated, Some(false));

    // A wrong authentication key or an altered ciphertext: stage authentication.
    let wrong = Config {
        key: v.key("key_hex"),
        auth_key: Some(AesKey([0xC4; 16])),
        ..Default::default()
    };
    let out = feed(wrong.build(meter()).as_mut(), &wire);
    assert_eq!(out[0].as_ref().unwrap_err().stage, Stage::Authentication);
    let (_, altered) = tagged_telegram(&ak, true);
    let out = feed(with_ak.build(meter()).as_mut(), &altered);
    assert_eq!(out[0].as_ref().unwrap_err().stage, Stage::Authentication);
}

#[test]
fn reset_drops_a_half_received_telegram() {
    let v = &vectors()[0];
    let mut p = config(v).build(meter());
    let mut out = Vec::new();
    p.on_bytes(&v.wire[..150], &mut out);
    p.reset();
    p.on_bytes(&v.wire, &mut out);
    p.finish(&mut out);
    assert_eq!(readings(&v.name, out).len(), 1);
}

#[test]
fn config_rejects_unknown_keys_and_reads_hex_keys() {
    let c: Config = serde_json::from_value(serde_json::json!({
        "key": "36C66639E48A8CA4D6BC8B282A793BBB"
    }))
    .unwrap();
    assert!(c.key.is_some() && c.auth_key.is_none());
    assert!(!format!("{c:?}").contains("36C6"));
    let e = serde_json::from_value::<Config>(serde_json::json!({"key": "00", "layout": "x"}));
    assert!(e.is_err());
    assert_eq!(LINE.baud, 2400);
    assert_eq!(LINE.parity, crate::serial_settings::Parity::Even);
}
