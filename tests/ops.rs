//! Operations files: the systemd unit, the compose stack, the Grafana dashboard, the Dockerfile.
//! No container engine runs on the build machines, so the container parts are tested for what
//! can be checked without one.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn systemd_unit_verifies_clean() {
    assert!(
        have("systemd-analyze"),
        "systemd-analyze is needed (package systemd)"
    );
    let unit = std::fs::read_to_string(repo().join("etc/systemd/smart-meter@.service")).unwrap();
    for needed in [
        "Type=notify",
        "ExecStartPre=/usr/local/bin/smart-meter check",
        "Restart=on-failure",
        "WatchdogSec=",
        "SupplementaryGroups=dialout",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "StateDirectory=smart-meter",
        "ConfigurationDirectory=smart-meter",
        "Environment=SMART_METER_ENV=%i",
    ] {
        assert!(unit.contains(needed), "unit lacks {needed}");
    }
    assert!(
        !unit.contains("PrivateDevices=yes"),
        "would hide the serial port"
    );
    // Verify a copy whose binary path exists on this machine; the instance is a profile name.
    let dir = tempfile::tempdir().unwrap();
    let fake_bin = dir.path().join("smart-meter");
    std::fs::write(&fake_bin, "#!/bin/sh\nexit 0\n").unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&fake_bin)
        .status()
        .unwrap();
    let unit = unit.replace("/usr/local/bin/smart-meter", fake_bin.to_str().unwrap());
    let path = dir.path().join("smart-meter@.service");
    std::fs::write(&path, unit).unwrap();
    let instance = dir.path().join("smart-meter@evn.service");
    std::os::unix::fs::symlink(&path, &instance).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&instance)
        .env("SYSTEMD_LOG_LEVEL", "warning")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let problems: Vec<_> = text
        .lines()
        .filter(|l| l.contains("smart-meter@"))
        // The build machine has no `smart-meter` user; systemd creates nothing here.
        .filter(|l| !l.contains("user") && !l.contains("User"))
        .collect();
    assert!(problems.is_empty(), "systemd-analyze verify: {text}");
}

#[test]
fn compose_file_is_valid_and_wires_the_stack() {
    let text = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let services = doc["services"].as_mapping().expect("services");
    for s in ["smart-meter", "mosquitto", "influxdb", "grafana"] {
        assert!(services.contains_key(s), "service {s}");
    }
    assert_eq!(
        doc["services"]["smart-meter"]["environment"]["SMART_METER_ENV"],
        "compose"
    );
    if have("docker-compose") {
        let o = Command::new("docker-compose")
            .args(["-f", "docker-compose.yml", "config", "-q"])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "docker-compose config: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn grafana_dashboard_is_valid_and_queries_the_gateway_measurement() {
    let text =
        std::fs::read_to_string(repo().join("etc/grafana/dashboards/smart-meter.json")).unwrap();
    let dash: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = dash["panels"].as_array().unwrap();
    let titles: Vec<_> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Power", "Energy per day", "Voltages", "Currents"]);
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let q = t["query"].as_str().unwrap();
            assert!(q.contains("FROM \"smart_meter\""), "{q}");
        }
    }
    let ds =
        std::fs::read_to_string(repo().join("etc/grafana/provisioning/datasources/influxdb.yml"))
            .unwrap();
    let ds: serde_yaml::Value = serde_yaml::from_str(&ds).unwrap();
    assert_eq!(ds["datasources"][0]["uid"], "smart-meter-influx");
}

#[test]
fn dockerfile_builds_the_release_binary_and_runs_as_non_root() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(text.contains("cargo build --release --locked -p smart-meter"));
    assert!(text
        .contains("COPY --from=build /src/target/release/smart-meter /usr/local/bin/smart-meter"));
    assert!(text.contains("USER smart-meter"));
    let stages = text.lines().filter(|l| l.starts_with("FROM ")).count();
    assert_eq!(stages, 2, "multi-stage");
}
