//! Arbitrary text as `settings.toml` (and, after a line `#--- secrets`, as `.secrets.toml`)
//! through the gateway's own loader and validation, for every profile it names and for one it
//! does not. Must never panic. Properties: a profile that loads has sources and sinks and a
//! bus capacity of at least 1; every problem has a message; an unknown profile is an error;
//! an encryption key that loaded is not in the settings' `Debug` output.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use smart_meter::config::{self, Settings};
use smart_meter_sources::ProtocolConfig;

/// One folder per fuzzing process (libFuzzer's `-jobs` run several), rewritten every input.
fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("smart-meter-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a temporary folder");
        d
    })
}

const SECRETS_MARK: &str = "\n#--- secrets\n";

fn check_loaded(s: &Settings, profile: &str, input: &str) {
    assert_eq!(s.profile, profile);
    assert!(!s.sources.is_empty(), "a loaded profile has sources");
    assert!(!s.sinks.is_empty(), "a loaded profile has sinks");
    assert!(s.bus.capacity >= 1);
    let debug = format!("{s:?}").to_lowercase();
    let input = input.to_lowercase();
    for source in &s.sources {
        let (key, auth_key) = match &source.protocol {
            ProtocolConfig::Dsmr(c) => (&c.key, &c.auth_key),
            ProtocolConfig::MbusDlms(c) => (&c.key, &c.auth_key),
            ProtocolConfig::HdlcDlms(c) => (&c.key, &c.auth_key),
            ProtocolConfig::Kamstrup(_) => (&None, &None),
        };
        let keys: Vec<&[u8; 16]> = key.iter().chain(auth_key.iter()).map(|k| k.bytes()).collect();
        for key in keys {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            // Only when the text appears nowhere else (a meter named like the key is legal).
            if input.matches(&hex).count() <= 1 {
                assert!(!debug.contains(&hex), "a key shows in Debug output");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (settings, secrets) = match text.split_once(SECRETS_MARK) {
        Some((a, b)) => (a, Some(b)),
        None => (&*text, None),
    };
    let dir = dir();
    std::fs::write(dir.join("settings.toml"), settings).expect("write settings.toml");
    let secrets_path = dir.join(".secrets.toml");
    match secrets {
        Some(s) => std::fs::write(&secrets_path, s).expect("write .secrets.toml"),
        None => {
            let _ = std::fs::remove_file(&secrets_path);
        }
    }

    let profiles = match config::profiles(dir) {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.message.is_empty());
            // Not TOML: loading any profile must say so, not panic.
            assert!(config::load(dir, "demo").is_err());
            return;
        }
    };
    for profile in profiles.iter().take(8) {
        match config::load(dir, profile) {
            Ok(s) => check_loaded(&s, profile, &text),
            Err(errors) => {
                assert!(!errors.is_empty(), "a failed load names its problems");
                for e in &errors {
                    assert!(!e.message.is_empty());
                    let _ = e.to_string();
                }
            }
        }
    }
    let unknown = "no-such-profile-\u{1F50E}";
    assert!(config::load(dir, unknown).is_err());
});
