//! Test and benchmark kit of smart-meter: synthetic meters whose readings can be told apart, the
//! gateway run in-process from a real config folder, and the helper processes the fault
//! injection tests and benchmarks drive (socat pty pairs, a private InfluxDB 1.x).
//!
//! Every wait is bounded and only guards against hangs; nothing here asserts on timing.

pub mod dsmr;
/// The private InfluxDB 1.x lives in the shared test kit.
pub use smart_meter_testkit::influxd;
pub mod gateway;
pub mod proxy;
pub mod pty;
pub mod tcp;
pub mod wait;

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A TCP port that was free a moment ago (bound to `127.0.0.1:0` and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// Whether `cmd` is on `PATH`.
pub fn have(cmd: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The JSON objects of a `jsonl` output file, in file order (empty when it does not exist).
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad line {l:?}: {e}", path.display()))
        })
        .collect()
}

/// Writes `dir/settings.toml`.
pub fn write_settings(dir: &Path, toml: &str) {
    std::fs::write(dir.join("settings.toml"), toml).expect("write settings.toml");
}

/// A max-speed file replay in profile `t`: writes `bytes` as `dir/capture.bin` and a
/// `settings.toml` with a bus of `capacity` readings, the source `source` (`protocol` and any
/// `extra` TOML lines) replaying that file, and a `jsonl` sink `out`. Returns the jsonl path.
pub fn replay_to_jsonl(
    dir: &Path,
    capacity: usize,
    source: &str,
    protocol: &str,
    extra: &str,
    bytes: &[u8],
) -> PathBuf {
    std::fs::write(dir.join("capture.bin"), bytes).expect("write capture.bin");
    let out = dir.join("out.jsonl");
    write_settings(
        dir,
        &format!(
            "[t.bus]\ncapacity = {capacity}\n\
             [t.sources.{source}]\nprotocol = \"{protocol}\"\nfile = \"capture.bin\"\n\
             speed = \"max\"\n{extra}\
             [t.sinks.out]\ntype = \"jsonl\"\npath = \"{}\"\n",
            out.display()
        ),
    );
    out
}
