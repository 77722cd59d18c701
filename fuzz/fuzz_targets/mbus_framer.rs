//! M-Bus framer and reassembler: arbitrary bytes in arbitrary chunks never panic, give the same
//! output as feeding them at once, and every frame found re-emits to its own bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_mbus::{frame, Framer, Reassembler};
use proto_stream::testing::assert_chunking_invariant;

fuzz_target!(|data: &[u8]| {
    let stream = assert_chunking_invariant::<Reassembler>(data);

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
