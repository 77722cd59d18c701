//! `smart-meter-bench`: the measuring tool behind `scripts/bench` and `scripts/soak`. It makes
//! captures, plays meters and brokers, runs the release `smart-meter` binary as a child process
//! (under `/usr/bin/time -f %M` where peak RSS is wanted) and prints one `RESULT` line per
//! figure, which the scripts collect.
//!
//! ```text
//! smart-meter-bench capture dsmr|evn N FILE     N synthetic DSMR telegrams / N EVN M-Bus pushes
//! smart-meter-bench replay BIN dsmr|evn N jsonl|mqtt   file replay (speed = "max") to one sink
//! smart-meter-bench rss3 BIN N                  1 source (replay) → jsonl + MQTT + InfluxDB
//! smart-meter-bench ingest BIN METERS FRAMES    raw EVN frames over MQTT from METERS boxes
//! smart-meter-bench latency BIN COUNT           last byte on a pty → MQTT message, p50/p99
//! smart-meter-bench soak BIN N RATE             N telegrams at RATE/s → MQTT + InfluxDB + SQL
//! ```
//! Helpers (Mosquitto, InfluxDB 1.x, socat) run on free local ports in temporary folders.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use smart_meter_testkit::http::request;
use smart_meter_testkit::Mosquitto;
use smart_meter_tests::dsmr;
use smart_meter_tests::influxd::Influxd;
use smart_meter_tests::pty::PtyPair;
use smart_meter_tests::{free_port, repo, wait};
use tokio::sync::mpsc;

/// Broker settings for measuring, appended to the test broker's config (a later value of a
/// setting replaces an earlier one):
/// - the persistence database is saved every 1800 s, Mosquitto's default and what a deployed
///   broker does, not after every change as in the test brokers (`autosave_on_changes` with
///   `autosave_interval 1`, so that a killed broker remembers its sessions). Saved after every
///   change, the broker rewrites and fsyncs its whole database once per message it takes from
///   the gateway, handles one message per save, and the figures measured the disk (200–3,900
///   messages/s on the build machine, depending on the disk's other load) instead of the
///   gateway;
/// - the counting subscriber must not lose messages to Mosquitto's per-client queue limit
///   (1000 by default) or wait for its inflight limit.
const BENCH_BROKER: &str = "autosave_interval 1800\nautosave_on_changes false\n\
                            max_queued_messages 0\nmax_inflight_messages 0";

/// The EVN (Netz NÖ) Kaifa MA309 push of the M-Bus vectors and its published key.
fn evn_frame() -> (Vec<u8>, String) {
    let base = repo().join("crates/proto/mbus/vectors/evn-netznoe-doc-kaifa-ma309");
    let hex: String = std::fs::read_to_string(base.with_extension("hex"))
        .expect("the EVN vector")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.with_extension("json")).unwrap())
            .unwrap();
    let key = meta["key_hex"].as_str().expect("key_hex").to_string();
    (hex_decode(&hex), key)
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

fn capture(kind: &str, n: u64, path: &Path) -> Result<u64> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    match kind {
        "dsmr" => {
            for i in 0..n {
                f.write_all(&dsmr::telegram(i))?;
            }
        }
        "evn" => {
            let (frame, _) = evn_frame();
            for _ in 0..n {
                f.write_all(&frame)?;
            }
        }
        other => bail!("unknown capture kind {other}"),
    }
    f.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// The source table for a capture of `kind`.
fn replay_source(kind: &str, file: &Path) -> String {
    let mut s = format!(
        "protocol = \"{}\"\nfile = \"{}\"\nspeed = \"max\"\n",
        if kind == "evn" { "mbus-dlms" } else { "dsmr" },
        file.display()
    );
    if kind == "evn" {
        s.push_str(&format!("key = \"{}\"\n", evn_frame().1));
    }
    s
}

fn write_config(dir: &Path, body: &str) {
    std::fs::write(
        dir.join("settings.toml"),
        format!("[bench]\nshutdown_grace = \"600s\"\n{body}"),
    )
    .expect("write settings.toml");
}

/// Runs the gateway under `/usr/bin/time`; the child and the file time writes to.
fn spawn_timed(bin: &Path, dir: &Path) -> Result<(Child, PathBuf)> {
    let time_out = dir.join("time.txt");
    let child = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M %U %S")
        .arg("-o")
        .arg(&time_out)
        .arg(bin)
        .arg("--config")
        .arg(dir)
        .arg("--env")
        .arg("bench")
        .arg("run")
        .env("RUST_LOG", "warn")
        // As a service runs it: a developer's RUST_BACKTRACE would make every error (each
        // failed connect while a server starts) capture a backtrace.
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("gateway.log"))?)
        .spawn()
        .context("/usr/bin/time (package time) runs the gateway")?;
    Ok((child, time_out))
}

/// What `/usr/bin/time` measured.
struct Timed {
    wall: f64,
    rss_kib: u64,
    /// User + system CPU seconds.
    cpu: f64,
}

fn time_result(path: &Path) -> Result<Timed> {
    let text = std::fs::read_to_string(path)?;
    let last = text.lines().last().unwrap_or_default();
    let f: Vec<&str> = last.split_whitespace().collect();
    if f.len() < 4 {
        bail!("unexpected /usr/bin/time output {last:?}");
    }
    Ok(Timed {
        wall: f[0].parse()?,
        rss_kib: f[1].parse()?,
        cpu: f[2].parse::<f64>()? + f[3].parse::<f64>()?,
    })
}

/// SIGTERM to the gateway, the only child of the `time` process `parent`.
fn terminate_child_of(parent: u32) {
    let _ = Command::new("pkill")
        .args(["-TERM", "-P", &parent.to_string()])
        .status();
}

fn wait_exit(child: &mut Child, limit: Duration) -> Result<()> {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("the gateway exited with {status}");
            }
            return Ok(());
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            bail!("the gateway did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count_lines(path: &Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

/// Counts messages under `filter` on the broker at `url` (QoS 1, persistent session).
async fn counter(url: &str, filter: &str) -> Arc<AtomicU64> {
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let mut o = MqttOptions::new(
        format!("bench-counter-{}", std::process::id()),
        "127.0.0.1",
        port,
    );
    o.set_clean_session(false);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 10_000);
    let n = Arc::new(AtomicU64::new(0));
    let (subscribed_tx, mut subscribed) = mpsc::channel(1);
    let filter = filter.to_string();
    tokio::spawn({
        let n = n.clone();
        async move {
            loop {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.try_send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(_))) => {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), subscribed.recv())
        .await
        .expect("the counter subscribes");
    n
}

async fn replay(bin: &Path, kind: &str, n: u64, sink: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("capture.bin");
    let bytes = capture(kind, n, &file)?;
    let out = dir.path().join("out.jsonl");
    let broker = (sink == "mqtt").then(|| Mosquitto::with_config(BENCH_BROKER));
    let sink_table = match &broker {
        None => format!("type = \"jsonl\"\npath = \"{}\"\n", out.display()),
        Some(b) => format!(
            "type = \"mqtt\"\nurl = \"{}\"\nqos = 1\nformat = \"json\"\nqueue_size = {}\n",
            b.url(),
            n + 1000
        ),
    };
    // The default bus (1024 readings): a sink that cannot keep up loses readings, and the
    // count check below fails the run.
    write_config(
        dir.path(),
        &format!(
            "[bench.sources.meter]\n{}[bench.sinks.out]\n{sink_table}",
            replay_source(kind, &file)
        ),
    );
    let received = match &broker {
        Some(b) => Some(counter(&b.url(), "smart-meter/meter").await),
        None => None,
    };
    let (mut child, time_out) = spawn_timed(bin, dir.path())?;
    tokio::task::block_in_place(|| wait_exit(&mut child, Duration::from_secs(1800)))?;
    let t = time_result(&time_out)?;
    let delivered = match &received {
        None => count_lines(&out),
        Some(r) => {
            let t0 = Instant::now();
            while r.load(Ordering::Relaxed) < n && t0.elapsed() < Duration::from_secs(120) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r.load(Ordering::Relaxed)
        }
    };
    // Every reading must arrive, also over MQTT: the MQTT sink keeps delivering for at most
    // 10 s after its input ended and counts the rest as dropped, and such a run measured
    // something other than the gateway.
    if delivered != n {
        bail!("{delivered} of {n} readings arrived");
    }
    println!(
        "RESULT replay {kind} -> {sink}: {delivered} of {n} readings ({bytes} bytes) delivered in {:.2} s wall = {:.0} readings/s; \
         {:.2} CPU-s = {:.0} readings per CPU-second; peak RSS {} KiB",
        t.wall,
        delivered as f64 / t.wall,
        t.cpu,
        delivered as f64 / t.cpu,
        t.rss_kib
    );
    Ok(())
}

async fn rss3(bin: &Path, n: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("capture.bin");
    capture("dsmr", n, &file)?;
    let broker = Mosquitto::with_config(BENCH_BROKER);
    let influx = tokio::task::block_in_place(|| {
        let db = Influxd::started();
        db.query(None, "CREATE DATABASE \"bench\"");
        db
    });
    let out = dir.path().join("out.jsonl");
    write_config(
        dir.path(),
        &format!(
            "[bench.sources.meter]\n{}\
             [bench.sinks.file]\ntype = \"jsonl\"\npath = \"{}\"\n\
             [bench.sinks.broker]\ntype = \"mqtt\"\nurl = \"{}\"\nformat = \"json\"\n\
             [bench.sinks.influx]\ntype = \"influxdb\"\nurl = \"{}\"\ndb = \"bench\"\n",
            replay_source("dsmr", &file).replace("speed = \"max\"", "speed = \"realtime\""),
            out.display(),
            broker.url(),
            influx.url()
        ),
    );
    let received = counter(&broker.url(), "smart-meter/meter").await;
    let (mut child, time_out) = spawn_timed(bin, dir.path())?;
    tokio::task::block_in_place(|| wait_exit(&mut child, Duration::from_secs(3600)))?;
    let t = time_result(&time_out)?;
    let lines = count_lines(&out);
    let r = received.clone();
    wait::until(
        "every MQTT message arrives",
        Duration::from_secs(60),
        || r.load(Ordering::Relaxed) >= n,
    )
    .await;
    let points = tokio::task::block_in_place(|| {
        influx.rows(
            "bench",
            "SELECT count(\"1.0.1.8.1.255\") FROM \"smart_meter\"",
        )
    });
    let stored = points
        .first()
        .and_then(|r| r.get(1))
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    println!(
        "RESULT rss 1 source (DSMR replay at 115200 baud, realtime) -> jsonl + mqtt + influxdb: {n} readings in {:.1} s, jsonl {lines}, mqtt {}, influxdb {stored}, peak RSS {} KiB",
        t.wall,
        received.load(Ordering::Relaxed),
        t.rss_kib
    );
    if lines != n || stored != n {
        bail!("not every reading arrived");
    }
    Ok(())
}

async fn ingest(bin: &Path, meters: u64, frames: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = Mosquitto::with_config(BENCH_BROKER);
    let (frame, key) = evn_frame();
    let payload = hex_upper(&frame);
    let out = dir.path().join("out.jsonl");
    write_config(
        dir.path(),
        &format!(
            "[bench.bus]\ncapacity = 16384\n[bench.sources.esp]\nprotocol = \"mbus-dlms\"\nkey = \"{key}\"\n\
             mqtt = {{ url = \"{}\", topic = \"sensors/+/raw\", qos = 1 }}\n\
             [bench.sinks.out]\ntype = \"jsonl\"\npath = \"{}\"\n",
            broker.url(),
            out.display()
        ),
    );
    let (mut child, time_out) = spawn_timed(bin, dir.path())?;
    // Wait until the source has subscribed: a probe frame comes back as a reading.
    let port: u16 = broker.port();
    let mut o = MqttOptions::new("bench-boxes", "127.0.0.1", port);
    o.set_max_packet_size(1 << 20, 1 << 20);
    o.set_inflight(1000);
    let (client, mut el) = AsyncClient::new(o, 100_000);
    tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let probe_out = out.clone();
    let t0 = Instant::now();
    loop {
        client
            .publish(
                "sensors/probe/raw",
                QoS::AtLeastOnce,
                false,
                payload.clone(),
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if count_lines(&probe_out) > 0 {
            break;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            bail!("the gateway's MQTT source never produced a reading");
        }
    }
    let base = count_lines(&out);
    let start = Instant::now();
    for _ in 0..frames {
        for m in 0..meters {
            client
                .publish(
                    format!("sensors/m{m:03}/raw"),
                    QoS::AtLeastOnce,
                    false,
                    payload.clone(),
                )
                .await?;
        }
        // One push per meter and round, as the meters send every few seconds; rounds back to
        // back here.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let want = base + meters * frames;
    wait::until(
        "every pushed frame becomes a reading",
        Duration::from_secs(600),
        || count_lines(&out) >= want,
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    terminate_child_of(child.id());
    tokio::task::block_in_place(|| wait_exit(&mut child, Duration::from_secs(120)))?;
    let rss = time_result(&time_out)?.rss_kib;
    println!(
        "RESULT ingest {meters} meters x {frames} EVN frames over MQTT (hex payloads) -> jsonl: {} readings in {secs:.1} s = {:.0} readings/s, peak RSS {rss} KiB",
        meters * frames,
        (meters * frames) as f64 / secs
    );
    Ok(())
}

/// The gateway binary with a given config, not timed.
fn spawn_plain(bin: &Path, dir: &Path) -> Result<Child> {
    Ok(Command::new(bin)
        .arg("--config")
        .arg(dir)
        .arg("--env")
        .arg("bench")
        .arg("run")
        .env("RUST_LOG", "warn")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("gateway.log"))?)
        .spawn()?)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn latency(bin: &Path, count: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let pty = PtyPair::new(dir.path());
    let broker = Mosquitto::with_config(BENCH_BROKER);
    let status = free_port();
    write_config(
        dir.path(),
        &format!(
            "status = {{ listen = \"127.0.0.1:{status}\" }}\n\
             [bench.sources.p1]\nprotocol = \"dsmr\"\nserial = {{ port = \"{}\" }}\n\
             [bench.sinks.broker]\ntype = \"mqtt\"\nurl = \"{}\"\nqos = 1\nformat = \"json\"\n",
            pty.port.display(),
            broker.url()
        ),
    );
    // The subscriber stamps each message as it arrives.
    let mut o = MqttOptions::new("bench-latency", "127.0.0.1", broker.port());
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut el) = AsyncClient::new(o, 1000);
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let (sub_tx, mut subscribed) = mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.subscribe("smart-meter/p1", QoS::AtMostOnce).await;
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = sub_tx.try_send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send((Instant::now(), p.payload.to_vec()));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), subscribed.recv())
        .await
        .context("the latency subscriber subscribes")?;
    let mut child = spawn_plain(bin, dir.path())?;
    // Ready when the source has opened the port.
    wait::until("the gateway opens the pty", Duration::from_secs(60), || {
        request(status, "GET", "/metrics").is_some_and(|(_, body)| {
            body.lines()
                .any(|l| l.starts_with("smart_meter_source_connects_total") && l.ends_with(" 1"))
        })
    })
    .await;
    let mut meter = pty.open_meter();
    let mut lat = Vec::new();
    for i in 0..count + 10 {
        let t = dsmr::telegram(i);
        meter.write_all(&t)?;
        let t0 = Instant::now();
        let (t1, payload) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .context("a reading arrives")?
            .context("subscriber alive")?;
        let v: serde_json::Value = serde_json::from_slice(&payload)?;
        let got = dsmr::index_of(&v);
        if got != i {
            bail!("expected telegram {i}, got {got}");
        }
        // The first ten warm up connections and caches.
        if i >= 10 {
            lat.push(t1.duration_since(t0).as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    tokio::task::block_in_place(|| wait_exit(&mut child, Duration::from_secs(60)))?;
    lat.sort_by(f64::total_cmp);
    println!(
        "RESULT latency last byte on pty -> MQTT message (DSMR telegram, QoS 1 sink, local Mosquitto): n={} p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
    Ok(())
}

/// (sink name → delivered, dropped, lagged) from `/metrics`.
fn sink_counters(status: u16) -> HashMap<String, [u64; 3]> {
    let mut out: HashMap<String, [u64; 3]> = HashMap::new();
    let Some((_, body)) = request(status, "GET", "/metrics") else {
        return out;
    };
    for line in body.lines() {
        let slot = if line.starts_with("smart_meter_sink_delivered_total{") {
            0
        } else if line.starts_with("smart_meter_sink_dropped_total{") {
            1
        } else if line.starts_with("smart_meter_sink_lagged_total{") {
            2
        } else {
            continue;
        };
        let name = line
            .split("sink=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("");
        let v = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.entry(name.to_string()).or_default()[slot] = v;
    }
    out
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

async fn soak(bin: &Path, n: u64, rate: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broker = Mosquitto::with_config(BENCH_BROKER);
    let influx = tokio::task::block_in_place(|| {
        let db = Influxd::started();
        db.query(None, "CREATE DATABASE \"soak\"");
        db
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let status = free_port();
    write_config(
        dir.path(),
        &format!(
            "status = {{ listen = \"127.0.0.1:{status}\" }}\n\
             [bench.sources.meter]\nprotocol = \"dsmr\"\ntcp = \"{}\"\n\
             [bench.sinks.mqtt]\ntype = \"mqtt\"\nurl = \"{}\"\nformat = \"json\"\n\
             [bench.sinks.influx]\ntype = \"influxdb\"\nurl = \"{}\"\ndb = \"soak\"\n\
             [bench.sinks.sql]\ntype = \"sql\"\nurl = \"sqlite://{}\"\n",
            listener.local_addr()?,
            broker.url(),
            influx.url(),
            dir.path().join("soak.db").display()
        ),
    );
    let received = counter(&broker.url(), "smart-meter/meter").await;
    let mut child = spawn_plain(bin, dir.path())?;
    let pid = child.id();
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(60), listener.accept())
        .await
        .context("the gateway connects to the meter")??;
    let samples = Arc::new(std::sync::Mutex::new(Vec::<(f64, u64, u64)>::new()));
    let start = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn({
        let samples = samples.clone();
        let sent = sent.clone();
        async move {
            loop {
                if let Some(kib) = rss_kib(pid) {
                    samples.lock().unwrap().push((
                        start.elapsed().as_secs_f64(),
                        sent.load(Ordering::Relaxed),
                        kib,
                    ));
                }
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    });
    // Paced in 10 ms steps.
    use tokio::io::AsyncWriteExt;
    let per_step = (rate / 100).max(1);
    let mut i = 0u64;
    let mut next = Instant::now();
    while i < n {
        let mut buf = Vec::with_capacity(per_step as usize * 1000);
        for _ in 0..per_step.min(n - i) {
            buf.extend_from_slice(&dsmr::telegram(i));
            i += 1;
        }
        conn.write_all(&buf).await?;
        sent.store(i, Ordering::Relaxed);
        next += Duration::from_millis(10);
        tokio::time::sleep_until(next.into()).await;
    }
    let fed = start.elapsed().as_secs_f64();
    let done = |c: &HashMap<String, [u64; 3]>| {
        ["mqtt", "influx", "sql"]
            .iter()
            .all(|s| c.get(*s).is_some_and(|v| v[0] + v[1] + v[2] >= n))
    };
    wait::until(
        "every sink delivered (or counted) every reading",
        Duration::from_secs(1800),
        || done(&sink_counters(status)),
    )
    .await;
    let counters = sink_counters(status);
    let drained = start.elapsed().as_secs_f64();
    sampler.abort();
    if let Some(kib) = rss_kib(pid) {
        samples.lock().unwrap().push((drained, n, kib));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    tokio::task::block_in_place(|| wait_exit(&mut child, Duration::from_secs(120)))?;
    let samples = samples.lock().unwrap().clone();
    let csv: String = samples
        .iter()
        .map(|(t, s, k)| format!("{t:.1},{s},{k}\n"))
        .collect();
    std::fs::write(
        "soak-rss.csv",
        format!("seconds,readings_sent,rss_kib\n{csv}"),
    )?;
    let first = samples.first().map_or(0, |s| s.2);
    let last = samples.last().map_or(0, |s| s.2);
    let max = samples.iter().map(|s| s.2).max().unwrap_or(0);
    // After the warm-up (first 10 %), to see whether it keeps growing.
    let settled: Vec<u64> = samples
        .iter()
        .filter(|s| s.1 >= n / 10)
        .map(|s| s.2)
        .collect();
    let (smin, smax) = (
        settled.iter().min().copied().unwrap_or(0),
        settled.iter().max().copied().unwrap_or(0),
    );
    println!(
        "RESULT soak {n} DSMR telegrams at {rate}/s over TCP -> mqtt + influxdb + sql(sqlite): fed in {fed:.0} s, drained at {drained:.0} s; \
         RSS first {first} KiB, last {last} KiB, max {max} KiB; after 10 % min {smin} / max {smax} KiB ({} samples, soak-rss.csv)",
        samples.len()
    );
    for (name, [d, dr, l]) in &counters {
        println!("RESULT soak sink {name}: delivered {d}, dropped {dr}, lagged {l}");
    }
    println!(
        "RESULT soak mqtt messages received by a subscriber: {}",
        received.load(Ordering::Relaxed)
    );
    Ok(())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T> {
    args.get(i)
        .with_context(|| format!("missing {what}"))?
        .parse()
        .map_err(|_| anyhow::anyhow!("bad {what}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let bin = || PathBuf::from(args.get(1).cloned().unwrap_or_default());
    match cmd {
        "capture" => {
            let n: u64 = arg(&args, 2, "N")?;
            let path = PathBuf::from(args.get(3).context("missing FILE")?);
            let bytes = capture(&args[1], n, &path)?;
            println!("{bytes} bytes");
        }
        "replay" => replay(&bin(), &args[2], arg(&args, 3, "N")?, &args[4]).await?,
        "rss3" => rss3(&bin(), arg(&args, 2, "N")?).await?,
        "ingest" => ingest(&bin(), arg(&args, 2, "METERS")?, arg(&args, 3, "FRAMES")?).await?,
        "latency" => latency(&bin(), arg(&args, 2, "COUNT")?).await?,
        "soak" => soak(&bin(), arg(&args, 2, "N")?, arg(&args, 3, "RATE")?).await?,
        _ => bail!("usage: see the module documentation of tests/bench/main.rs"),
    }
    Ok(())
}
