//! Helpers shared by the Homie and Home Assistant integration tests: readings built from the
//! vector metadata in `src/homie/testdata/`.
#![allow(dead_code)]

use std::path::PathBuf;

use smart_meter_core::{Decimal, Key, MeterId, MeterTime, Obis, Reading, Sample, Unit};

/// A vector's name and the reading its `expected` values make.
pub struct Fixture {
    pub file: String,
    pub reading: Reading,
    /// (key, expected value as text: exact decimal or the string).
    pub expected: Vec<(Key, String)>,
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/homie/testdata")
}

/// Every fixture, each as a reading of a meter named after its position (`m0`, `m1`, …).
pub fn all() -> Vec<Fixture> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "fixtures missing in {}", dir().display());
    files
        .iter()
        .enumerate()
        .map(|(i, p)| load(p, &format!("m{i}")))
        .collect()
}

/// The reading of one fixture file.
pub fn load(path: &std::path::Path, meter: &str) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let protocol: &'static str = match v["transport"].as_str().unwrap() {
        "mbus-dlms" => "mbus-dlms",
        "hdlc-dlms" => "hdlc-dlms",
        "dsmr" | "dsmr-encrypted" => "dsmr",
        "kmp" => "kamstrup",
        other => panic!("unknown transport {other}"),
    };
    let mut reading = Reading::new(MeterId::new(meter).unwrap(), protocol);
    let mut expected = Vec::new();
    for (k, e) in v["expected"].as_object().unwrap() {
        let key = if let Some(rest) = k.strip_prefix("register ") {
            let id: u16 = rest.split(' ').next().unwrap().parse().unwrap();
            Key::Kmp(id)
        } else {
            Key::Obis(k.parse().unwrap())
        };
        let unit = e["unit"].as_str().map(|u| if u == "m3" { "m³" } else { u });
        let unit = unit.and_then(Unit::from_symbol);
        match &e["value"] {
            serde_json::Value::Number(n) => {
                let d: Decimal = n.to_string().parse().unwrap();
                expected.push((key.clone(), d.to_string()));
                reading.samples.push(Sample::number(key, d, unit));
            }
            serde_json::Value::String(s) => {
                // The dsmr source keeps the clock line's text and sets `meter_time` from it,
                // which the sinks publish as the clock.
                let clock = (protocol == "dsmr" && key == Key::Obis(Obis::CLOCK))
                    .then(|| dsmr_time(s))
                    .flatten();
                match clock {
                    Some(t) => {
                        reading.meter_time = Some(t);
                        expected.push((key.clone(), t.to_string()));
                    }
                    None => expected.push((key.clone(), s.clone())),
                }
                reading.samples.push(Sample::text(key, s.clone()));
            }
            other => panic!("{k}: unexpected value {other}"),
        }
    }
    Fixture {
        file: path.file_name().unwrap().to_string_lossy().into_owned(),
        reading,
        expected,
    }
}

/// `YYMMDDhhmmssX` with X = S (CEST, +02:00) or W (CET, +01:00).
fn dsmr_time(s: &str) -> Option<MeterTime> {
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<u8>().ok();
    let offset = match s.get(12..)? {
        "S" => 120,
        "W" => 60,
        _ => return None,
    };
    MeterTime::new(
        2000 + u16::from(n(0..2)?),
        n(2..4)?,
        n(4..6)?,
        n(6..8)?,
        n(8..10)?,
        n(10..12)?,
        None,
        Some(offset),
    )
}

/// The reading of the fixture file `name` (in `src/homie/testdata/`) for meter `meter`.
pub fn fixture(name: &str, meter: &str) -> Fixture {
    load(&dir().join(name), meter)
}

/// Broker-side helpers for the Mosquitto tests.
pub mod broker {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use smart_meter_testkit::{Collector, Received};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::task::JoinHandle;

    /// Hang guard for every wait (tests never assert on timing).
    pub const WAIT: Duration = Duration::from_secs(30);

    static NEXT: AtomicU64 = AtomicU64::new(0);

    /// A client id no other collector in this process uses.
    pub fn fresh_id(prefix: &str) -> String {
        format!(
            "{prefix}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Topic → last payload of `messages`, optionally only retained ones.
    pub fn last_values(messages: &[Received], retained_only: bool) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for m in messages {
            if retained_only && !m.retain {
                continue;
            }
            map.insert(m.topic.clone(), m.text());
        }
        map
    }

    /// What a newly connecting client gets as retained messages under `filter`, once `done`
    /// holds for it. A client that subscribed while the sink was still publishing sees only part
    /// of the retained state, so a fresh client tries again until `done` holds (bounded by
    /// [`WAIT`]).
    pub async fn retained_snapshot(
        url: &str,
        filter: &str,
        done: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> BTreeMap<String, String> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let c = Collector::start(url, &fresh_id("snapshot"), &[filter]).await;
            let ok = c
                .wait_until(Duration::from_secs(2), |m| done(&last_values(m, true)))
                .await;
            let snap = last_values(&c.messages(), true);
            c.stop().await;
            if ok {
                return snap;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "retained snapshot incomplete: {snap:#?}"
            );
        }
    }

    /// A TCP proxy in front of the broker whose connections can be cut without an MQTT
    /// DISCONNECT, so the broker publishes the client's last will.
    pub struct Proxy {
        port: u16,
        conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
        accept: JoinHandle<()>,
    }

    impl Proxy {
        /// Listens on a free port of 127.0.0.1 and forwards to `127.0.0.1:<target>`.
        pub async fn start(target: u16) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
            let list = conns.clone();
            let accept = tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    let task = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(("127.0.0.1", target)).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    list.lock().unwrap().push(task);
                }
            });
            Proxy {
                port,
                conns,
                accept,
            }
        }

        /// `mqtt://127.0.0.1:<proxy port>`.
        pub fn url(&self) -> String {
            format!("mqtt://127.0.0.1:{}", self.port)
        }

        /// Drops every open connection (both sockets close); new connections still work.
        pub fn cut(&self) {
            for t in self.conns.lock().unwrap().drain(..) {
                t.abort();
            }
        }
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.accept.abort();
            self.cut();
        }
    }
}
