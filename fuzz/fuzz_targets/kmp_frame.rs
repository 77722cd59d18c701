//! The KMP response decoder on arbitrary bytes: never panics; every frame it accepts re-emits
//! to the same frame; a session fed the same bytes in two chunkings reports the same events.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use proto_kmp::{Config, Direction, Frame, Framer, Response, Session};

fuzz_target!(|data: &[u8]| {
    // Whole input as one frame.
    if let Ok(frame) = Frame::parse(data) {
        let again = Frame::parse(&frame.emit());
        // With cfg(fuzzing) the CRC is not checked, so compare the parts, not the bytes.
        assert_eq!(again.as_ref().ok(), Some(&frame));
        if let Ok(response) = Response::parse(&frame) {
            for r in &response.registers {
                let _ = r.number();
                let _ = r.calendar();
                let _ = r.unit.symbol();
            }
            assert_eq!(Response::parse(&response.to_frame()).ok(), Some(response));
        }
    }

    // As a stream, in one piece and byte by byte.
    let mut whole = Framer::new(Direction::FromMeter);
    whole.push(data);
    let a: Vec<_> = std::iter::from_fn(|| whole.next_frame()).collect();
    let mut bytewise = Framer::new(Direction::FromMeter);
    let mut b = Vec::new();
    for &byte in data {
        bytewise.push(&[byte]);
        b.extend(std::iter::from_fn(|| bytewise.next_frame()));
    }
    assert_eq!(a, b);

    // A polling session answered with these bytes.
    let now = Instant::now();
    let mut session = Session::new(Config::new(vec![60, 68, 80, 86, 87, 89, 74, 1004, 1003]), now);
    let _ = session.poll_transmit(now);
    session.handle_bytes(data, now);
    let _ = session.poll_transmit(now);
    while session.poll_event().is_some() {}
});
