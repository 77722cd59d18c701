//! Fixed test keys. Arbitrary bytes as a general-glo-ciphering APDU must never panic, and
//! encrypt→decrypt must round-trip for every supported security control byte.
//! (Built with cfg(fuzzing), the tag comparison is bypassed; tampering is covered by tests.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use proto_dlms::{
    check_glo, decode_apdu, decrypt_glo, decrypt_glo_into, encrypt_glo, Keys, Scratch,
};

const EK: [u8; 16] = *b"0123456789ABCDEF";
const AK: [u8; 16] = *b"FEDCBA9876543210";
const SECURITY_CONTROLS: [u8; 6] = [0x10, 0x11, 0x20, 0x21, 0x30, 0x31];

fuzz_target!(|data: &[u8]| {
    let with_ak = Keys {
        encryption: &EK,
        authentication: Some(&AK),
    };
    let without_ak = Keys {
        encryption: &EK,
        authentication: None,
    };

    // One buffer and one scratch space for every decode, as the adapters keep one per meter.
    let mut buf = vec![0xA5; 7];
    let mut scratch = Scratch::new();
    for keys in [&with_ak, &without_ak] {
        let into = decrypt_glo_into(data, keys, &mut buf);
        match decrypt_glo(data, keys) {
            Ok((d, used)) => {
                assert_eq!(check_glo(data), Ok(used));
                assert!(used <= data.len());
                assert!(d.plaintext.len() < used);
                let (security, used_into) = into.expect("same result into a buffer");
                assert_eq!((buf.as_slice(), used_into), (d.plaintext.as_slice(), used));
                assert_eq!(security.authenticated, d.authenticated);
            }
            Err(e) => {
                let _ = (e.stage_name(), e.to_string());
                assert_eq!(into, Err(e));
                assert!(buf.is_empty(), "nothing left behind after an error");
            }
        }
        let _ = decode_apdu(data, Some(keys), &mut scratch);
    }

    // Round trip: first byte picks SC, next four the frame counter, the rest is plaintext.
    if let [sel, f0, f1, f2, f3, plain @ ..] = data {
        let sc = SECURITY_CONTROLS[usize::from(*sel) % SECURITY_CONTROLS.len()];
        let fc = u32::from_be_bytes([*f0, *f1, *f2, *f3]);
        let title = *b"FUZ\x00\x00\x00\x00\x01";
        let apdu = encrypt_glo(plain, &title, fc, sc, &with_ak).expect("short plaintext encrypts");
        assert_eq!(check_glo(&apdu), Ok(apdu.len()));
        let (d, used) = decrypt_glo(&apdu, &with_ak).expect("own APDU decrypts");
        assert_eq!(used, apdu.len());
        assert_eq!(d.plaintext, plain);
        assert_eq!(
            (d.frame_counter, d.security_control, d.system_title),
            (fc, sc, title)
        );
        assert_eq!(d.authenticated, sc & 0x10 != 0);
        let (d2, _) = decrypt_glo(&apdu, &without_ak).expect("decrypts without AK");
        assert_eq!(d2.plaintext, plain);
        assert!(!d2.authenticated);
    }
});
