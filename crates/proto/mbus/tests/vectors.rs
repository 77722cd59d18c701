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

use proto_mbus::{Decoder, Error, Frame, Framer, Reassembler, Skip};
use proto_stream::testing::{self, ber_len, hex_field, Rng, Vector};

fn vectors() -> Vec<Vector> {
    let out = testing::vectors(Path::new(env!("CARGO_MANIFEST_DIR")).join("vectors"));
    assert_eq!(out.len(), 6, "expected the six M-Bus captures");
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
        let mut total = 0;
        while let Some(r) = framer.pop() {
            let f = r.unwrap_or_else(|e| panic!("{}: {e}", v.name));
            let want = &framing[seen];
            assert_eq!(
                f.body_len() as u64,
                want["L"].as_u64().unwrap(),
                "{}",
                v.name
            );
            assert_eq!(
                f.control(),
                u8::from_str_radix(want["C"].as_str().unwrap(), 16).unwrap()
            );
            assert_eq!(
                f.address(),
                u8::from_str_radix(want["A"].as_str().unwrap(), 16).unwrap()
            );
            assert_eq!(
                f.ci(),
                u8::from_str_radix(want["CI"].as_str().unwrap(), 16).unwrap()
            );
            assert_eq!(
                hex::encode_upper(&f.data()[..2]),
                want["STSAP_DTSAP"].as_str().unwrap()
            );
            assert_eq!(
                (f.data().len() - 2) as u64,
                want["segment_payload_len"].as_u64().unwrap(),
                "{}",
                v.name
            );
            assert!(want["checksum_ok"].as_bool().unwrap());
            assert_eq!(f.overflowed(), want.get("quirk").is_some(), "{}", v.name);
            assert_eq!(f.offset(), total);
            total += f.as_bytes().len() as u64;
            seen += 1;
        }
        assert_eq!(seen, framing.len(), "{}", v.name);
        assert_eq!(
            total as usize,
            v.wire.len(),
            "{}: no byte left over",
            v.name
        );
    }
}

#[test]
fn every_capture_reassembles_into_the_published_ciphered_apdu() {
    for v in vectors() {
        let mut d = Decoder::new();
        d.push(&v.wire);
        d.finish();
        let apdu = d.pop().unwrap().unwrap().bytes.to_vec();
        assert!(d.pop().is_none(), "{}", v.name);

        // general-glo-ciphering: DB, system title, length, SC, invocation counter, ciphertext.
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
        assert_eq!(
            len,
            rest.len(),
            "{}: the length covers exactly the rest",
            v.name
        );
        let sc = u8::from_str_radix(
            v.meta["security_control"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap();
        assert_eq!(rest[0], sc, "{}", v.name);
        let ic = u32::from_be_bytes(rest[1..5].try_into().unwrap());
        assert_eq!(
            u64::from(ic),
            v.meta["invocation_counter"].as_u64().unwrap()
        );
        // No tag on these meters: the ciphertext is as long as the published plaintext.
        assert!(!v.meta["gcm_tag"]["present"].as_bool().unwrap());
        assert_eq!(
            rest.len() - 5,
            hex_field(&v.meta, "decrypted_apdu_hex").len(),
            "{}",
            v.name
        );
        // And it is the segments' data after the transport SAPs, in order.
        let mut joined = Vec::new();
        let mut framer = Framer::new();
        framer.push(&v.wire);
        while let Some(Ok(f)) = framer.pop() {
            joined.extend_from_slice(&f.data()[2..]);
        }
        assert_eq!(joined, apdu, "{}", v.name);
    }
}

type Out = testing::Out<Error>;

fn decode_in_chunks(input: &[u8], rng: &mut Rng, max_chunk: usize) -> Vec<Out> {
    testing::decode_in_chunks::<Reassembler>(input, rng, max_chunk)
}

#[test]
fn chunking_and_garbage_between_telegrams_give_the_same_apdus() {
    let vs = vectors();
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    // All captures in a row, with noise (that never contains a 68) between telegrams.
    let mut stream = Vec::new();
    let mut expected = Vec::new();
    for (i, v) in vs.iter().enumerate() {
        let noise: Vec<u8> = (0..(3 + i * 5))
            .map(|k| (k as u8).wrapping_mul(13) | 0x01)
            .collect();
        assert!(!noise.contains(&0x68));
        expected.push(Out::Err(Error::Skipped {
            offset: stream.len() as u64,
            len: noise.len() as u64,
            cause: Skip::NoStart,
        }));
        stream.extend_from_slice(&noise);
        let mut one = Decoder::new();
        one.push(&v.wire);
        let apdu = one.pop().unwrap().unwrap().bytes.to_vec();
        expected.push(Out::Apdu(stream.len() as u64, apdu));
        stream.extend_from_slice(&v.wire);
    }
    for max_chunk in [1, 2, 3, 7, 64, 300, 5000] {
        for _ in 0..4 {
            assert_eq!(
                decode_in_chunks(&stream, &mut rng, max_chunk),
                expected,
                "max chunk {max_chunk}"
            );
        }
    }
}

#[test]
fn a_read_starting_mid_telegram_recovers_at_the_next_one() {
    let vs = vectors();
    let v = &vs[0];
    let start = 100;
    let mut stream = v.wire[start..].to_vec();
    stream.extend_from_slice(&v.wire);
    let out = decode_in_chunks(&stream, &mut Rng(7), 50);
    // The tail of frame 1 is garbage, frame 2 alone is out of order, then a full telegram.
    let first_frame_len = 6 + v.wire[1] as usize;
    assert_eq!(
        out[0],
        Out::Err(Error::Skipped {
            offset: 0,
            len: (first_frame_len - start) as u64,
            cause: Skip::NoStart
        })
    );
    assert!(matches!(
        out[1],
        Out::Err(Error::OutOfOrder {
            expected: 0,
            got: 1,
            ..
        })
    ));
    assert!(matches!(&out[2], Out::Apdu(off, _) if *off == (v.wire.len() - start) as u64));
    assert_eq!(out.len(), 3);
}

#[test]
fn a_corrupted_byte_gives_a_checksum_error_and_drops_the_message() {
    for v in vectors() {
        let mut bad = v.wire.clone();
        bad[40] ^= 0x20;
        let mut stream = bad.clone();
        stream.extend_from_slice(&v.wire);
        let out = decode_in_chunks(&stream, &mut Rng(3), 100);
        assert!(
            matches!(out[0], Out::Err(Error::BadChecksum { offset: 0, .. })),
            "{}: {out:?}",
            v.name
        );
        // The second segment of the broken telegram has no first segment.
        assert!(
            matches!(out[1], Out::Err(Error::OutOfOrder { .. })),
            "{}",
            v.name
        );
        assert!(matches!(&out[2], Out::Apdu(off, _) if *off == bad.len() as u64));
        assert_eq!(out.len(), 3, "{}", v.name);
    }
}

#[test]
fn a_lost_byte_gives_a_framing_error_and_the_next_telegram_decodes() {
    for v in vectors() {
        let mut lossy = v.wire.clone();
        lossy.remove(120);
        let mut stream = lossy.clone();
        stream.extend_from_slice(&v.wire);
        let out = decode_in_chunks(&stream, &mut Rng(11), 33);
        assert!(
            matches!(out[0], Out::Err(Error::Skipped { offset: 0, .. })),
            "{}: {out:?}",
            v.name
        );
        assert!(
            matches!(out[1], Out::Err(Error::OutOfOrder { .. })),
            "{}",
            v.name
        );
        assert!(
            matches!(&out[2], Out::Apdu(off, _) if *off == lossy.len() as u64),
            "{}: {out:?}",
            v.name
        );
        assert_eq!(out.len(), 3, "{}", v.name);
    }
}

#[test]
fn a_truncated_telegram_at_the_end_of_input_is_reported() {
    for v in vectors() {
        let cut = &v.wire[..v.wire.len() - 5];
        let out = decode_in_chunks(cut, &mut Rng(5), 64);
        let first_len = 6 + Frame::parse(&v.wire[..first_frame_len(&v.wire)])
            .unwrap()
            .body_len();
        assert_eq!(
            out,
            vec![
                Out::Err(Error::Truncated {
                    offset: first_len as u64,
                    len: (cut.len() - first_len) as u64
                }),
                Out::Err(Error::Incomplete {
                    offset: 0,
                    segments: 1
                }),
            ],
            "{}",
            v.name
        );
    }
}

fn first_frame_len(wire: &[u8]) -> usize {
    let mut f = Framer::new();
    f.push(wire);
    let len = f.pop().unwrap().unwrap().as_bytes().len();
    len
}
