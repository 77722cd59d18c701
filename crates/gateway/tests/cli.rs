//! The command line as users and scripts see it: exit codes, messages, outputs (SPEC.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_smart-meter");
const EVN_KEY: &str = "825DC0D167DEEB63F49DAB4F31A86CC7";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn evn_capture() -> PathBuf {
    repo().join("config/demo/netz-noe-kaifa-ma309.hex")
}

fn smart_meter(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(dir)
        .args(args)
        .env_remove("SMART_METER_ENV")
        .env_remove("RUST_LOG")
        .output()
        .expect("run smart-meter")
}

fn config_dir(settings: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("settings.toml"), settings).unwrap();
    std::fs::copy(evn_capture(), dir.path().join("evn.hex")).unwrap();
    dir
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn profiles_are_listed_in_file_order() {
    let dir = config_dir("[default]\nlog = \"info\"\n[zeta]\n[alpha]\n");
    let o = smart_meter(dir.path(), &["profiles"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "zeta\nalpha\n");
}

#[test]
fn every_shipped_profile_passes_check_with_example_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = repo().join("config");
    copy_dir(&shipped, dir.path());
    std::fs::copy(
        shipped.join("secrets.example.toml"),
        dir.path().join(".secrets.toml"),
    )
    .unwrap();
    let o = smart_meter(dir.path(), &["profiles"]);
    let profiles = stdout(&o);
    for required in [
        "demo",
        "evn",
        "ksm_west",
        "t210",
        "wiener_netze",
        "kamstrup_403",
        "mqtt_ingest",
    ] {
        assert!(
            profiles.lines().any(|l| l == required),
            "profile {required} missing"
        );
    }
    for p in profiles.lines() {
        let o = smart_meter(dir.path(), &["--env", p, "check"]);
        assert_eq!(o.status.code(), Some(0), "profile {p}: {}", stderr(&o));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[test]
fn unknown_profile_is_an_error_listing_the_profiles() {
    let dir = config_dir("[one]\n[two]\n");
    let o = smart_meter(dir.path(), &["--env", "three", "check"]);
    assert_eq!(o.status.code(), Some(78));
    let e = stderr(&o);
    assert!(e.contains("unknown profile \"three\""), "{e}");
    assert!(e.contains("one, two"), "{e}");
}

#[test]
fn malformed_settings_give_one_line_naming_the_file() {
    let dir = config_dir("[demo\nsources = 1\n");
    let o = smart_meter(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(78));
    let e = stderr(&o);
    assert!(e.contains("settings.toml is not valid TOML"), "{e}");
    assert!(!e.contains("panicked") && !e.contains("backtrace"), "{e}");
    assert_eq!(
        e.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{e}"
    );
}

#[test]
fn check_reports_every_problem_with_its_key_path() {
    let dir = config_dir(
        r#"
[demo.sources.meter]
protocol = "mbus-dlms"
serial = { port = "/dev/ttyUSB0", baud = 2400, data_bits = 9 }
key = "36C66639E48A8CA4D6BC8B282A793BB"

[demo.sources.other]
protocol = "mbus-dlms"
file = "evn.hex"
kye = "36C66639E48A8CA4D6BC8B282A793BBB"

[demo.sinks.out]
type = "jsonl"
pth = "x"
"#,
    );
    let o = smart_meter(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(78));
    let e = stderr(&o);
    assert!(
        e.contains("sources.meter.key: expected 32 hex digits, got 31"),
        "{e}"
    );
    assert!(
        e.contains("sources.meter.serial.data_bits: must be 5 to 8, got 9"),
        "{e}"
    );
    assert!(e.contains("kye"), "{e}");
    assert!(e.contains("sinks.out") && e.contains("pth"), "{e}");
    assert!(e.contains("settings.toml"), "the file is named: {e}");
    assert!(!e.contains("36C66639"), "keys never appear in errors: {e}");
}

#[test]
fn a_missing_key_says_where_secrets_go() {
    let dir = config_dir("[demo.sources.meter]\nprotocol = \"mbus-dlms\"\nfile = \"evn.hex\"\n[demo.sinks.c]\ntype = \"console\"\n");
    let o = smart_meter(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(78));
    let e = stderr(&o);
    assert!(e.contains("sources.meter.key"), "{e}");
    assert!(
        e.contains(".secrets.toml") && e.contains("SMART_METER_SOURCES__METER__KEY"),
        "{e}"
    );
}

#[test]
fn secrets_file_and_environment_are_merged_over_settings() {
    let dir = config_dir("[demo.sources.meter]\nprotocol = \"mbus-dlms\"\nfile = \"evn.hex\"\n[demo.sinks.c]\ntype = \"console\"\n");
    std::fs::write(
        dir.path().join(".secrets.toml"),
        format!("[demo.sources.meter]\nkey = \"{EVN_KEY}\"\n"),
    )
    .unwrap();
    let o = smart_meter(dir.path(), &["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // An all-digit key in the environment stays a string (SPEC: hex keys stay strings).
    std::fs::remove_file(dir.path().join(".secrets.toml")).unwrap();
    let o = Command::new(BIN)
        .arg("--config")
        .arg(dir.path())
        .arg("check")
        .env(
            "SMART_METER_SOURCES__METER__KEY",
            "12345678901234567890123456789012",
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn decode_prints_reading_json_for_a_real_capture() {
    let o = Command::new(BIN)
        .args(["decode", "--protocol", "mbus-dlms", "--key", EVN_KEY])
        .arg(evn_capture())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<_> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["protocol"], "mbus-dlms");
    assert_eq!(v["meter"], "decode");
    assert!(v["values"]["1.0.1.8.0.255"]["value"].is_number(), "{v}");
    assert_eq!(v["values"]["1.0.1.8.0.255"]["unit"], "Wh");
}

#[test]
fn decode_with_the_wrong_key_names_the_decryption_stage() {
    let o = Command::new(BIN)
        .args([
            "decode",
            "--protocol",
            "mbus-dlms",
            "--key",
            "00000000000000000000000000000000",
        ])
        .arg(evn_capture())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(65));
    assert_eq!(stdout(&o), "", "garbage is never printed as a reading");
    let e = stderr(&o);
    assert!(e.starts_with("error: decryption: "), "{e}");
    assert!(e.contains("key"), "{e}");
}

#[test]
fn decode_of_garbage_exits_65() {
    let mut child = Command::new(BIN)
        .args(["decode", "--protocol", "mbus-dlms", "--key", EVN_KEY, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"68 12 34 16 00 11")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(65));
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
}

#[test]
fn decode_takes_protocol_and_key_from_a_source() {
    let dir = config_dir(&format!(
        "[demo.sources.evn]\nprotocol = \"mbus-dlms\"\nfile = \"evn.hex\"\nkey = \"{EVN_KEY}\"\n[demo.sinks.c]\ntype = \"console\"\n"
    ));
    let o = smart_meter(
        dir.path(),
        &[
            "decode",
            "--source",
            "evn",
            dir.path().join("evn.hex").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"meter\":\"evn\""));
}

/// A config folder whose settings may name `@@OUT@@`, replaced by a file in that folder.
fn config_with_out(settings: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = config_dir("");
    let out = dir.path().join("out/readings.jsonl");
    std::fs::write(
        dir.path().join("settings.toml"),
        settings.replace("@@OUT@@", out.to_str().unwrap()),
    )
    .unwrap();
    (dir, out)
}

#[test]
fn a_finite_replay_runs_to_the_end_and_exits_zero() {
    let (dir, out) = config_with_out(&format!(
        "[demo.sources.evn]\nprotocol = \"mbus-dlms\"\nfile = \"evn.hex\"\nkey = \"{EVN_KEY}\"\n\
         [demo.sinks.out]\ntype = \"jsonl\"\npath = \"@@OUT@@\"\n"
    ));
    let o = smart_meter(dir.path(), &["run"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).expect("jsonl output written");
    assert_eq!(text.lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(v["meter"], "evn");
}

#[test]
fn sigterm_stops_sources_flushes_sinks_and_exits_zero() {
    let (dir, out) = config_with_out(&format!(
        "[demo.sources.evn]\nprotocol = \"mbus-dlms\"\nfile = \"evn.hex\"\nkey = \"{EVN_KEY}\"\nloop = true\nspeed = \"max\"\npause = \"10ms\"\n\
         [demo.sinks.out]\ntype = \"jsonl\"\npath = \"@@OUT@@\"\n"
    ));
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no reading written"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.ends_with('\n'), "last line complete");
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("every line is a complete reading");
    }
}
