//! General-glo-ciphering (`0xDB`): the envelope encrypted push meters wrap their APDU in.
//!
//! DLMS UA 1000-2 (Green Book) ed. 9, "Cryptographic protection", and the xDLMS APDU
//! definitions of IEC 62056-5-3 (`general-glo-ciphering ::= SEQUENCE { system-title OCTET
//! STRING, ciphered-content OCTET STRING }`). On the wire:
//!
//! ```text
//! DB | len(system title)=08 | system title (8) | BER length L | SC | FC (4, BE) | ciphertext | [tag (12)]
//! ```
//!
//! * SC, the security control byte (Green Book, table "Security control byte"):
//!   bits 0..3 security suite, bit 4 (0x10) authentication, bit 5 (0x20) encryption, bit 6
//!   (0x40) key set (unicast/broadcast), bit 7 (0x80) compression. Suites 0 and 1 both use
//!   AES-128-GCM for this envelope; suite 2 (AES-256) and compression are not supported.
//! * IV = system title ‖ FC (12 bytes). The GCM tag is truncated to 12 bytes.
//! * With authentication, AAD = SC ‖ AK (‖ plaintext for authentication-only frames).
//!
//! # Unauthenticated decryption
//! Austrian push meters send SC `0x20`/`0x21`: encrypted, no tag. GCM decryption without a
//! tag is AES-CTR with the counter block IV ‖ `00000002` (NIST SP 800-38D §7.2: the payload
//! starts at inc32(J0), J0 = IV ‖ `00000001`). The same path serves SC `0x30` frames when no
//! authentication key is configured. [`Decrypted::authenticated`] records which path was
//! taken; a wrong key on a tagless frame cannot be detected here, see
//! [`crate::looks_like_plaintext`].
//!
//! # Fuzzing
//! Under `cfg(fuzzing)` only the final tag comparison is skipped, so fuzzers reach the APDU
//! parser through authenticated frames.

use core::fmt;

use aes::Aes128;
use aes_gcm::aead::array::Array;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AeadInOut, AesGcm, KeyInit};
use ctr::cipher::{KeyIvInit, StreamCipher};

use crate::ber;
use crate::error::Error;

/// APDU tag of general-glo-ciphering (IEC 62056-5-3 COSEMpdu, `[219]`).
pub const TAG_GENERAL_GLO_CIPHERING: u8 = 0xDB;
/// Length of the system title (Green Book "System title": 3 manufacturer letters + 5 bytes).
pub const SYSTEM_TITLE_LEN: usize = 8;
/// Length of the GCM tag DLMS transmits (Green Book, AES-GCM with a 12-byte authentication tag).
pub const TAG_LEN: usize = 12;
/// Length of the security header: SC (1) + FC (4).
pub const SECURITY_HEADER_LEN: usize = 5;

/// Security control bit: the frame carries a GCM tag.
pub const SC_AUTHENTICATION: u8 = 0x10;
/// Security control bit: the payload is encrypted.
pub const SC_ENCRYPTION: u8 = 0x20;
/// Security control bit: the broadcast key set is used (not otherwise interpreted here).
pub const SC_KEY_SET: u8 = 0x40;
/// Security control bit: the payload is compressed (unsupported).
pub const SC_COMPRESSION: u8 = 0x80;

/// Largest BER length accepted for the ciphered content (a push is a few hundred bytes;
/// this bounds what a corrupted length field can make a framer wait for).
pub const MAX_CONTENT_LEN: usize = 0xFFFF;

/// Offsets of the fixed header fields.
mod field {
    pub const TITLE_LEN: usize = 1;
    pub const TITLE: core::ops::Range<usize> = 2..10;
    pub const LENGTH: usize = 10;
}

/// The keys of one meter. `Debug` never shows them.
#[derive(Clone, Copy)]
pub struct Keys<'a> {
    /// Global unicast encryption key (GUEK), 16 bytes.
    pub encryption: &'a [u8; 16],
    /// Global authentication key (GAK); `None` decrypts tagged frames without verifying.
    pub authentication: Option<&'a [u8; 16]>,
}

impl fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys")
            .field("encryption", &"<redacted>")
            .field("authentication", &self.authentication.map(|_| "<redacted>"))
            .finish()
    }
}

/// The result of [`decrypt_glo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The plaintext APDU (tag removed), normally starting with `0x0F`.
    pub plaintext: Vec<u8>,
    /// System title of the sender (3 letters manufacturer id + 5 bytes).
    pub system_title: [u8; 8],
    /// Frame counter (invocation counter).
    pub frame_counter: u32,
    /// Security control byte.
    pub security_control: u8,
    /// True only when a GCM tag was present and verified with the authentication key.
    pub authenticated: bool,
}

/// The parsed fixed part of a general-glo-ciphering APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    system_title: [u8; 8],
    /// Offset of SC.
    content_start: usize,
    /// Offset one past the APDU.
    end: usize,
}

fn parse_header(buf: &[u8]) -> Result<Header, Error> {
    match buf.first() {
        None => return Err(Error::Incomplete { needed: None }),
        Some(&TAG_GENERAL_GLO_CIPHERING) => {}
        Some(&actual) => {
            return Err(Error::UnexpectedTag {
                offset: 0,
                expected: TAG_GENERAL_GLO_CIPHERING,
                actual,
            })
        }
    }
    match buf.get(field::TITLE_LEN) {
        None => return Err(Error::Incomplete { needed: None }),
        Some(&8) => {}
        Some(&n) => {
            return Err(Error::BadLength {
                offset: field::TITLE_LEN,
                declared: usize::from(n),
                min: SYSTEM_TITLE_LEN,
                max: SYSTEM_TITLE_LEN,
            })
        }
    }
    let Some(title) = buf.get(field::TITLE) else {
        return Err(Error::Incomplete { needed: None });
    };
    let mut system_title = [0u8; 8];
    system_title.copy_from_slice(title);
    let (len, len_bytes) = ber::read_length(buf, field::LENGTH)?;
    if !(SECURITY_HEADER_LEN..=MAX_CONTENT_LEN).contains(&len) {
        return Err(Error::BadLength {
            offset: field::LENGTH,
            declared: len,
            min: SECURITY_HEADER_LEN,
            max: MAX_CONTENT_LEN,
        });
    }
    let content_start = field::LENGTH.saturating_add(len_bytes);
    // A tagged frame must at least hold the tag (checked as soon as SC is buffered).
    if let Some(&sc) = buf.get(content_start) {
        let min = SECURITY_HEADER_LEN.saturating_add(TAG_LEN);
        if sc & SC_AUTHENTICATION != 0 && len < min {
            return Err(Error::BadLength {
                offset: field::LENGTH,
                declared: len,
                min,
                max: MAX_CONTENT_LEN,
            });
        }
    }
    Ok(Header {
        system_title,
        content_start,
        end: content_start.saturating_add(len),
    })
}

/// Length of the complete general-glo-ciphering APDU at the start of `buf`.
///
/// Accepts the BER length forms short, `0x81`, `0x82` and `0x83`.
///
/// # Errors
/// * [`Error::Incomplete`] when more bytes are needed (never a hard error for that);
/// * [`Error::UnexpectedTag`] when `buf` does not start with `0xDB`;
/// * [`Error::BadLength`] / [`Error::BadLengthForm`] for an impossible system-title length
///   or content length.
pub fn check_glo(buf: &[u8]) -> Result<usize, Error> {
    let header = parse_header(buf)?;
    if buf.len() < header.end {
        return Err(Error::Incomplete {
            needed: header.end.checked_sub(buf.len()),
        });
    }
    Ok(header.end)
}

fn iv(system_title: &[u8; 8], frame_counter: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    let (title, fc) = iv.split_at_mut(SYSTEM_TITLE_LEN);
    title.copy_from_slice(system_title);
    fc.copy_from_slice(&frame_counter.to_be_bytes());
    iv
}

/// The GCM keystream applied in place: AES-CTR from counter block IV ‖ `00000002`.
fn apply_gcm_keystream(key: &[u8; 16], iv: &[u8; 12], data: &mut [u8]) {
    let mut counter = [0u8; 16];
    let (nonce, ctr) = counter.split_at_mut(12);
    nonce.copy_from_slice(iv);
    ctr.copy_from_slice(&2u32.to_be_bytes());
    let mut cipher = ctr::Ctr32BE::<Aes128>::new(&Array::from(*key), &Array::from(counter));
    cipher.apply_keystream(data);
}

/// The 12-byte GCM tag over `plaintext` encrypted with `key`/`iv` and the given AAD.
fn gcm_tag(key: &[u8; 16], iv: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> [u8; TAG_LEN] {
    let cipher = AesGcm::<Aes128, U12, U12>::new(&Array::from(*key));
    let mut buf = plaintext.to_vec();
    let mut out = [0u8; TAG_LEN];
    // Encryption only fails for inputs beyond 2^36 bytes, which the length checks exclude;
    // a failure then yields an all-zero tag, which cannot verify a real frame.
    if let Ok(tag) =
        cipher.encrypt_inout_detached(&Array::from(*iv), aad, buf.as_mut_slice().into())
    {
        out.copy_from_slice(tag.as_slice());
    }
    out
}

/// Constant-time tag comparison; the only check `cfg(fuzzing)` bypasses.
fn tags_match(expected: &[u8; TAG_LEN], actual: &[u8]) -> bool {
    if cfg!(fuzzing) {
        return true;
    }
    actual.len() == TAG_LEN
        && expected
            .iter()
            .zip(actual)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

fn aad(security_control: u8, ak: &[u8; 16], plaintext: Option<&[u8]>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(17usize.saturating_add(plaintext.map_or(0, <[u8]>::len)));
    aad.push(security_control);
    aad.extend_from_slice(ak);
    if let Some(p) = plaintext {
        aad.extend_from_slice(p);
    }
    aad
}

/// Checks that the crate can process `security_control`.
fn check_security_control(sc: u8) -> Result<(), Error> {
    let suite = sc & 0x0F;
    if sc & SC_COMPRESSION != 0 || suite > 1 || sc & (SC_AUTHENTICATION | SC_ENCRYPTION) == 0 {
        return Err(Error::Unsupported(sc));
    }
    Ok(())
}

/// Decrypts the general-glo-ciphering APDU at the start of `apdu`.
///
/// * SC `0x20`/`0x21` (no tag): the GCM keystream is applied (AES-CTR from counter block
///   IV ‖ `00000002`, IV = system title ‖ FC); `authenticated = false`.
/// * SC `0x30`/`0x31` (12-byte tag): with an authentication key the tag is verified (AAD =
///   SC ‖ AK); without one the payload is decrypted the same CTR way and
///   `authenticated = false`.
/// * SC `0x10`/`0x11` (authentication only): the payload is plaintext; the tag (AAD = SC ‖
///   AK ‖ plaintext) is verified when an authentication key is given.
///
/// Returns the decrypted APDU and the number of bytes consumed from `apdu`.
///
/// # Errors
/// Everything [`check_glo`] returns, [`Error::Unsupported`] for an unsupported security
/// control byte and [`Error::AuthenticationFailed`] when the tag does not verify.
pub fn decrypt_glo(apdu: &[u8], keys: &Keys) -> Result<(Decrypted, usize), Error> {
    let header = parse_header(apdu)?;
    let end = check_glo(apdu)?;
    let content = apdu.get(header.content_start..end).unwrap_or(&[]);
    let Some((sh, payload)) = content.split_first_chunk::<SECURITY_HEADER_LEN>() else {
        return Err(Error::BadLength {
            offset: field::LENGTH,
            declared: content.len(),
            min: SECURITY_HEADER_LEN,
            max: MAX_CONTENT_LEN,
        });
    };
    let [sc, fc @ ..] = *sh;
    let frame_counter = u32::from_be_bytes(fc);
    check_security_control(sc)?;
    let iv = iv(&header.system_title, frame_counter);

    let tagged = sc & SC_AUTHENTICATION != 0;
    let (body, tag) = if tagged {
        payload.split_at(payload.len().saturating_sub(TAG_LEN))
    } else {
        (payload, &[][..])
    };
    let mut plaintext = body.to_vec();
    let encrypted = sc & SC_ENCRYPTION != 0;
    if encrypted {
        apply_gcm_keystream(keys.encryption, &iv, &mut plaintext);
    }
    let authenticated = match (tagged, keys.authentication) {
        (true, Some(ak)) => {
            let expected = if encrypted {
                gcm_tag(keys.encryption, &iv, &aad(sc, ak, None), &plaintext)
            } else {
                gcm_tag(keys.encryption, &iv, &aad(sc, ak, Some(&plaintext)), &[])
            };
            if !tags_match(&expected, tag) {
                return Err(Error::AuthenticationFailed);
            }
            true
        }
        _ => false,
    };
    Ok((
        Decrypted {
            plaintext,
            system_title: header.system_title,
            frame_counter,
            security_control: sc,
            authenticated,
        },
        end,
    ))
}

/// Builds a general-glo-ciphering APDU around `plaintext` (the inverse of [`decrypt_glo`]),
/// for tests, fuzzing round trips and synthetic vectors.
///
/// # Errors
/// [`Error::Unsupported`] for an unsupported security control byte,
/// [`Error::MissingAuthenticationKey`] when SC asks for a tag and `keys` has no
/// authentication key, [`Error::BadLength`] when the APDU would be longer than
/// [`MAX_CONTENT_LEN`].
pub fn encrypt_glo(
    plaintext: &[u8],
    system_title: &[u8; 8],
    frame_counter: u32,
    security_control: u8,
    keys: &Keys,
) -> Result<Vec<u8>, Error> {
    let sc = security_control;
    check_security_control(sc)?;
    let tagged = sc & SC_AUTHENTICATION != 0;
    let encrypted = sc & SC_ENCRYPTION != 0;
    let iv = iv(system_title, frame_counter);
    let tag = if tagged {
        let ak = keys.authentication.ok_or(Error::MissingAuthenticationKey)?;
        Some(if encrypted {
            gcm_tag(keys.encryption, &iv, &aad(sc, ak, None), plaintext)
        } else {
            gcm_tag(keys.encryption, &iv, &aad(sc, ak, Some(plaintext)), &[])
        })
    } else {
        None
    };
    let content_len = SECURITY_HEADER_LEN
        .saturating_add(plaintext.len())
        .saturating_add(if tagged { TAG_LEN } else { 0 });
    if content_len > MAX_CONTENT_LEN {
        return Err(Error::BadLength {
            offset: field::LENGTH,
            declared: content_len,
            min: SECURITY_HEADER_LEN,
            max: MAX_CONTENT_LEN,
        });
    }
    let mut out = Vec::with_capacity(content_len.saturating_add(14));
    out.push(TAG_GENERAL_GLO_CIPHERING);
    out.push(8);
    out.extend_from_slice(system_title);
    ber::write_length(&mut out, content_len)?;
    out.push(sc);
    out.extend_from_slice(&frame_counter.to_be_bytes());
    let start = out.len();
    out.extend_from_slice(plaintext);
    if encrypted {
        if let Some(body) = out.get_mut(start..) {
            apply_gcm_keystream(keys.encryption, &iv, body);
        }
    }
    if let Some(tag) = tag {
        out.extend_from_slice(&tag);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::indexing_slicing,
        clippy::arithmetic_side_effects,
        clippy::panic
    )]
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn key(s: &str) -> [u8; 16] {
        unhex(s).try_into().unwrap()
    }

    // Netz Burgenland L+G E450 (vectors/hdlc-dlms/netzburgenland-lg-e450-1): the APDU inside
    // the HDLC frame after the LLC header, SC 0x30 with a 12-byte tag.
    const BURGENLAND: &str = "DB084C475A6772A9A1115E30002180F6DD28EACE53312148DF2C473548E4B376\
        D8278D79C674757149145C310C9B9559049069F4574268F5E6E304A15B901BDADA13425C50ACBF3A91C0\
        94CCD6AE5F73688F119119F357AC0037620EE6CB204CF0634EB6F015A6FFAE";
    const BURGENLAND_EK: &str = "34743677397A24432646294A404E6352";
    const BURGENLAND_AK: &str = "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF";
    const BURGENLAND_PLAIN: &str = "0F002180FC0C07E7031C02130B14FF800000020E1200EC1200ED1200EC\
        12000012000412001A060000001D06000000000601DE7E8E0600001DC312019012003512012709083330\
        313337313831";

    #[test]
    fn decrypts_and_authenticates_a_tagged_frame() {
        let apdu = unhex(BURGENLAND);
        let (ek, ak) = (key(BURGENLAND_EK), key(BURGENLAND_AK));
        let keys = Keys {
            encryption: &ek,
            authentication: Some(&ak),
        };
        assert_eq!(check_glo(&apdu), Ok(apdu.len()));
        let (d, used) = decrypt_glo(&apdu, &keys).unwrap();
        assert_eq!(used, apdu.len());
        assert_eq!(d.plaintext, unhex(BURGENLAND_PLAIN));
        assert_eq!(&d.system_title, b"LGZ\x67\x72\xA9\xA1\x11");
        assert_eq!(d.frame_counter, 2_195_702);
        assert_eq!(d.security_control, 0x30);
        assert!(d.authenticated);
    }

    #[test]
    fn tagged_frame_without_auth_key_decrypts_unauthenticated() {
        let apdu = unhex(BURGENLAND);
        let ek = key(BURGENLAND_EK);
        let (d, _) = decrypt_glo(
            &apdu,
            &Keys {
                encryption: &ek,
                authentication: None,
            },
        )
        .unwrap();
        assert_eq!(d.plaintext, unhex(BURGENLAND_PLAIN));
        assert!(!d.authenticated);
    }

    #[cfg(not(fuzzing))]
    #[test]
    fn tampered_tag_fails_authentication() {
        let mut apdu = unhex(BURGENLAND);
        let (ek, ak) = (key(BURGENLAND_EK), key(BURGENLAND_AK));
        let keys = Keys {
            encryption: &ek,
            authentication: Some(&ak),
        };
        let last = apdu.len() - 1;
        apdu[last] ^= 0x01;
        assert_eq!(decrypt_glo(&apdu, &keys), Err(Error::AuthenticationFailed));
    }

    #[cfg(not(fuzzing))]
    #[test]
    fn tampered_ciphertext_or_wrong_auth_key_fails_authentication() {
        let (ek, ak) = (key(BURGENLAND_EK), key(BURGENLAND_AK));
        let mut apdu = unhex(BURGENLAND);
        apdu[30] ^= 0x80;
        let keys = Keys {
            encryption: &ek,
            authentication: Some(&ak),
        };
        assert_eq!(decrypt_glo(&apdu, &keys), Err(Error::AuthenticationFailed));
        let wrong = [0u8; 16];
        let keys = Keys {
            encryption: &ek,
            authentication: Some(&wrong),
        };
        assert_eq!(
            decrypt_glo(&unhex(BURGENLAND), &keys),
            Err(Error::AuthenticationFailed)
        );
    }

    // Netz NÖ customer-interface document example (vectors/mbus-dlms/evn-netznoe-doc-kaifa-ma309):
    // both M-Bus segments' payloads joined, SC 0x20, no tag, length `81 F8`.
    #[test]
    fn decrypts_a_tagless_frame_with_the_gcm_keystream() {
        let wire = unhex(
            "68FAFA6853FF000167DB084B464D675000000981F8200000002388D5AB4F97515AAFC6B88D2F85DAA7A0E3C0C40D004535C397C9D037AB7DBDA3291076154448\
             94A1A0DD7E85F02D496CECD3FF46AF5FB3C9229CFE8F3EE4606AB2E1F409F36AAD2E50900A4396FC6C2E083F373233A69616950758BFC7D63A9E9B6E99E21B2C\
             BC2B934772CA51FD4D69830711CAB1F8CFF25F0A329337CBA51904F0CAED88D61968743C8454BA922EB00038182C22FE316D16F2A9F544D6F75D51A4E92A1C4E\
             F8AB19A2B7FEAA32D0726C0ED80229AE6C0F7621A4209251ACE2B2BC66FF0327A653BB686C756BE033C7A281F1D2A7E1FA31C3983E15F8FD16CC5787E6F51716\
             6814146853FF110167419A3CFDA44BE438C96F0E38BF83D98316",
        );
        let mut apdu = wire[9..254].to_vec();
        apdu.extend_from_slice(&wire[256 + 9..256 + 24]);
        let ek = key("36C66639E48A8CA4D6BC8B282A793BBB");
        let keys = Keys {
            encryption: &ek,
            authentication: None,
        };
        let (d, used) = decrypt_glo(&apdu, &keys).unwrap();
        assert_eq!(used, 260);
        assert_eq!(d.frame_counter, 0x23);
        assert!(!d.authenticated);
        assert_eq!(
            &d.plaintext[..16],
            &unhex("0F8006870E0C07E5091B01092F0F00FF")[..]
        );
        assert_eq!(d.plaintext.len(), 243);
        assert_eq!(&d.plaintext[231..], b"181220000009");
    }

    #[test]
    fn every_prefix_of_a_frame_is_incomplete_not_an_error() {
        let apdu = unhex(BURGENLAND);
        let ek = key(BURGENLAND_EK);
        let keys = Keys {
            encryption: &ek,
            authentication: None,
        };
        for n in 0..apdu.len() {
            assert!(
                matches!(check_glo(&apdu[..n]), Err(Error::Incomplete { .. })),
                "prefix {n}"
            );
            assert!(matches!(
                decrypt_glo(&apdu[..n], &keys),
                Err(Error::Incomplete { .. })
            ));
        }
        assert_eq!(
            check_glo(&apdu[..20]),
            Err(Error::Incomplete { needed: Some(85) })
        );
    }

    #[test]
    fn trailing_bytes_are_not_consumed() {
        let mut apdu = unhex(BURGENLAND);
        let n = apdu.len();
        apdu.extend_from_slice(&[0x7E, 0x00]);
        assert_eq!(check_glo(&apdu), Ok(n));
    }

    #[test]
    fn rejects_other_tags_and_bad_lengths() {
        assert_eq!(
            check_glo(&[0x0F, 0x00]),
            Err(Error::UnexpectedTag {
                offset: 0,
                expected: 0xDB,
                actual: 0x0F
            })
        );
        assert!(matches!(
            check_glo(&[0xDB, 0x07]),
            Err(Error::BadLength { offset: 1, .. })
        ));
        let mut short = vec![0xDB, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x04];
        assert!(matches!(
            check_glo(&short),
            Err(Error::BadLength { offset: 10, .. })
        ));
        short[10] = 0x80;
        assert!(matches!(
            check_glo(&short),
            Err(Error::BadLengthForm { offset: 10, .. })
        ));
        // Tagged but too short to hold the tag.
        let tagged = [
            0xDB, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x06, 0x30, 0, 0, 0, 1, 0,
        ];
        assert!(matches!(
            check_glo(&tagged),
            Err(Error::BadLength { min: 17, .. })
        ));
    }

    #[test]
    fn rejects_unsupported_security_control_bytes() {
        let ek = [0u8; 16];
        let keys = Keys {
            encryption: &ek,
            authentication: None,
        };
        for sc in [0x00, 0x01, 0x22, 0xA0, 0x40] {
            let apdu = [
                0xDB, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x06, sc, 0, 0, 0, 1, 0x0F,
            ];
            assert_eq!(
                decrypt_glo(&apdu, &keys),
                Err(Error::Unsupported(sc)),
                "{sc:02X}"
            );
        }
    }

    #[test]
    fn encrypt_then_decrypt_round_trips_for_every_supported_security_control() {
        let (ek, ak) = ([0x11u8; 16], [0x22u8; 16]);
        let keys = Keys {
            encryption: &ek,
            authentication: Some(&ak),
        };
        let title = *b"TST\x00\x01\x02\x03\x04";
        for sc in [0x10, 0x11, 0x20, 0x21, 0x30, 0x31, 0x70] {
            for len in [0usize, 1, 16, 200, 300] {
                let plain: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let apdu = encrypt_glo(&plain, &title, 77, sc, &keys).unwrap();
                let (d, used) = decrypt_glo(&apdu, &keys).unwrap();
                assert_eq!(used, apdu.len());
                assert_eq!(d.plaintext, plain);
                assert_eq!(d.frame_counter, 77);
                assert_eq!(d.authenticated, sc & SC_AUTHENTICATION != 0);
            }
        }
    }

    #[test]
    fn encrypting_the_burgenland_plaintext_reproduces_the_captured_apdu() {
        let (ek, ak) = (key(BURGENLAND_EK), key(BURGENLAND_AK));
        let keys = Keys {
            encryption: &ek,
            authentication: Some(&ak),
        };
        let apdu = encrypt_glo(
            &unhex(BURGENLAND_PLAIN),
            b"LGZ\x67\x72\xA9\xA1\x11",
            2_195_702,
            0x30,
            &keys,
        )
        .unwrap();
        assert_eq!(apdu, unhex(BURGENLAND));
    }

    #[test]
    fn tagged_encryption_needs_an_auth_key() {
        let ek = [0u8; 16];
        let keys = Keys {
            encryption: &ek,
            authentication: None,
        };
        assert_eq!(
            encrypt_glo(b"x", &[0; 8], 1, 0x30, &keys),
            Err(Error::MissingAuthenticationKey)
        );
    }

    #[test]
    fn debug_output_never_shows_keys() {
        let (ek, ak) = ([0xABu8; 16], [0xCDu8; 16]);
        let keys = Keys {
            encryption: &ek,
            authentication: Some(&ak),
        };
        let s = format!("{keys:?}");
        assert!(
            !s.contains("171") && !s.contains("AB") && !s.contains("205"),
            "{s}"
        );
        assert!(s.contains("redacted"));
    }
}
