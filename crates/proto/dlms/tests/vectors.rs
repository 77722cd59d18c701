//! Every captured vector against its published expectations (the JSON next to it).

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

mod support;

use proto_dlms::cosem::{self, unit};
use proto_dlms::{
    decode_apdu, decrypt_glo, entries, gbt, looks_like_plaintext, parse_notification, Data,
    DateTime, Entry, Error, Keys, Layout, Number, Scratch, Value,
};
use serde_json::Value as Json;
use support::{load_all, Vector};

/// `(mantissa, exponent)` with trailing zeros removed, so `233.70` and `2337e-1` compare equal.
fn normalize(mut m: i128, mut e: i32) -> (i128, i32) {
    if m == 0 {
        return (0, 0);
    }
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    (m, e)
}

/// Parses a JSON number's decimal text ("233.7", "0.0", "12937") exactly.
fn decimal(text: &str) -> (i128, i32) {
    let (neg, t) = text.strip_prefix('-').map_or((false, text), |t| (true, t));
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let m: i128 = format!("{int}{frac}").parse().unwrap();
    normalize(if neg { -m } else { m }, -(frac.len() as i32))
}

fn number_eq(n: Number, expected: &serde_json::Number) -> bool {
    normalize(n.mantissa, i32::from(n.exponent)) == decimal(&expected.to_string())
}

fn unit_symbol(code: Option<u8>) -> Option<&'static str> {
    match code? {
        unit::W => Some("W"),
        unit::VAR => Some("var"),
        unit::WH => Some("Wh"),
        unit::VARH => Some("varh"),
        unit::A => Some("A"),
        unit::V => Some("V"),
        unit::NONE => None,
        other => panic!("unit code {other} not used by the vectors"),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks a date-time against "YYYY-MM-DDTHH:MM:SS[.hh]" (+ deviation/status when given).
fn check_date_time(dt: &DateTime, expected: &Json, ctx: &str) {
    let text = expected["value"].as_str().unwrap();
    let (date, time) = text.split_once('T').unwrap();
    let d: Vec<u32> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (hms, hundredths) = time
        .split_once('.')
        .map_or((time, None), |(a, b)| (a, Some(b)));
    let t: Vec<u32> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let got = [
        dt.year.map(u32::from),
        dt.month.map(u32::from),
        dt.day.map(u32::from),
    ];
    assert_eq!(got, [Some(d[0]), Some(d[1]), Some(d[2])], "{ctx}: date");
    let got = [dt.hour, dt.minute, dt.second].map(|v| v.map(u32::from));
    assert_eq!(got, [Some(t[0]), Some(t[1]), Some(t[2])], "{ctx}: time");
    if let Some(h) = hundredths {
        assert_eq!(
            dt.hundredths.map(u32::from),
            Some(h.parse().unwrap()),
            "{ctx}: hundredths"
        );
    }
    match &expected["deviation_min"] {
        Json::Null => {}
        dev => assert_eq!(
            dt.deviation.map(i64::from),
            dev.as_i64(),
            "{ctx}: deviation"
        ),
    }
    if let Some(status) = expected["clock_status"].as_u64() {
        assert_eq!(
            dt.clock_status.map(u64::from),
            Some(status),
            "{ctx}: clock status"
        );
    }
}

/// The A-XDR type name the JSON's `axdr_type` stands for.
fn type_name(axdr_type: &str) -> &str {
    match axdr_type.split(' ').next().unwrap() {
        "visible" => "visible-string",
        other => other,
    }
}

/// Compares one entry with one JSON expectation (`value`, `unit`, and where given `raw`,
/// `scaler`, `unit_enum`, `axdr_type`).
fn check_entry(e: &Entry, expected: &Json, ctx: &str) {
    if let Some(t) = expected["axdr_type"].as_str() {
        let want = type_name(t);
        let got = e.value.type_name();
        // A date-time the SHRDZM layouts assemble from separate date and time items.
        if !(want == "octet-string" && got == "date-time") {
            assert_eq!(got, want, "{ctx}: A-XDR type");
        }
    }
    if let Some(raw) = expected["raw"].as_i64() {
        assert_eq!(e.value.as_integer(), Some(i128::from(raw)), "{ctx}: raw");
    }
    if let Some(s) = expected["scaler"].as_i64() {
        assert_eq!(i64::from(e.scaler), s, "{ctx}: scaler");
    }
    if let Some(u) = expected["unit_enum"].as_u64() {
        assert_eq!(e.unit.map(u64::from), Some(u), "{ctx}: unit code");
    }
    let unit_text = expected["unit"].as_str();
    if let Some(u) = unit_text.filter(|u| u.contains("(raw, scaler not in frame")) {
        // Netz Burgenland currents: the JSON gives the raw value; the layout supplies the
        // scaler the frame lacks (see vectors/README.md).
        let sym = u.split(' ').next().unwrap();
        assert_eq!(unit_symbol(e.unit), Some(sym), "{ctx}: unit");
        assert_eq!(e.scaler, -2, "{ctx}: layout scaler");
        let n = expected["value"].as_i64().unwrap();
        assert_eq!(
            e.value.as_integer(),
            Some(i128::from(n)),
            "{ctx}: raw value"
        );
        return;
    }
    assert_eq!(unit_symbol(e.unit), unit_text, "{ctx}: unit");
    match (&expected["value"], e.leaf()) {
        (Json::Number(want), Value::Number(got)) => {
            assert!(number_eq(got, want), "{ctx}: {got} != {want}");
        }
        (Json::String(want), Value::Text(got)) => assert_eq!(&got, want, "{ctx}"),
        (Json::String(want), Value::Bytes(got)) => assert_eq!(&hex(&got), want, "{ctx}"),
        (Json::String(_), Value::DateTime(dt)) => check_date_time(&dt, expected, ctx),
        (want, got) => panic!("{ctx}: expected {want}, decoded {got:?}"),
    }
}

/// Finds the entry for a JSON key (`A.B.C.D.E.F`, or `A.B.C.D.E.F attr N`).
fn find<'e, 'a>(entries: &'e [Entry<'a>], key: &str) -> Option<&'e Entry<'a>> {
    let (obis, attr) = match key.split_once(" attr ") {
        Some((o, a)) => (o, Some(a.parse::<i8>().unwrap())),
        None => (key, None),
    };
    let mut hits = entries.iter().filter(|e| {
        e.obis_string().as_deref() == Some(obis)
            && match attr {
                Some(a) => e.attribute == Some(a),
                None => e.attribute.is_none_or(|a| a == 2),
            }
    });
    let hit = hits.next();
    assert!(hits.next().is_none(), "{key} appears twice");
    hit
}

fn decoded_entries<'a>(
    v: &Vector,
    plaintext: &'a [u8],
    scratch: &'a mut Scratch,
) -> (proto_dlms::DataNotification<'a>, Vec<Entry<'a>>) {
    let n = parse_notification(plaintext, scratch)
        .unwrap_or_else(|e| panic!("{}: {e} ({})", v.name, e.stage_name()));
    let e = entries(&n.body, None).unwrap();
    (n, e)
}

#[test]
fn every_vector_decodes_to_its_expected_values() {
    let mut checked = 0;
    for v in load_all() {
        let plaintext = v.plaintext();
        let mut scratch = Scratch::new();
        let (_, entries) = decoded_entries(&v, &plaintext, &mut scratch);
        for (key, expected) in v.meta["expected"].as_object().unwrap() {
            let ctx = format!("{} {key}", v.name);
            let e = find(&entries, key).unwrap_or_else(|| panic!("{ctx}: no entry"));
            check_entry(e, expected, &ctx);
            checked += 1;
        }
    }
    assert!(checked > 250, "only {checked} values checked");
}

#[test]
fn clock_and_meter_number_without_obis_code_get_their_obis_codes() {
    // EVN/Netz NÖ: `expected_unlabeled` names them "0.0.1.0.0.255 (clock, ...)" and
    // "0.0.96.1.0.255 (meter number, ...)".
    let mut checked = 0;
    for v in load_all() {
        let plaintext = v.plaintext();
        let mut scratch = Scratch::new();
        let (_, entries) = decoded_entries(&v, &plaintext, &mut scratch);
        let Some(unlabeled) = v.meta["expected_unlabeled"].as_array() else {
            continue;
        };
        for expected in unlabeled {
            let Some(meaning) = expected["meaning"].as_str() else {
                continue;
            };
            let Some(key) = meaning.split(' ').next().filter(|k| k.starts_with("0.0.")) else {
                continue;
            };
            let ctx = format!("{} {key}", v.name);
            let e = find(&entries, key).unwrap_or_else(|| panic!("{ctx}: no entry"));
            check_entry(e, expected, &ctx);
            checked += 1;
        }
    }
    assert_eq!(checked, 8, "four EVN vectors, clock and meter number each");
}

#[test]
fn unlabeled_positions_decode_to_their_published_values() {
    // Positional layouts publish the elements without OBIS meaning with their position;
    // flat pushes without object list (ch-lg-e450-gbt-encrypted) list every element.
    for v in load_all() {
        let Some(unlabeled) = v.meta["expected_unlabeled"].as_array() else {
            continue;
        };
        let plaintext = v.plaintext();
        let mut scratch = Scratch::new();
        let n = parse_notification(&plaintext, &mut scratch).unwrap();
        let items: Vec<Data> = n.body.elements().unwrap().iter().collect();
        for expected in unlabeled {
            let Some(pos) = expected["position"].as_u64() else {
                continue;
            };
            let ctx = format!("{} position {pos}", v.name);
            let item = &items[pos as usize];
            if expected["axdr_type"]
                .as_str()
                .is_some_and(|t| t.contains("date-time"))
            {
                let dt = DateTime::from_octet_string(item.as_bytes().unwrap()).unwrap();
                check_date_time(&dt, expected, &ctx);
                continue;
            }
            let e = Entry {
                obis: None,
                class_id: None,
                attribute: None,
                value: *item,
                scaler: 0,
                unit: None,
            };
            match (&expected["value"], e.leaf()) {
                (Json::Number(want), Value::Number(got)) => assert!(number_eq(got, want), "{ctx}"),
                (Json::String(want), Value::Text(got)) => assert_eq!(&got, want, "{ctx}"),
                (Json::String(want), Value::Bytes(got)) => assert_eq!(&hex(&got), want, "{ctx}"),
                (want, got) => panic!("{ctx}: expected {want}, decoded {got:?}"),
            }
        }
    }
}

#[test]
fn notification_header_matches_the_published_invoke_id_and_date_time() {
    for v in load_all() {
        let plaintext = v.plaintext();
        let mut scratch = Scratch::new();
        let (n, _) = decoded_entries(&v, &plaintext, &mut scratch);
        let info = &v.meta["notification"];
        let id = u32::from_str_radix(
            info["long_invoke_id_and_priority_hex"].as_str().unwrap(),
            16,
        );
        assert_eq!(n.long_invoke_id_and_priority, id.unwrap(), "{}", v.name);
        match &info["date_time"] {
            Json::Null => assert_eq!(n.date_time, None, "{}", v.name),
            dt => {
                let got = n.date_time.unwrap();
                let raw = support::unhex(dt["raw_hex"].as_str().unwrap());
                assert_eq!(got.to_bytes().to_vec(), raw, "{}", v.name);
                check_date_time(&got, dt, &v.name);
            }
        }
    }
}

#[test]
fn every_vector_decrypts_from_its_wire_bytes_to_the_published_plaintext() {
    let mut encrypted = 0;
    for v in load_all() {
        let apdu = v.apdu();
        let expected = v.plaintext();
        let Some(ek) = v.key("key_hex") else {
            assert_eq!(apdu, expected, "{}: plaintext vector", v.name);
            assert!(decode_apdu(&apdu, None, &mut Scratch::new()).is_ok());
            continue;
        };
        let ak = v.key("auth_key_hex");
        let keys = Keys {
            encryption: &ek,
            authentication: ak.as_ref(),
        };
        let (d, used) = decrypt_glo(&apdu, &keys).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(used, apdu.len(), "{}", v.name);
        assert_eq!(d.plaintext, expected, "{}", v.name);
        let sc = v.meta["security_control"].as_str().unwrap();
        assert_eq!(format!("0x{:02X}", d.security_control), sc, "{}", v.name);
        assert_eq!(
            d.frame_counter,
            v.meta["invocation_counter"].as_u64().unwrap() as u32
        );
        let title = support::unhex(v.meta["system_title_hex"].as_str().unwrap());
        assert_eq!(d.system_title.to_vec(), title, "{}", v.name);
        let verified = v.meta["gcm_tag"]["verified"].as_bool() == Some(true);
        assert_eq!(d.authenticated, verified && ak.is_some(), "{}", v.name);
        let mut scratch = Scratch::new();
        let push = decode_apdu(&apdu, Some(&keys), &mut scratch).unwrap();
        assert_eq!(push.security.unwrap().authenticated, d.authenticated);
        let mut s = Scratch::new();
        assert_eq!(
            push.notification,
            parse_notification(&expected, &mut s).unwrap()
        );
        encrypted += 1;
    }
    assert_eq!(encrypted, 19);
}

#[test]
fn a_wrong_key_on_a_tagless_frame_is_reported_as_probably_wrong() {
    let mut checked = 0;
    for v in load_all() {
        let Some(mut ek) = v.key("key_hex") else {
            continue;
        };
        ek[0] ^= 0x01;
        let keys = Keys {
            encryption: &ek,
            authentication: None,
        };
        let apdu = v.apdu();
        let (d, _) = decrypt_glo(&apdu, &keys).unwrap();
        assert!(!looks_like_plaintext(&d.plaintext), "{}", v.name);
        let err = decode_apdu(&apdu, Some(&keys), &mut Scratch::new()).unwrap_err();
        assert_eq!(err, Error::ImplausiblePlaintext, "{}", v.name);
        assert_eq!(err.stage_name(), "decryption");
        assert!(err.to_string().contains("key is probably wrong"));
        checked += 1;
    }
    assert_eq!(checked, 19);
}

#[cfg(not(fuzzing))]
#[test]
fn a_tampered_tag_or_ciphertext_fails_authentication() {
    let mut checked = 0;
    for v in load_all() {
        let (Some(ek), Some(ak)) = (v.key("key_hex"), v.key("auth_key_hex")) else {
            continue;
        };
        let keys = Keys {
            encryption: &ek,
            authentication: Some(&ak),
        };
        let apdu = v.apdu();
        for at in [apdu.len() - 1, apdu.len() - 12, 20, 30] {
            let mut bad = apdu.clone();
            bad[at] ^= 0x04;
            let err = decrypt_glo(&bad, &keys).unwrap_err();
            assert_eq!(err, Error::AuthenticationFailed, "{} byte {at}", v.name);
            assert_eq!(err.stage_name(), "authentication");
        }
        checked += 1;
    }
    assert_eq!(checked, 2, "the two Netz Burgenland frames");
}

#[test]
fn truncated_apdus_are_incomplete_or_errors_never_panics() {
    for v in load_all() {
        let ek = v.key("key_hex").unwrap_or([0; 16]);
        let keys = Keys {
            encryption: &ek,
            authentication: None,
        };
        let apdu = v.apdu();
        for n in 0..apdu.len() {
            let cut = &apdu[..n];
            if apdu[0] == 0xDB {
                assert!(
                    matches!(decrypt_glo(cut, &keys), Err(Error::Incomplete { .. })),
                    "{} prefix {n}",
                    v.name
                );
            }
            assert!(
                decode_apdu(cut, Some(&keys), &mut Scratch::new()).is_err(),
                "{} prefix {n}",
                v.name
            );
        }
        let plain = v.plaintext();
        for n in 0..plain.len() {
            let e = parse_notification(&plain[..n], &mut Scratch::new()).unwrap_err();
            assert!(
                ["apdu", "data"].contains(&e.stage_name()),
                "{} {n}: {e:?}",
                v.name
            );
        }
    }
}

#[test]
fn general_block_transfer_vectors_reassemble_in_published_block_order() {
    let mut checked = 0;
    for v in load_all() {
        let Some(blocks) = v.meta["general_block_transfer"].as_array() else {
            continue;
        };
        let payload = v.link_payload();
        let mut rest = &payload[..];
        for expected in blocks {
            let (b, used) = gbt::parse_block(rest).unwrap();
            assert_eq!(
                u64::from(b.number),
                expected["bn"].as_u64().unwrap(),
                "{}",
                v.name
            );
            assert_eq!(
                b.is_last(),
                expected["last"].as_bool().unwrap(),
                "{}",
                v.name
            );
            assert_eq!(b.is_streaming(), expected["streaming"].as_bool().unwrap());
            assert_eq!(
                b.data.len() as u64,
                expected["len"].as_u64().unwrap(),
                "{}",
                v.name
            );
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        // Dropping the second block loses the message and is reported.
        let mut r = gbt::Reassembler::new();
        let (b1, n1) = gbt::parse_block(&payload).unwrap();
        let (_, n2) = gbt::parse_block(&payload[n1..]).unwrap();
        let (b3, _) = gbt::parse_block(&payload[n1 + n2..]).unwrap();
        assert_eq!(r.push_block(&b1), Ok(None));
        assert_eq!(
            r.push_block(&b3),
            Err(Error::BlockOutOfOrder {
                expected: 2,
                actual: 3
            })
        );
        checked += 1;
    }
    assert_eq!(checked, 5);
}

#[test]
fn positional_vectors_are_recognised_as_their_layout() {
    let expect = [
        ("hdlc-dlms/wienernetze-", Some(Layout::WienerNetze)),
        ("hdlc-dlms/netzburgenland-", Some(Layout::NetzBurgenland)),
        (
            "hdlc-dlms/shrdzm-siemens-im350-wels-",
            Some(Layout::Shrdzm10),
        ),
        ("hdlc-dlms/shrdzm-siemens-im350-1", Some(Layout::Shrdzm12)),
        ("hdlc-dlms/shrdzm-siemens-im350-2", Some(Layout::Shrdzm12)),
        ("hdlc-dlms/shrdzm-iskra-am550", Some(Layout::Shrdzm12)),
    ];
    for v in load_all() {
        let plaintext = v.plaintext();
        let mut scratch = Scratch::new();
        let (n, _) = decoded_entries(&v, &plaintext, &mut scratch);
        let want = expect
            .iter()
            .find(|(p, _)| v.name.starts_with(p))
            .and_then(|(_, l)| *l);
        assert_eq!(Layout::detect(&n.body), want, "{}", v.name);
        if let Some(l) = want {
            assert_eq!(
                entries(&n.body, Some(l)).unwrap(),
                entries(&n.body, None).unwrap()
            );
        } else {
            // Forcing a positional layout on a self-describing push is a data error.
            let e = entries(&n.body, Some(Layout::WienerNetze)).unwrap_err();
            assert_eq!(e.stage_name(), "data", "{}", v.name);
        }
    }
}

#[test]
fn capture_object_lists_match_the_published_lists() {
    let mut checked = 0;
    for v in load_all() {
        let Some(list) = v.meta["push_capture_objects"].as_array() else {
            continue;
        };
        let plaintext = v.plaintext();
        let mut scratch = Scratch::new();
        let (n, _) = decoded_entries(&v, &plaintext, &mut scratch);
        let got = cosem::capture_objects(&n.body).unwrap();
        assert_eq!(got.len(), list.len(), "{}", v.name);
        for (g, w) in got.iter().zip(list) {
            assert_eq!(u64::from(g.class_id), w["class_id"].as_u64().unwrap());
            assert_eq!(cosem::obis_to_string(&g.obis), w["obis"].as_str().unwrap());
            assert_eq!(i64::from(g.attribute), w["attribute"].as_i64().unwrap());
            assert_eq!(u64::from(g.data_index), w["data_index"].as_u64().unwrap());
        }
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn every_entry_of_every_vector_has_a_printable_leaf() {
    // No vector contains values the leaf conversion cannot express.
    for v in load_all() {
        let plaintext = v.plaintext();
        let mut scratch = Scratch::new();
        let (_, entries) = decoded_entries(&v, &plaintext, &mut scratch);
        for e in &entries {
            assert!(
                !matches!(e.leaf(), Value::Compound | Value::Null),
                "{}: {e:?}",
                v.name
            );
        }
        assert!(!matches!(entries[0].value, Data::Null));
    }
}
