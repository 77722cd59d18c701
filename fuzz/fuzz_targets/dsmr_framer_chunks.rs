//! PROPERTY: feeding the same bytes in any chunking yields the same frames and errors, for the
//! plain framer and for the encrypted P1 framer (fixed test keys). The first 8 input bytes
//! choose the chunk sizes; small buffer limits reach the overflow paths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_dsmr::encrypted::Keys;
use proto_dsmr::{EncryptedFramer, Framer};

const KEY: [u8; 16] = *b"0123456789abcdef";
const AK: [u8; 16] = *b"fedcba9876543210";

fn chunks<'a>(stream: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes.get(i % sizes.len().max(1)).map_or(1, |&s| usize::from(s % 97) + 1);
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        out.push(chunk);
        rest = tail;
        i += 1;
    }
    out
}

fn plain(chunks: &[&[u8]]) -> Vec<(u64, Result<Vec<u8>, proto_dsmr::Error>)> {
    let mut framer = Framer::with_max_len(300);
    let mut out = Vec::new();
    for c in chunks {
        framer.feed(c, |at, f| out.push((at, f.map(<[u8]>::to_vec))));
    }
    while let Some(f) = framer.finish() {
        let f = f.map(<[u8]>::to_vec);
        out.push((framer.last_offset(), f));
    }
    out
}

fn encrypted(chunks: &[&[u8]]) -> Vec<String> {
    let keys = Keys {
        encryption: &KEY,
        authentication: Some(&AK),
    };
    let mut framer = EncryptedFramer::with_max_len(300);
    let mut out = Vec::new();
    for c in chunks {
        framer.feed(c, &keys, |at, f| out.push(format!("{at} {f:?}")));
    }
    while let Some(f) = framer.finish(&keys) {
        out.push(format!("{} {f:?}", framer.last_offset()));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let (sizes, stream) = data.split_at(data.len().min(8));
    let split = chunks(stream, sizes);
    assert_eq!(plain(&split), plain(&[stream]));
    assert_eq!(encrypted(&split), encrypted(&[stream]));
});
