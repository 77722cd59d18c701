//! Keys and meter ids per system title, so one source can serve several meters: frames from
//! many ESP8266 boxes arriving on one MQTT topic, or a bus with more than one meter.
//!
//! ```toml
//! [mqtt_ingest.sources.esp]
//! protocol = "mbus-dlms"
//! mqtt = { url = "mqtt://127.0.0.1:1883", topic = "sensors/+/raw" }
//! key = "36C66639E48A8CA4D6BC8B282A793BBB"          # fallback for unlisted meters
//! keys = { "5341475905E990F3" = "A89AE6C225E45130298B3CC3F4D23463" }
//! meters = { "4B464D6750000009" = "house", "5341475905E990F3" = "garage" }
//! ```
//!
//! Each ciphered APDU (general-glo-ciphering, `DB 08 <system title> …`, DLMS Green Book
//! "glo-ciphering") names its sender's 8-byte system title before the ciphertext. The frame is
//! decrypted with `keys[title]`, falling back to `key`, and its reading carries the meter id
//! `meters[title]`, falling back to the source's meter. Plaintext pushes have no system title
//! and always use the fallbacks. The title is written as 16 hex digits (case, spaces and `:`
//! do not matter); a title whose first bytes are printable, like the manufacturer code
//! `KFM` of `4B464D…`, is still given in hex.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::Deserialize;
use smart_meter_core::MeterId;

use crate::key::AesKey;

/// A DLMS system title (8 bytes), written as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SystemTitle(pub [u8; 8]);

impl SystemTitle {
    /// Parses 16 hex digits (whitespace and `:` ignored).
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let digits: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        if digits.len() != 16 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "system title {text:?}: expected 16 hex digits (8 bytes)"
            ));
        }
        let mut out = [0u8; 8];
        hex::decode_to_slice(&digits, &mut out)
            .map_err(|_| format!("system title {text:?}: expected 16 hex digits"))?;
        Ok(SystemTitle(out))
    }

    /// The system title of a general-glo-ciphering APDU (`DB 08 <8 bytes> …`), if `apdu` is
    /// one.
    pub fn of_apdu(apdu: &[u8]) -> Option<SystemTitle> {
        match apdu {
            [0xDB, 0x08, rest @ ..] => rest.get(..8)?.try_into().ok().map(SystemTitle),
            _ => None,
        }
    }
}

impl fmt::Display for SystemTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SystemTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemTitle({self})")
    }
}

impl<'de> Deserialize<'de> for SystemTitle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SystemTitle::parse(&s).map_err(de::Error::custom)
    }
}

/// The per-title keys and meter ids of a source, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct Titles {
    keys: BTreeMap<SystemTitle, AesKey>,
    meters: BTreeMap<SystemTitle, MeterId>,
}

impl Titles {
    /// From the config maps; meter ids that are not valid are left out (validation reports
    /// them).
    pub fn new(
        keys: &BTreeMap<SystemTitle, AesKey>,
        meters: &BTreeMap<SystemTitle, String>,
    ) -> Self {
        Titles {
            keys: keys.clone(),
            meters: meters
                .iter()
                .filter_map(|(t, m)| MeterId::new(m).ok().map(|m| (*t, m)))
                .collect(),
        }
    }

    /// The key and meter for `apdu`: by its system title, else the fallbacks.
    pub fn select<'a>(
        &'a self,
        apdu: &[u8],
        key: Option<&'a AesKey>,
        meter: &'a MeterId,
    ) -> (Option<&'a AesKey>, &'a MeterId) {
        match SystemTitle::of_apdu(apdu) {
            Some(t) => (
                self.keys.get(&t).or(key),
                self.meters.get(&t).unwrap_or(meter),
            ),
            None => (key, meter),
        }
    }

    /// Whether any per-title key is configured.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }
}

/// Problems of a `meters` map as (key, message).
pub fn validate_meters(meters: &BTreeMap<SystemTitle, String>) -> Vec<(String, String)> {
    meters
        .iter()
        .filter_map(|(t, m)| MeterId::new(m).err().map(|e| (format!("meters.{t}"), e)))
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn titles_parse_from_hex_and_come_from_ciphered_apdus_only() {
        let t = SystemTitle::parse("4b46 4d67:50000009").unwrap();
        assert_eq!(t.to_string(), "4B464D6750000009");
        assert!(SystemTitle::parse("4B464D675000000").is_err());
        assert!(SystemTitle::parse("KFMg50000009xxxx").is_err());
        let apdu = [
            0xDB, 0x08, 0x4B, 0x46, 0x4D, 0x67, 0x50, 0, 0, 0x09, 0x81, 0xF8,
        ];
        assert_eq!(SystemTitle::of_apdu(&apdu), Some(t));
        assert_eq!(SystemTitle::of_apdu(&apdu[..9]), None);
        assert_eq!(SystemTitle::of_apdu(&[0x0F, 0, 0, 0, 1]), None);
    }

    #[test]
    fn selection_falls_back_to_the_source_key_and_meter() {
        let t1 = SystemTitle::parse("4B464D6750000009").unwrap();
        let t2 = SystemTitle::parse("5341475905E990F3").unwrap();
        let k1 = AesKey([1; 16]);
        let fallback = AesKey([9; 16]);
        let source = MeterId::new("source").unwrap();
        let titles = Titles::new(
            &BTreeMap::from([(t1, k1.clone())]),
            &BTreeMap::from([(t2, "garage".to_string()), (t1, "Bad Id".to_string())]),
        );
        let apdu = |t: SystemTitle| {
            let mut a = vec![0xDB, 0x08];
            a.extend(t.0);
            a.push(0x00);
            a
        };
        let (k, m) = titles.select(&apdu(t1), Some(&fallback), &source);
        assert_eq!((k, m.as_str()), (Some(&k1), "source"));
        let (k, m) = titles.select(&apdu(t2), Some(&fallback), &source);
        assert_eq!((k, m.as_str()), (Some(&fallback), "garage"));
        let (k, m) = titles.select(&[0x0F], None, &source);
        assert_eq!((k, m.as_str()), (None, "source"));
        let problems = validate_meters(&BTreeMap::from([(t1, "Bad Id".to_string())]));
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "meters.4B464D6750000009");
    }

    use crate::mbus_dlms::test_support::{check_reading, feed, load, readings, Vector};
    use smart_meter_core::Stage;

    fn vector(link: &str, name: &str) -> Vector {
        load(link).into_iter().find(|v| v.name == name).unwrap()
    }

    fn title(v: &Vector) -> SystemTitle {
        SystemTitle::parse(v.meta["system_title_hex"].as_str().unwrap()).unwrap()
    }

    #[test]
    fn one_mbus_source_decodes_two_meters_with_their_own_keys_and_ids() {
        let kaifa = vector("mbus", "evn-netznoe-doc-kaifa-ma309");
        let t210 = vector("mbus", "evn-netznoe-sagemcom-t210d-1");
        assert_ne!(title(&kaifa), title(&t210));
        let config = crate::mbus_dlms::Config {
            keys: BTreeMap::from([
                (title(&kaifa), kaifa.key("key_hex").unwrap()),
                (title(&t210), t210.key("key_hex").unwrap()),
            ]),
            meters: BTreeMap::from([
                (title(&kaifa), "house".to_string()),
                (title(&t210), "garage".to_string()),
            ]),
            ..Default::default()
        };
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        let mut wire = t210.wire.clone();
        wire.extend(&kaifa.wire);
        wire.extend(&t210.wire);
        let source = MeterId::new("esp").unwrap();
        let rs = readings("two meters", feed(config.build(source).as_mut(), &wire));
        let ids: Vec<&str> = rs.iter().map(|r| r.meter.as_str()).collect();
        assert_eq!(ids, ["garage", "house", "garage"]);
        assert!(check_reading(&t210, &rs[0]) >= 10);
        assert!(check_reading(&kaifa, &rs[1]) >= 10);
        assert!(check_reading(&t210, &rs[2]) >= 10);
    }

    #[test]
    fn unlisted_meters_use_the_source_key_and_meter_and_without_a_key_fail_to_decrypt() {
        let kaifa = vector("mbus", "evn-netznoe-doc-kaifa-ma309");
        let t210 = vector("mbus", "evn-netznoe-sagemcom-t210d-1");
        let config = crate::mbus_dlms::Config {
            key: kaifa.key("key_hex"),
            keys: BTreeMap::from([(title(&t210), t210.key("key_hex").unwrap())]),
            meters: BTreeMap::from([(title(&t210), "garage".to_string())]),
            ..Default::default()
        };
        let mut wire = kaifa.wire.clone();
        wire.extend(&t210.wire);
        let rs = readings(
            "fallback",
            feed(config.build(MeterId::new("esp").unwrap()).as_mut(), &wire),
        );
        let ids: Vec<&str> = rs.iter().map(|r| r.meter.as_str()).collect();
        assert_eq!(ids, ["esp", "garage"]);
        check_reading(&kaifa, &rs[0]);
        check_reading(&t210, &rs[1]);

        // Only the T210-D's key and no fallback: the Kaifa frame cannot be decrypted.
        let config = crate::mbus_dlms::Config {
            keys: BTreeMap::from([(title(&t210), t210.key("key_hex").unwrap())]),
            ..Default::default()
        };
        assert!(config.validate().is_empty());
        let out = feed(config.build(MeterId::new("esp").unwrap()).as_mut(), &wire);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref().unwrap_err().stage, Stage::Decryption);
        assert_eq!(out[1].as_ref().unwrap().meter.as_str(), "esp");
    }

    #[test]
    fn one_hdlc_source_decodes_two_meters_with_their_own_keys_and_ids() {
        let iskra = vector("hdlc", "wienernetze-iskra-am550-ir");
        let lg = vector("hdlc", "wienernetze-lg-e450-ir");
        assert_ne!(title(&iskra), title(&lg));
        let config = crate::hdlc_dlms::Config {
            keys: BTreeMap::from([
                (title(&iskra), iskra.key("key_hex").unwrap()),
                (title(&lg), lg.key("key_hex").unwrap()),
            ]),
            meters: BTreeMap::from([
                (title(&iskra), "flat-1".to_string()),
                (title(&lg), "flat-2".to_string()),
            ]),
            ..Default::default()
        };
        assert!(config.validate().is_empty(), "{:?}", config.validate());
        let mut wire = iskra.wire.clone();
        wire.extend(&lg.wire);
        let rs = readings(
            "two meters",
            feed(config.build(MeterId::new("ir").unwrap()).as_mut(), &wire),
        );
        let ids: Vec<&str> = rs.iter().map(|r| r.meter.as_str()).collect();
        assert_eq!(ids, ["flat-1", "flat-2"]);
        assert!(check_reading(&iskra, &rs[0]) >= 5);
        assert!(check_reading(&lg, &rs[1]) >= 5);
    }

    #[test]
    fn keys_and_meters_are_read_from_config_tables() {
        let c: crate::mbus_dlms::Config = serde_json::from_value(serde_json::json!({
            "keys": { "4b464d67 50000009": "36C66639E48A8CA4D6BC8B282A793BBB" },
            "meters": { "4B464D6750000009": "house" },
        }))
        .unwrap();
        assert!(c.validate().is_empty());
        assert!(!format!("{c:?}").contains("36C6"));
        let bad = serde_json::from_value::<crate::mbus_dlms::Config>(serde_json::json!({
            "keys": { "KFM": "36C66639E48A8CA4D6BC8B282A793BBB" },
        }));
        assert!(bad.unwrap_err().to_string().contains("16 hex digits"));
        let c: crate::hdlc_dlms::Config = serde_json::from_value(serde_json::json!({
            "meters": { "4B464D6750000009": "Not Valid" },
        }))
        .unwrap();
        let keys: Vec<String> = c.validate().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["meters.4B464D6750000009"]);
    }
}
