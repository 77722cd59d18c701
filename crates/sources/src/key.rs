//! AES-128 keys from configuration, with redacted `Debug`.

use std::fmt;

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A 128-bit key (DLMS global unicast encryption key or authentication key), given in config as
/// 32 hex digits. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct AesKey(pub [u8; 16]);

impl AesKey {
    /// Parses 32 hex digits (spaces, `:` and `-` ignored). The error names what was wrong and
    /// never echoes the text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let digits: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':' && *c != '-')
            .collect();
        if let Some((i, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
            let _ = c;
            return Err(format!(
                "expected 32 hex digits, found a non-hex character at position {}",
                i + 1
            ));
        }
        if digits.len() != 32 {
            return Err(format!("expected 32 hex digits, got {}", digits.len()));
        }
        let mut out = [0u8; 16];
        hex::decode_to_slice(&digits, &mut out)
            .map_err(|_| "expected 32 hex digits".to_string())?;
        Ok(AesKey(out))
    }

    /// The key bytes.
    pub fn bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesKey(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for AesKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = AesKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("32 hex digits as a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AesKey, E> {
                AesKey::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<AesKey, E> {
                Err(E::custom(
                    "expected 32 hex digits as a quoted string, got a number",
                ))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<AesKey, E> {
                self.visit_u64(0)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<AesKey, E> {
                self.visit_u64(0)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_and_reports_length() {
        assert!(AesKey::parse("36C66639E48A8CA4D6BC8B282A793BBB").is_ok());
        assert!(AesKey::parse("36c6 6639 e48a 8ca4 d6bc 8b28 2a79 3bbb").is_ok());
        assert_eq!(
            AesKey::parse("36C66639E48A8CA4D6BC8B282A793BB").unwrap_err(),
            "expected 32 hex digits, got 31"
        );
        assert!(AesKey::parse("36C66639E48A8CA4D6BC8B282A793BBX")
            .unwrap_err()
            .contains("position 32"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = AesKey::parse("36C66639E48A8CA4D6BC8B282A793BBB").unwrap();
        assert!(!format!("{k:?}").contains("36"));
    }
}
