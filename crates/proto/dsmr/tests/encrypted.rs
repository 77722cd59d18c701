//! Encrypted P1: the published frames decrypt to their expected telegrams; synthetic frames
//! (built with the DLMS layer's `encrypt_glo` and a test key) show the error stages, the
//! resynchronisation on noise and the chunking invariance.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::path::Path;

use proto_dlms::security::encrypt_glo;
use proto_dsmr::encrypted::{Frame, Keys};
use proto_dsmr::{crc, EncryptedError, EncryptedFramer, Error, Obis};
use serde_json::Value;

struct Vector {
    name: String,
    wire: Vec<u8>,
    key: [u8; 16],
    auth_key: Option<[u8; 16]>,
    meta: Value,
}

fn unhex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn key(v: &Value) -> Option<[u8; 16]> {
    v.as_str().map(|s| unhex(s).try_into().unwrap())
}

fn vectors() -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors/encrypted");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|json| {
            let meta: Value =
                serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
            Vector {
                name: meta["name"].as_str().unwrap().to_string(),
                wire: unhex(&std::fs::read_to_string(json.with_extension("hex")).unwrap()),
                key: key(&meta["key_hex"]).unwrap(),
                auth_key: key(&meta["auth_key_hex"]),
                meta,
            }
        })
        .collect()
}

fn run(wire: &[&[u8]], keys: &Keys<'_>) -> Vec<Result<Frame, EncryptedError>> {
    let mut framer = EncryptedFramer::new();
    let mut out = Vec::new();
    for chunk in wire {
        framer.feed(chunk, keys, |_, f| out.push(f));
    }
    while let Some(f) = framer.finish(keys) {
        out.push(f);
    }
    out
}

#[test]
fn every_encrypted_vector_decrypts_to_its_published_telegram() {
    let all = vectors();
    assert_eq!(all.len(), 3);
    for v in &all {
        let keys = Keys {
            encryption: &v.key,
            authentication: v.auth_key.as_ref(),
        };
        let frames = run(&[&v.wire], &keys);
        assert_eq!(frames.len(), 1, "{}", v.name);
        let frame = frames[0]
            .as_ref()
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(frame.len, v.wire.len());
        let text = std::str::from_utf8(&frame.decrypted.plaintext).unwrap();
        assert_eq!(
            text,
            v.meta["decrypted_telegram"].as_str().unwrap(),
            "{}",
            v.name
        );
        assert_eq!(
            frame.decrypted.authenticated,
            v.auth_key.is_some(),
            "{}",
            v.name
        );
        assert_eq!(
            u64::from(frame.decrypted.frame_counter),
            v.meta["invocation_counter"].as_u64().unwrap()
        );
        let telegram = frame.telegram().unwrap();
        assert!(telegram.object(Obis::new(1, 0, 1, 8, 0, 255)).is_some());
    }
}

#[test]
fn reports_a_tag_that_does_not_verify_as_authentication_failure() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name.ends_with("steiermark-1"))
        .unwrap();
    // The key printed next to this frame in its source does not verify the tag.
    let wrong_ak = key(&v.meta["auth_key_in_source_not_verifying"]).unwrap();
    let keys = Keys {
        encryption: &v.key,
        authentication: Some(&wrong_ak),
    };
    assert_eq!(
        run(&[&v.wire], &keys),
        vec![Err(EncryptedError::Authentication { plaintext_ok: true })]
    );
    let lux = vectors()
        .into_iter()
        .find(|v| v.name.starts_with("lu-"))
        .unwrap();
    let mut tampered = lux.wire.clone();
    *tampered.last_mut().unwrap() ^= 0x01;
    let keys = Keys {
        encryption: &lux.key,
        authentication: lux.auth_key.as_ref(),
    };
    assert_eq!(
        run(&[&tampered], &keys),
        vec![Err(EncryptedError::Authentication { plaintext_ok: true })]
    );
}

#[test]
fn reports_a_wrong_key_as_decryption_failure_once_per_frame() {
    let v = &vectors()[1];
    let wrong = [0x11u8; 16];
    let keys = Keys {
        encryption: &wrong,
        authentication: None,
    };
    let mut stream = v.wire.clone();
    stream.extend_from_slice(&v.wire);
    let out = run(&[&stream], &keys);
    assert_eq!(out.len(), 2);
    for f in out {
        assert!(matches!(f, Err(EncryptedError::Decryption { .. })), "{f:?}");
    }
}

const KEY: [u8; 16] = *b"0123456789abcdef";
const AK: [u8; 16] = *b"fedcba9876543210";
const TITLE: [u8; 8] = *b"SAG5\x00\x01\x02\x03";

fn telegram(n: u32) -> Vec<u8> {
    let mut t =
        format!("/TST5\\2TEST\r\n\r\n1-3:0.2.8(50)\r\n1-0:1.8.0({n:09}*Wh)\r\n!").into_bytes();
    let c = crc::crc16(&t);
    t.extend_from_slice(format!("{c:04X}\r\n").as_bytes());
    t
}

fn frame(plaintext: &[u8], fc: u32) -> Vec<u8> {
    let keys = Keys {
        encryption: &KEY,
        authentication: Some(&AK),
    };
    encrypt_glo(plaintext, &TITLE, fc, 0x30, &keys).unwrap()
}

#[test]
fn reports_a_corrupted_telegram_inside_a_valid_frame_as_checksum_failure() {
    let mut t = telegram(7);
    t[20] = b'9';
    let keys = Keys {
        encryption: &KEY,
        authentication: None,
    };
    assert!(matches!(
        run(&[&frame(&t, 1)], &keys)[..],
        [Err(EncryptedError::Checksum { .. })]
    ));
}

#[test]
fn finds_frames_behind_noise_and_a_false_header_whatever_the_chunking() {
    let keys = Keys {
        encryption: &KEY,
        authentication: Some(&AK),
    };
    let mut stream = b"\xDB\x08noise\xDB".to_vec();
    // A header in the noise whose length runs into the real frame after it.
    stream.extend_from_slice(b"\xDB\x08SAG5\x00\x00\x00\x00\x40\x30\x00\x00\x00\x01");
    for fc in 0..4 {
        stream.extend_from_slice(&frame(&telegram(fc), fc));
        stream.extend_from_slice(b"\x00\xFF\xDB\r\n");
    }
    // A frame cut off by the end of the input.
    let last = frame(&telegram(9), 9);
    stream.extend_from_slice(&last[..60]);
    let whole = run(&[&stream], &keys);
    let counters: Vec<u32> = whole
        .iter()
        .filter_map(|f| f.as_ref().ok().map(|f| f.decrypted.frame_counter))
        .collect();
    assert_eq!(counters, vec![0, 1, 2, 3]);
    let errors: Vec<_> = whole.iter().filter_map(|f| f.as_ref().err()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(matches!(
        errors[1],
        EncryptedError::Truncated { len: 60, .. }
    ));
    for size in [1, 2, 3, 7, 13, 64, 511, 1000] {
        let chunks: Vec<&[u8]> = stream.chunks(size).collect();
        assert_eq!(run(&chunks, &keys), whole, "chunk size {size}");
    }
}

#[test]
fn decrypts_without_the_authentication_key_as_unauthenticated() {
    let keys = Keys {
        encryption: &KEY,
        authentication: None,
    };
    let out = run(&[&frame(&telegram(3), 3)], &keys);
    let f = out[0].as_ref().unwrap();
    assert!(!f.decrypted.authenticated);
    assert_eq!(f.offset, 0);
}

#[test]
fn error_messages_name_the_likely_cause() {
    let e = EncryptedError::Decryption {
        error: Error::NoStart,
    };
    assert!(e.to_string().contains("key is probably wrong"));
    let a = EncryptedError::Authentication { plaintext_ok: true };
    assert!(a
        .to_string()
        .contains("authentication key is probably wrong"));
}
