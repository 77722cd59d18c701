//! Helpers for the link layers' tests, benches and fuzz targets (feature `testing`): the real
//! captures of a crate's `vectors/` folder, decoding in arbitrary chunks, a deterministic
//! generator. Not for library code: the loader panics on a missing or malformed vector file.
#![allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::arithmetic_side_effects,
    clippy::panic
)]

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::decoder::{Decoder, Reassemble};

/// One capture: `NAME.hex` (hex text, whitespace ignored) and its metadata `NAME.json`.
#[derive(Debug, Clone)]
pub struct Vector {
    /// The file stem.
    pub name: String,
    /// The captured bytes.
    pub wire: Vec<u8>,
    /// The metadata.
    pub meta: Value,
}

/// Every capture in `dir`, sorted by name.
pub fn vectors(dir: impl AsRef<Path>) -> Vec<Vector> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir.as_ref())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hex"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let hex: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let meta: Value =
                serde_json::from_str(&std::fs::read_to_string(p.with_extension("json")).unwrap())
                    .unwrap();
            Vector {
                name: p.file_stem().unwrap().to_string_lossy().into_owned(),
                wire: hex::decode(hex).unwrap(),
                meta,
            }
        })
        .collect()
}

/// The metadata field `key`, a hex string, as bytes.
pub fn hex_field(v: &Value, key: &str) -> Vec<u8> {
    hex::decode(v[key].as_str().unwrap()).unwrap()
}

/// A BER length at the front of `b`: (value, bytes used).
pub fn ber_len(b: &[u8]) -> (usize, usize) {
    match b[0] {
        n @ 0..=0x7F => (n as usize, 1),
        0x81 => (b[1] as usize, 2),
        0x82 => (((b[1] as usize) << 8) | b[2] as usize, 3),
        x => panic!("unexpected length byte {x:02X}"),
    }
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// What a decoder popped: an APDU (stream offset, bytes) or an error.
#[derive(Debug, PartialEq)]
pub enum Out<E> {
    /// An APDU: its stream offset and bytes.
    Apdu(u64, Vec<u8>),
    /// An error.
    Err(E),
}

/// Decodes `input` pushed in chunks of `chunk()` bytes (at least 1, at most what is left),
/// popping after every push, then finishes: everything the decoder gave, in order.
pub fn decode_chunked<R: Reassemble>(
    input: &[u8],
    mut chunk: impl FnMut() -> usize,
) -> Vec<Out<R::Error>> {
    let mut d = Decoder::<R>::new();
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(chunk().clamp(1, rest.len()));
        d.push(now);
        rest = later;
        drain(&mut d, &mut out);
    }
    d.finish();
    drain(&mut d, &mut out);
    out
}

fn drain<R: Reassemble>(d: &mut Decoder<R>, out: &mut Vec<Out<R::Error>>) {
    while let Some(r) = d.pop() {
        out.push(match r {
            Ok(apdu) => {
                let (offset, bytes) = R::parts(&apdu);
                Out::Apdu(offset, bytes.to_vec())
            }
            Err(e) => Out::Err(e),
        });
    }
}

/// [`decode_chunked`] with chunks of 1 to `max_chunk` bytes drawn from `rng`.
pub fn decode_in_chunks<R: Reassemble>(
    input: &[u8],
    rng: &mut Rng,
    max_chunk: usize,
) -> Vec<Out<R::Error>> {
    decode_chunked::<R>(input, || 1 + rng.below(max_chunk))
}

/// The fuzz targets' chunking property: `data` is a seed byte and a stream; decoding the
/// stream pushed in chunks of 1 to 64 bytes (drawn from the seed) gives exactly what decoding
/// it pushed at once gives. Returns the stream (empty when `data` is).
pub fn assert_chunking_invariant<R: Reassemble>(data: &[u8]) -> &[u8]
where
    R::Error: PartialEq + core::fmt::Debug,
{
    let Some((&seed, stream)) = data.split_first() else {
        return data;
    };
    let whole = decode_chunked::<R>(stream, || usize::MAX);
    let mut state = u32::from(seed) | 1;
    let chunked = decode_chunked::<R>(stream, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 64) as usize + 1
    });
    assert_eq!(whole, chunked);
    stream
}
