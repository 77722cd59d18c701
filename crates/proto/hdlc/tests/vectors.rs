//! The real captures in `vectors/`: every frame found with its published framing fields, every
//! message reassembled into the APDU the metadata describes, whatever the chunking.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::Path;

use proto_hdlc::{Decoder, Error, Framer, Reassembler, Skip};
use proto_stream::testing::{self, ber_len, hex_field, Rng, Vector};
use serde_json::Value;

fn vectors() -> Vec<Vector> {
    let out = testing::vectors(Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors"));
    assert_eq!(out.len(), 19, "expected the nineteen HDLC captures");
    out
}

type Out = testing::Out<Error>;

fn decode_in_chunks(input: &[u8], rng: &mut Rng, max_chunk: usize) -> Vec<Out> {
    testing::decode_in_chunks::<Reassembler>(input, rng, max_chunk)
}

fn byte(v: &Value) -> u8 {
    u8::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

fn all_apdus(wire: &[u8]) -> Vec<Vec<u8>> {
    let mut d = Decoder::new();
    d.push(wire);
    d.finish();
    let mut out = Vec::new();
    while let Some(r) = d.pop() {
        out.push(r.unwrap().bytes.to_vec());
    }
    out
}

#[test]
fn every_capture_yields_its_frames_with_the_published_fields() {
    for v in vectors() {
        let mut framer = Framer::new();
        framer.push(&v.wire);
        framer.finish();
        let framing = v.meta["framing"].as_array().unwrap();
        let mut seen = 0;
        while let Some(r) = framer.pop() {
            let f = r.unwrap_or_else(|e| panic!("{}: {e}", v.name));
            let want = &framing[seen];
            assert_eq!(
                format!("{:04X}", f.format()),
                want["format"].as_str().unwrap(),
                "{}",
                v.name
            );
            assert_eq!(f.segmented(), want["segmented"].as_bool().unwrap());
            assert_eq!(
                hex::encode_upper(f.dst().as_bytes()),
                want["dst"].as_str().unwrap()
            );
            assert_eq!(
                hex::encode_upper(f.src().as_bytes()),
                want["src"].as_str().unwrap()
            );
            assert_eq!(f.control(), byte(&want["control"]));
            assert_eq!(
                f.info().len() as u64,
                want["info_len"].as_u64().unwrap(),
                "{}",
                v.name
            );
            assert!(want["hcs_ok"].as_bool().unwrap() && want["fcs_ok"].as_bool().unwrap());
            assert_eq!(f.len_field() + 2, f.as_bytes().len());
            seen += 1;
        }
        assert_eq!(seen, framing.len(), "{}", v.name);
        assert!(framer.at_end());
    }
}

/// A General-Block-Transfer block: (last, streaming, window, block number, acked block, data).
fn gbt(apdu: &[u8]) -> (bool, bool, u8, u16, u16, &[u8]) {
    assert_eq!(apdu[0], 0xE0);
    let flags = apdu[1];
    let bn = u16::from_be_bytes([apdu[2], apdu[3]]);
    let ack = u16::from_be_bytes([apdu[4], apdu[5]]);
    let (len, used) = ber_len(&apdu[6..]);
    let data = &apdu[6 + used..];
    assert_eq!(len, data.len(), "a block holds exactly its length");
    (
        flags & 0x80 != 0,
        flags & 0x40 != 0,
        flags & 0x3F,
        bn,
        ack,
        data,
    )
}

/// Checks a (joined) APDU against the metadata: plaintext equal to the published one, or a
/// general-glo-ciphering APDU with the published system title, security control and
/// invocation counter whose ciphertext (+ tag) is as long as the published plaintext.
fn check_message(v: &Vector, apdu: &[u8]) {
    let plain = hex_field(&v.meta, "decrypted_apdu_hex");
    if v.meta["key_hex"].is_null() {
        assert_eq!(apdu, &plain[..], "{}: plaintext push", v.name);
        return;
    }
    assert_eq!(apdu[0], 0xDB, "{}", v.name);
    assert_eq!(apdu[1], 8);
    assert_eq!(
        apdu[2..10],
        hex_field(&v.meta, "system_title_hex")[..],
        "{}",
        v.name
    );
    let (len, used) = ber_len(&apdu[10..]);
    let rest = &apdu[10 + used..];
    assert_eq!(len, rest.len(), "{}", v.name);
    assert_eq!(rest[0], byte(&v.meta["security_control"]), "{}", v.name);
    let ic = u32::from_be_bytes(rest[1..5].try_into().unwrap());
    assert_eq!(
        u64::from(ic),
        v.meta["invocation_counter"].as_u64().unwrap()
    );
    let tag = v.meta["gcm_tag"]["length"].as_u64().unwrap() as usize;
    assert_eq!(rest.len() - 5 - tag, plain.len(), "{}", v.name);
    if tag > 0 {
        assert_eq!(
            hex::encode_upper(&rest[rest.len() - tag..]),
            v.meta["gcm_tag"]["tag_hex"].as_str().unwrap()
        );
    }
}

#[test]
fn every_capture_gives_the_apdus_its_metadata_describes() {
    for v in vectors() {
        let apdus = all_apdus(&v.wire);
        match v.meta.get("general_block_transfer") {
            Some(blocks) => {
                let blocks = blocks.as_array().unwrap();
                assert_eq!(apdus.len(), blocks.len(), "{}: one block per frame", v.name);
                let mut joined = Vec::new();
                for (apdu, want) in apdus.iter().zip(blocks) {
                    let (last, streaming, window, bn, ack, data) = gbt(apdu);
                    assert_eq!(last, want["last"].as_bool().unwrap(), "{}", v.name);
                    assert_eq!(streaming, want["streaming"].as_bool().unwrap());
                    assert_eq!(u64::from(window), want["window"].as_u64().unwrap());
                    assert_eq!(u64::from(bn), want["bn"].as_u64().unwrap());
                    assert_eq!(u64::from(ack), want["ack"].as_u64().unwrap());
                    assert_eq!(data.len() as u64, want["len"].as_u64().unwrap());
                    joined.extend_from_slice(data);
                }
                check_message(&v, &joined);
            }
            None => {
                assert_eq!(apdus.len(), 1, "{}: one message", v.name);
                check_message(&v, &apdus[0]);
            }
        }
    }
}

#[test]
fn chunking_and_garbage_between_frames_give_the_same_apdus() {
    let vs = vectors();
    let mut rng = Rng(0x0DDC_0FFE_E123_4567);
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (i, v) in vs.iter().enumerate() {
        // Noise without flags, like a capturing device's appended digest.
        let noise: Vec<u8> = (0..(1 + i * 7))
            .map(|k| (k as u8).wrapping_mul(29) | 0x01)
            .collect();
        assert!(!noise.contains(&0x7E));
        expected.push(Out::Err(Error::Skipped {
            offset: stream.len() as u64,
            len: noise.len() as u64,
            cause: Skip::NoFlag,
        }));
        stream.extend_from_slice(&noise);
        let mut d = Decoder::new();
        d.push(&v.wire);
        while let Some(r) = d.pop() {
            let a = r.unwrap();
            expected.push(Out::Apdu(stream.len() as u64 + a.offset, a.bytes.to_vec()));
        }
        stream.extend_from_slice(&v.wire);
    }
    for max_chunk in [1, 2, 5, 13, 100, 700, 10_000] {
        for _ in 0..3 {
            assert_eq!(
                decode_in_chunks(&stream, &mut rng, max_chunk),
                expected,
                "max chunk {max_chunk}"
            );
        }
    }
}

#[test]
fn junk_appended_after_the_closing_flag_is_skipped_once() {
    // Wiener Netze captures were followed by a 96-byte digest and signature.
    for v in vectors()
        .iter()
        .filter(|v| v.name.starts_with("wienernetze"))
    {
        let junk: Vec<u8> = (0..96u8).map(|k| k.wrapping_mul(37)).collect();
        let stream = [v.wire.clone(), junk.clone(), v.wire.clone()].concat();
        let out = decode_in_chunks(&stream, &mut Rng(9), 40);
        assert_eq!(out.len(), 3, "{}: {out:?}", v.name);
        assert!(matches!(out[0], Out::Apdu(0, _)));
        assert!(matches!(out[1], Out::Err(Error::Skipped { .. })));
        assert!(matches!(&out[2], Out::Apdu(off, _) if *off == (v.wire.len() + junk.len()) as u64));
    }
}

#[test]
fn a_corrupted_byte_gives_an_fcs_error_and_the_next_frame_decodes() {
    for v in vectors() {
        let mut bad = v.wire.clone();
        let at = bad.len() - 10; // inside the information field of the last frame
        bad[at] ^= 0x04;
        let out = decode_in_chunks(&[bad.clone(), v.wire.clone()].concat(), &mut Rng(2), 77);
        let fcs = out
            .iter()
            .position(|o| matches!(o, Out::Err(Error::BadFcs { .. })))
            .unwrap_or_else(|| panic!("{}: {out:?}", v.name));
        // Everything after the damaged frame decodes as the clean capture does.
        let clean = all_apdus(&v.wire);
        let tail: Vec<&Vec<u8>> = out[fcs + 1..]
            .iter()
            .filter_map(|o| match o {
                Out::Apdu(_, a) => Some(a),
                Out::Err(_) => None,
            })
            .collect();
        assert_eq!(tail.len(), clean.len(), "{}", v.name);
        assert!(tail.iter().zip(&clean).all(|(a, b)| *a == b), "{}", v.name);
    }
}

#[test]
fn a_lost_byte_gives_an_error_and_the_next_capture_decodes() {
    for v in vectors() {
        let mut lossy = v.wire.clone();
        lossy.remove(30);
        let out = decode_in_chunks(&[lossy.clone(), v.wire.clone()].concat(), &mut Rng(4), 25);
        assert!(matches!(out[0], Out::Err(_)), "{}: {out:?}", v.name);
        let clean = all_apdus(&v.wire);
        let n = out.len();
        for (got, want) in out[n - clean.len()..].iter().zip(&clean) {
            assert!(
                matches!(got, Out::Apdu(_, a) if a == want),
                "{}: {out:?}",
                v.name
            );
        }
    }
}

#[test]
fn a_truncated_frame_at_the_end_of_input_is_reported() {
    for v in vectors() {
        let cut = &v.wire[..v.wire.len() - 4];
        let out = decode_in_chunks(cut, &mut Rng(8), 64);
        assert!(
            out.iter()
                .any(|o| matches!(o, Out::Err(Error::Truncated { .. }))),
            "{}: {out:?}",
            v.name
        );
    }
}

#[test]
fn the_segmented_capture_is_one_message_of_five_frames() {
    let v = vectors()
        .into_iter()
        .find(|v| v.name == "ch-iskra-am550-hdlc-segmented-plain")
        .unwrap();
    let mut d = Decoder::new();
    d.push(&v.wire);
    let a = d.pop().unwrap().unwrap();
    assert_eq!(a.segments, 5);
    assert!(a.llc);
    // Losing the last segment: the message is reported incomplete at the end of input.
    let last_start = v.wire.len() - (0x55 + 2);
    let out = decode_in_chunks(&v.wire[..last_start], &mut Rng(1), 90);
    assert_eq!(
        out,
        vec![Out::Err(Error::Incomplete {
            offset: 0,
            segments: 4
        })]
    );
}
