//! Loading the vectors and stripping their link framing (shared by the tests and the bench).
//!
//! The link layers belong to other crates; this is just enough to get at the APDU bytes:
//! M-Bus segments are cut with the lengths the JSON metadata records
//! (`framing[].segment_payload_len`, which also covers the Sagemcom L-field overflow), HDLC
//! frames with their frame format field (IEC 62056-46 §6.4.1; addresses end at the byte whose
//! lowest bit is set).

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::PathBuf;

use proto_dlms::gbt;

pub struct Vector {
    /// `mbus-dlms/<name>` or `hdlc-dlms/<name>`.
    pub name: String,
    /// The bytes as received on the serial line.
    pub wire: Vec<u8>,
    /// The JSON metadata.
    pub meta: serde_json::Value,
}

pub fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

/// Every vector (JSON + hex pair) under `vectors/`.
pub fn load_all() -> Vec<Vector> {
    let mut out = Vec::new();
    for dir in ["mbus-dlms", "hdlc-dlms"] {
        let mut paths: Vec<_> = std::fs::read_dir(vectors_dir().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        for p in paths {
            let meta: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            let wire = unhex(&std::fs::read_to_string(p.with_extension("hex")).unwrap());
            let stem = p.file_stem().unwrap().to_str().unwrap();
            out.push(Vector {
                name: format!("{dir}/{stem}"),
                wire,
                meta,
            });
        }
    }
    assert!(out.len() >= 25, "vectors missing: found {}", out.len());
    out
}

impl Vector {
    pub fn key(&self, field: &str) -> Option<[u8; 16]> {
        self.meta[field]
            .as_str()
            .map(|s| unhex(s).try_into().unwrap())
    }

    pub fn plaintext(&self) -> Vec<u8> {
        unhex(self.meta["decrypted_apdu_hex"].as_str().unwrap())
    }

    pub fn is_mbus(&self) -> bool {
        self.name.starts_with("mbus-dlms/")
    }

    /// The link-layer payload: the APDU, or the concatenated general-block-transfer APDUs.
    pub fn link_payload(&self) -> Vec<u8> {
        if self.is_mbus() {
            mbus_payload(&self.wire, &self.meta)
        } else {
            hdlc_payload(&self.wire, &self.meta)
        }
    }

    /// The complete APDU (general-block-transfer reassembled).
    pub fn apdu(&self) -> Vec<u8> {
        let payload = self.link_payload();
        if payload.first() != Some(&gbt::TAG) {
            return payload;
        }
        let mut r = gbt::Reassembler::new();
        let mut rest = &payload[..];
        loop {
            let (block, used) = gbt::parse_block(rest).unwrap();
            if let Some(apdu) = r.push_block(&block).unwrap() {
                assert_eq!(
                    used,
                    rest.len(),
                    "{}: bytes after the last block",
                    self.name
                );
                return apdu;
            }
            rest = &rest[used..];
        }
    }
}

fn mbus_payload(wire: &[u8], meta: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    for frame in meta["framing"].as_array().unwrap() {
        assert_eq!(wire[pos], 0x68, "M-Bus start at {pos}");
        let len = frame["segment_payload_len"].as_u64().unwrap() as usize;
        // 68 L L 68 C A CI STSAP DTSAP | payload | CS 16
        out.extend_from_slice(&wire[pos + 9..pos + 9 + len]);
        pos += 9 + len;
        assert_eq!(wire[pos + 1], 0x16, "M-Bus stop byte");
        pos += 2;
    }
    out
}

fn hdlc_payload(wire: &[u8], meta: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut previous_segmented = false;
    for (i, _) in meta["framing"].as_array().unwrap().iter().enumerate() {
        if wire[pos] == 0x7E {
            pos += 1;
        }
        let format = u16::from_be_bytes([wire[pos], wire[pos + 1]]);
        assert_eq!(format >> 12, 0xA, "frame format type 3");
        let segmented = format & 0x0800 != 0;
        let len = usize::from(format & 0x07FF);
        let frame = &wire[pos..pos + len];
        let mut h = 2;
        for _ in 0..2 {
            while frame[h] & 1 == 0 {
                h += 1;
            }
            h += 1;
        }
        h += 1 + 2; // control, HCS
        let mut info = &frame[h..len - 2];
        let continuation = i > 0 && previous_segmented;
        if !continuation && info.starts_with(&[0xE6, 0xE7, 0x00]) {
            info = &info[3..];
        }
        out.extend_from_slice(info);
        previous_segmented = segmented;
        pos += len;
        assert_eq!(wire[pos], 0x7E, "closing flag");
        pos += 1;
    }
    out
}
