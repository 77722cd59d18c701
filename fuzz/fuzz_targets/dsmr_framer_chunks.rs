//! PROPERTY: the P1 framers (plain, and encrypted with a fixed key) yield the same telegrams and
//! errors for the same byte stream however it is chunked. The first input byte seeds the chunk
//! sizes; the rest is the stream. Each frame the plain framer yields is `/`…`!CRC` with nothing
//! before the `/`, and never longer than the buffer limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_dsmr::encrypted::Keys;
use proto_dsmr::{EncryptedFramer, Framer};

/// The key published with the Energienetze Steiermark capture (vectors/encrypted), so the
/// seed decrypts and the fuzzer starts from a real frame.
const KEY: [u8; 16] = [
    0xA8, 0xC7, 0x4F, 0x67, 0xEC, 0xA8, 0xEF, 0x9C, 0x55, 0xC4, 0x74, 0x3F, 0xF6, 0xF4, 0xF0, 0x31,
];
const MAX: usize = 256;

/// Splits `data` into chunks whose sizes cycle through 1..=`seed % 17 + 1`.
fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let cycle = usize::from(seed % 17) + 1;
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = (i % cycle + 1).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
        i += 1;
    }
    out
}

type Plain = Vec<Result<Vec<u8>, proto_dsmr::Error>>;

fn plain(parts: &[&[u8]]) -> Plain {
    let mut f = Framer::with_max_len(MAX);
    let mut out = Vec::new();
    for p in parts {
        f.feed(p, |r| out.push(r.map(<[u8]>::to_vec)));
    }
    while let Some(r) = f.finish() {
        out.push(r.map(<[u8]>::to_vec));
    }
    out
}

fn encrypted(parts: &[&[u8]]) -> Vec<String> {
    let keys = Keys { encryption: &KEY, authentication: None };
    let mut f = EncryptedFramer::with_max_len(1024);
    let mut out = Vec::new();
    for p in parts {
        f.feed(p, &keys, |r| out.push(format!("{r:?}")));
    }
    while let Some(r) = f.finish(&keys) {
        out.push(format!("{r:?}"));
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&seed, data)) = input.split_first() else { return };
    let whole = plain(&[data]);
    for frame in whole.iter().flatten() {
        assert_eq!(frame.first(), Some(&b'/'));
        assert!(frame.contains(&b'!'));
        assert!(frame.len() <= MAX);
    }
    assert_eq!(plain(&chunks(data, seed)), whole, "plain framer depends on chunking");
    let bytewise: Vec<&[u8]> = data.chunks(1).collect();
    assert_eq!(plain(&bytewise), whole);

    let e_whole = encrypted(&[data]);
    assert_eq!(encrypted(&chunks(data, seed)), e_whole, "encrypted framer depends on chunking");
});
