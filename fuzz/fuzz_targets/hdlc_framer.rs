//! HDLC framer and reassembler: arbitrary bytes in arbitrary chunks never panic, give the same
//! output as feeding them at once, and every frame found re-emits to its own bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_hdlc::{frame, Framer, Reassembler};
use proto_stream::testing::assert_chunking_invariant;

fuzz_target!(|data: &[u8]| {
    let stream = assert_chunking_invariant::<Reassembler>(data);

    let mut framer = Framer::new();
    framer.push(stream);
    framer.finish();
    while let Some(r) = framer.pop() {
        if let Ok(f) = r {
            let mut again = Vec::new();
            frame::emit(
                f.segmented(),
                f.dst(),
                f.src(),
                f.control(),
                f.info(),
                &mut again,
            )
            .unwrap();
            // HCS/FCS are not compared under cfg(fuzzing): compare the header and the info.
            let bytes = f.as_bytes();
            let head = 3 + f.dst().as_bytes().len() + f.src().as_bytes().len() + 1;
            assert_eq!(again.len(), bytes.len());
            assert_eq!(again[..head], bytes[..head]);
            let n = bytes.len();
            assert_eq!(
                again[n - 3 - f.info().len()..n - 3],
                bytes[n - 3 - f.info().len()..n - 3]
            );
        }
    }
});
