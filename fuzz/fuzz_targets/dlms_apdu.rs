//! Arbitrary bytes as a plaintext APDU: data-notification, A-XDR body, entries under every
//! layout, block-transfer reassembly. Must never panic; parsed values must stay consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_dlms::{cosem, gbt, Data, Layout, Scratch};

fn walk(d: &Data) {
    if let Some(items) = d.elements() {
        // Elements were checked when parsed: iterating yields every one of them.
        assert_eq!(items.iter().count(), items.len());
        assert_eq!(items.iter().len(), items.len());
        items.iter().for_each(|item| walk(&item));
    }
    let _ = d.type_name();
}

fuzz_target!(|data: &[u8]| {
    let mut scratch = Scratch::new();
    if let Ok(n) = proto_dlms::parse_notification(data, &mut scratch) {
        assert!(proto_dlms::looks_like_plaintext(data));
        walk(&n.body);
        if let Some(dt) = n.date_time {
            let _ = dt.offset_minutes_east();
            assert_eq!(proto_dlms::DateTime::from_bytes(&dt.to_bytes()), dt);
        }
        let auto = cosem::entries(&n.body, None).expect("automatic recognition never fails");
        for e in &auto {
            let _ = e.leaf();
            if let Some(num) = e.number() {
                let _ = num.to_string();
            }
            let _ = e.obis_string();
        }
        for layout in Layout::ALL {
            if let Ok(entries) = cosem::entries(&n.body, Some(layout)) {
                assert_eq!(Layout::detect(&n.body).is_some(), true);
                entries.iter().for_each(|e| drop(e.leaf()));
            }
        }
        let _ = cosem::capture_objects(&n.body);
    }
    // The same bytes as an A-XDR value (into the scratch space the notification used, which
    // must not matter) and as a stream of block-transfer APDUs.
    let fresh = proto_dlms::axdr::parse(data, &mut Scratch::new())
        .map(|(d, used)| (format!("{d:?}"), used));
    match proto_dlms::axdr::parse(data, &mut scratch) {
        Ok((d, used)) => {
            assert!(used <= data.len());
            walk(&d);
            assert_eq!(
                fresh,
                Ok((format!("{d:?}"), used)),
                "a reused scratch decodes alike"
            );
        }
        Err(e) => assert_eq!(fresh, Err(e)),
    }
    // Reassembled twice: handing each message over, and keeping it in place.
    let mut r = gbt::Reassembler::with_limit(4096);
    let mut in_place = gbt::Reassembler::with_limit(4096);
    let mut rest = data;
    while let Ok(len) = gbt::check_block(rest) {
        assert!(len <= rest.len());
        let block = &rest[..len];
        match (r.push(block), in_place.push_in_place(block)) {
            (Ok(Some(apdu)), Ok(true)) => {
                assert_eq!(in_place.message(), Some(&apdu[..]));
                let _ = proto_dlms::parse_notification(&apdu, &mut scratch);
            }
            (Ok(None), Ok(false)) => {}
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("push {a:?}, push_in_place {b:?}"),
        }
        rest = &rest[len..];
    }
});
