//! The optional status endpoint (`status = { listen = "127.0.0.1:9100" }`).
//!
//! - `GET /health`: JSON with every source (state, readings, age of the last reading, errors per
//!   stage) and sink (connected, delivered, queued, dropped, lagged). HTTP 200 when healthy,
//!   503 when a source is waiting for its port/bridge, a running source has had no reading for
//!   `stale_after`, or a sink is disconnected — what container health checks want.
//! - `GET /metrics`: the same counters in the Prometheus text format.
//!
//! A deliberately tiny HTTP/1.1 responder (one request per connection, bounded request size and
//! time) keeps the gateway small; it is not a general web server.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use smart_meter_core::reading::push_json_str;
use smart_meter_core::stats::{now_ms, Registry, SourceState};
use smart_meter_core::Stage;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

/// A source without a reading for this long makes `/health` report unhealthy.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(300);

/// Serves requests on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, stale_after: Duration) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            if let Err(e) = handle(stream, &registry, stale_after).await {
                debug!(error = %e, "Status request failed.");
            }
        });
    }
}

async fn handle(
    mut stream: TcpStream,
    registry: &Registry,
    stale_after: Duration,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 8192 {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    if tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .is_err()
    {
        return Ok(());
    }
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
    let (status, ctype, body) = match (method, path) {
        ("GET", "/health") | ("HEAD", "/health") => {
            let (healthy, body) = health(registry, stale_after);
            (
                if healthy {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                },
                "application/json",
                body,
            )
        }
        ("GET", "/metrics") | ("HEAD", "/metrics") => (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics(registry),
        ),
        ("GET", _) | ("HEAD", _) => (
            "404 Not Found",
            "text/plain",
            "not found: try /health or /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

/// The `/health` document and whether everything is healthy.
pub fn health(registry: &Registry, stale_after: Duration) -> (bool, String) {
    let now = now_ms();
    let mut healthy = true;
    let mut out = String::from("{");
    let _ = write!(
        out,
        "\"uptime_s\":{},\"sources\":{{",
        now.saturating_sub(registry.started_ms) / 1000
    );
    for (i, (name, protocol, s)) in registry.sources.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, name);
        let state = s.state();
        let last = s.last_reading_ms.load(Ordering::Relaxed);
        let age_ms = (last > 0).then(|| now.saturating_sub(last));
        let reference = if last > 0 { last } else { registry.started_ms };
        let stale = state == SourceState::Running
            && now.saturating_sub(reference) > stale_after.as_millis() as u64;
        let ok = !(state == SourceState::Backoff
            || state == SourceState::Connecting && s.connects.load(Ordering::Relaxed) > 0
            || stale);
        healthy &= ok;
        let _ = write!(
            out,
            ":{{\"protocol\":\"{protocol}\",\"state\":\"{}\",\"healthy\":{ok},\"readings\":{},\"last_reading_age_s\":{},\"bytes\":{},\"connects\":{},\"errors\":{{",
            state.as_str(),
            s.readings.load(Ordering::Relaxed),
            age_ms.map_or("null".to_string(), |a| format!("{:.1}", a as f64 / 1000.0)),
            s.bytes.load(Ordering::Relaxed),
            s.connects.load(Ordering::Relaxed),
        );
        for (j, stage) in Stage::ALL.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let _ = write!(out, "\"{stage}\":{}", s.errors_at(*stage));
        }
        out.push_str("},\"last_error\":");
        match s.last_error.lock().ok().and_then(|g| g.clone()) {
            Some(e) => push_json_str(&mut out, &e),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    out.push_str("},\"sinks\":{");
    for (i, (name, kind, s)) in registry.sinks.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, name);
        let connected = s.connected.load(Ordering::Relaxed);
        healthy &= connected;
        let _ = write!(
            out,
            ":{{\"type\":\"{kind}\",\"connected\":{connected},\"delivered\":{},\"queued\":{},\"dropped\":{},\"retries\":{},\"lagged\":{},\"last_error\":",
            s.delivered.load(Ordering::Relaxed),
            s.queued.load(Ordering::Relaxed),
            s.dropped.load(Ordering::Relaxed),
            s.retries.load(Ordering::Relaxed),
            s.lagged.load(Ordering::Relaxed),
        );
        match s.last_error.lock().ok().and_then(|g| g.clone()) {
            Some(e) => push_json_str(&mut out, &e),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    let _ = write!(
        out,
        "}},\"status\":\"{}\"}}",
        if healthy { "ok" } else { "degraded" }
    );
    (healthy, out)
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `/metrics` document (Prometheus text format 0.0.4).
pub fn metrics(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    family(
        &mut out,
        "smart_meter_uptime_seconds",
        "gauge",
        "Seconds since the gateway started.",
    );
    let _ = writeln!(
        out,
        "smart_meter_uptime_seconds {}",
        now_ms().saturating_sub(registry.started_ms) / 1000
    );
    family(
        &mut out,
        "smart_meter_bus_published_total",
        "counter",
        "Readings published on the bus.",
    );
    let _ = writeln!(
        out,
        "smart_meter_bus_published_total {}",
        registry.bus.published.load(Ordering::Relaxed)
    );
    family(
        &mut out,
        "smart_meter_readings_total",
        "counter",
        "Readings decoded per source.",
    );
    for (n, p, s) in &registry.sources {
        let _ = writeln!(
            out,
            "smart_meter_readings_total{{source=\"{}\",protocol=\"{p}\"}} {}",
            label(n),
            s.readings.load(Ordering::Relaxed)
        );
    }
    family(
        &mut out,
        "smart_meter_decode_errors_total",
        "counter",
        "Frames rejected per source and pipeline stage.",
    );
    for (n, _, s) in &registry.sources {
        for stage in Stage::ALL {
            let _ = writeln!(
                out,
                "smart_meter_decode_errors_total{{source=\"{}\",stage=\"{stage}\"}} {}",
                label(n),
                s.errors_at(stage)
            );
        }
    }
    family(
        &mut out,
        "smart_meter_source_bytes_total",
        "counter",
        "Bytes received per source.",
    );
    for (n, _, s) in &registry.sources {
        let _ = writeln!(
            out,
            "smart_meter_source_bytes_total{{source=\"{}\"}} {}",
            label(n),
            s.bytes.load(Ordering::Relaxed)
        );
    }
    family(
        &mut out,
        "smart_meter_source_connects_total",
        "counter",
        "Times the port or connection was opened.",
    );
    for (n, _, s) in &registry.sources {
        let _ = writeln!(
            out,
            "smart_meter_source_connects_total{{source=\"{}\"}} {}",
            label(n),
            s.connects.load(Ordering::Relaxed)
        );
    }
    family(
        &mut out,
        "smart_meter_source_up",
        "gauge",
        "1 while the source is reading.",
    );
    for (n, _, s) in &registry.sources {
        let _ = writeln!(
            out,
            "smart_meter_source_up{{source=\"{}\"}} {}",
            label(n),
            u8::from(s.state() == SourceState::Running)
        );
    }
    family(
        &mut out,
        "smart_meter_source_last_reading_timestamp_seconds",
        "gauge",
        "Unix time of the last reading.",
    );
    for (n, _, s) in &registry.sources {
        let _ = writeln!(
            out,
            "smart_meter_source_last_reading_timestamp_seconds{{source=\"{}\"}} {:.3}",
            label(n),
            s.last_reading_ms.load(Ordering::Relaxed) as f64 / 1000.0
        );
    }
    for (metric, kind, help) in [
        (
            "smart_meter_sink_delivered_total",
            "counter",
            "Readings delivered per sink.",
        ),
        (
            "smart_meter_sink_retries_total",
            "counter",
            "Failed deliveries that were retried.",
        ),
        (
            "smart_meter_sink_dropped_total",
            "counter",
            "Readings a sink gave up on (queue overflow).",
        ),
        (
            "smart_meter_sink_lagged_total",
            "counter",
            "Readings a sink lost by falling behind the bus.",
        ),
        (
            "smart_meter_sink_queue_depth",
            "gauge",
            "Readings waiting in a sink's queue or spool.",
        ),
        (
            "smart_meter_sink_connected",
            "gauge",
            "1 while the sink's destination is reachable.",
        ),
    ] {
        family(&mut out, metric, kind, help);
        for (n, t, s) in &registry.sinks {
            let v = match metric {
                "smart_meter_sink_delivered_total" => s.delivered.load(Ordering::Relaxed) as i64,
                "smart_meter_sink_retries_total" => s.retries.load(Ordering::Relaxed) as i64,
                "smart_meter_sink_dropped_total" => s.dropped.load(Ordering::Relaxed) as i64,
                "smart_meter_sink_lagged_total" => s.lagged.load(Ordering::Relaxed) as i64,
                "smart_meter_sink_queue_depth" => s.queued.load(Ordering::Relaxed),
                _ => i64::from(s.connected.load(Ordering::Relaxed)),
            };
            let _ = writeln!(out, "{metric}{{sink=\"{}\",type=\"{t}\"}} {v}", label(n));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use smart_meter_core::stats::{SinkStats, SourceStats};

    fn registry() -> Registry {
        let src = Arc::new(SourceStats::default());
        src.set_state(SourceState::Running);
        src.record_reading();
        src.record_error(Stage::Checksum);
        let sink = Arc::new(SinkStats::default());
        sink.connected.store(true, Ordering::Relaxed);
        sink.delivered.store(7, Ordering::Relaxed);
        Registry {
            sources: vec![("evn".into(), "mbus-dlms", src)],
            sinks: vec![("out".into(), "jsonl", sink)],
            started_ms: now_ms(),
            ..Registry::default()
        }
    }

    #[test]
    fn health_reports_sources_and_sinks_as_json() {
        let (ok, body) = health(&registry(), DEFAULT_STALE_AFTER);
        assert!(ok);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "ok");
        assert_eq!(v["sources"]["evn"]["state"], "running");
        assert_eq!(v["sources"]["evn"]["readings"], 1);
        assert_eq!(v["sources"]["evn"]["errors"]["checksum"], 1);
        assert_eq!(v["sinks"]["out"]["delivered"], 7);
    }

    #[test]
    fn a_disconnected_sink_or_waiting_source_is_unhealthy() {
        let r = registry();
        r.sinks[0].2.connected.store(false, Ordering::Relaxed);
        assert!(!health(&r, DEFAULT_STALE_AFTER).0);
        let r = registry();
        r.sources[0].2.set_state(SourceState::Backoff);
        let (ok, body) = health(&r, DEFAULT_STALE_AFTER);
        assert!(!ok);
        assert!(body.contains("\"degraded\""));
    }

    #[test]
    fn metrics_are_prometheus_text() {
        let text = metrics(&registry());
        assert!(
            text.contains("smart_meter_readings_total{source=\"evn\",protocol=\"mbus-dlms\"} 1\n")
        );
        assert!(
            text.contains("smart_meter_decode_errors_total{source=\"evn\",stage=\"checksum\"} 1\n")
        );
        assert!(text.contains("smart_meter_sink_delivered_total{sink=\"out\",type=\"jsonl\"} 7\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            value
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("bad sample line {line}"));
        }
    }

    #[tokio::test]
    async fn serves_health_over_http() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(listener, Arc::new(registry()), DEFAULT_STALE_AFTER));
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.contains("\"status\":\"ok\""));
        task.abort();
    }
}
