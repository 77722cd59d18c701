//! Byte stuffing: unstuff(stuff(x)) == x, and stuffed bytes never contain a bare reserved
//! byte, so a stuffed frame body can never end or restart a frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_kmp::stuffing::{is_reserved, stuff, unstuff, ESCAPE};
use proto_kmp::{Direction, Frame};

fuzz_target!(|data: &[u8]| {
    let stuffed = stuff(data);
    assert!(stuffed.iter().all(|&b| b == ESCAPE || !is_reserved(b)));
    assert_eq!(unstuff(&stuffed, 0).as_deref(), Ok(data));

    // Whole frames too: the first two bytes as address and CID, the rest as data.
    if let [address, cid, rest @ ..] = data {
        let frame = Frame {
            direction: Direction::FromMeter,
            address: *address,
            cid: *cid,
            data: rest.to_vec(),
        };
        let wire = frame.emit();
        assert_eq!(Frame::parse(&wire).as_ref(), Ok(&frame));
    }
});
