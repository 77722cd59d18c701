//! M-Bus framer and reassembler: arbitrary bytes in arbitrary chunks never panic, give the same
//! output as feeding them at once, and every frame found re-emits to its own bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_mbus::{frame, Decoder, Framer};

#[derive(Debug, PartialEq)]
enum Out {
    Apdu(u64, Vec<u8>),
    Err(proto_mbus::Error),
}

fn decode(stream: &[u8], mut chunk: impl FnMut() -> usize) -> Vec<Out> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let (now, later) = rest.split_at(chunk().clamp(1, rest.len()));
        d.push(now);
        rest = later;
        while let Some(r) = d.pop() {
            out.push(r.map_or_else(Out::Err, |a| Out::Apdu(a.offset, a.bytes.to_vec())));
        }
    }
    d.finish();
    while let Some(r) = d.pop() {
        out.push(r.map_or_else(Out::Err, |a| Out::Apdu(a.offset, a.bytes.to_vec())));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let whole = decode(stream, || usize::MAX);
    let mut state = u32::from(seed) | 1;
    let chunked = decode(stream, || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 64) as usize + 1
    });
    assert_eq!(whole, chunked);

    let mut framer = Framer::new();
    framer.push(stream);
    framer.finish();
    while let Some(r) = framer.pop() {
        if let Ok(f) = r {
            if !f.overflowed() {
                let mut again = Vec::new();
                frame::emit(f.control(), f.address(), f.ci(), f.data(), &mut again).unwrap();
                // The checksum is not compared under cfg(fuzzing); compare the rest.
                let n = again.len();
                assert_eq!(again[..n - 2], f.as_bytes()[..n - 2]);
            }
        }
    }
});
