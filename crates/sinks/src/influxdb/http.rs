//! The write request: URL, headers and body for InfluxDB 1.x (`/write`) and 2.x
//! (`/api/v2/write`), and what an answer means for the batch.
//!
//! - 1.x: `POST <url>/write?db=<db>[&rp=<rp>]&precision=<n|u|ms|s>`, credentials as HTTP Basic
//!   authentication (never in the URL, so they cannot leak through logged URLs).
//! - 2.x: `POST <url>/api/v2/write?org=<org>&bucket=<bucket>&precision=<ns|us|ms|s>` with
//!   `Authorization: Token <token>`.
//! - Both: `Content-Type: text/plain; charset=utf-8`, `Accept: application/json`, and with gzip
//!   on `Content-Encoding: gzip` and the body compressed.
//!
//! Answers: 2xx is delivered. 400 and 422 (malformed point, field type conflict) and 413 (body
//! too large) mean the data itself is refused: the caller splits the batch to isolate the
//! refused points (writes are idempotent, so resending accepted points is harmless). Everything
//! else (network errors, timeouts, 5xx, 429, and also 401/403/404, which an operator can fix by
//! creating the user, token or database while the readings wait) is retried with backoff;
//! `Retry-After` is honoured.

use std::io::Write as _;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::{StatusCode, Url};

use super::line_protocol::Precision;

/// Which API and its parameters.
#[derive(Clone)]
pub enum Api {
    /// InfluxDB 1.x `/write`.
    V1 {
        /// Database.
        db: String,
        /// Retention policy.
        rp: Option<String>,
        /// User name and password for Basic authentication.
        credentials: Option<(String, Option<String>)>,
    },
    /// InfluxDB 2.x `/api/v2/write`.
    V2 {
        /// Organisation name or id.
        org: String,
        /// Bucket name or id.
        bucket: String,
        /// API token.
        token: String,
    },
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Api::V1 {
                db,
                rp,
                credentials,
            } => f
                .debug_struct("V1")
                .field("db", db)
                .field("rp", rp)
                .field("username", &credentials.as_ref().map(|c| &c.0))
                .field(
                    "password",
                    &credentials
                        .as_ref()
                        .and_then(|c| c.1.as_ref())
                        .map(|_| "<redacted>"),
                )
                .finish(),
            Api::V2 { org, bucket, .. } => f
                .debug_struct("V2")
                .field("org", org)
                .field("bucket", bucket)
                .field("token", &"<redacted>")
                .finish(),
        }
    }
}

/// What to do after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Written.
    Delivered,
    /// The points were refused; retrying the same body cannot succeed.
    Refused(String),
    /// A transient failure; try again after the backoff (or `after`, from `Retry-After`).
    Retry {
        /// What went wrong (no secrets).
        error: String,
        /// The server's `Retry-After`.
        after: Option<Duration>,
    },
}

/// A configured writer.
#[derive(Debug)]
pub struct Writer {
    client: reqwest::Client,
    base: Url,
    api: Api,
    gzip: bool,
}

impl Writer {
    /// A writer for `url` (the server root, possibly behind a path prefix).
    ///
    /// # Errors
    /// When the URL is not http(s), https is used without the `tls` feature, or the HTTP client
    /// cannot be built.
    pub fn new(url: &str, api: Api, gzip: bool, timeout: Duration) -> anyhow::Result<Self> {
        let base = Url::parse(url).map_err(|e| anyhow::anyhow!("invalid url {url:?}: {e}"))?;
        match base.scheme() {
            "http" => {}
            "https" if cfg!(feature = "tls") => {}
            "https" => anyhow::bail!("https needs smart-meter built with the `tls` feature"),
            s => anyhow::bail!("url scheme must be http or https, not {s:?}"),
        }
        #[cfg(feature = "tls")]
        {
            // reqwest is built without a bundled provider; ring is the project's choice. Another
            // component may have installed it already, which is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        #[cfg(feature = "tls")]
        let builder = if base.scheme() == "http" {
            // Plain HTTP never uses TLS, but reqwest builds its certificate verifier eagerly,
            // which reads and parses the whole system trust store (and keeps it in memory).
            // A TLS setup that trusts nothing costs nothing and refuses a redirect to https.
            builder.tls_backend_preconfigured(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        } else {
            builder
        };
        let client = builder
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(Writer {
            client,
            base,
            api,
            gzip,
        })
    }

    /// The write URL for `precision`.
    pub fn url(&self, precision: Precision) -> Url {
        let mut url = self.base.clone();
        let path = url.path().trim_end_matches('/').to_string();
        match &self.api {
            Api::V1 { db, rp, .. } => {
                url.set_path(&format!("{path}/write"));
                let mut q = url.query_pairs_mut();
                q.clear().append_pair("db", db);
                if let Some(rp) = rp {
                    q.append_pair("rp", rp);
                }
                q.append_pair("precision", precision.v1_param());
            }
            Api::V2 { org, bucket, .. } => {
                url.set_path(&format!("{path}/api/v2/write"));
                url.query_pairs_mut()
                    .clear()
                    .append_pair("org", org)
                    .append_pair("bucket", bucket)
                    .append_pair("precision", precision.as_str());
            }
        }
        url
    }

    /// Sends `body` (line protocol, newline-terminated lines).
    pub async fn send(&self, body: &str, precision: Precision) -> Outcome {
        let payload = if self.gzip {
            match gzip(body.as_bytes()) {
                Ok(b) => b,
                Err(e) => {
                    return Outcome::Retry {
                        error: format!("gzip failed: {e}"),
                        after: None,
                    }
                }
            }
        } else {
            body.as_bytes().to_vec()
        };
        let mut req = self
            .client
            .post(self.url(precision))
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .header(ACCEPT, "application/json");
        if self.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        match &self.api {
            Api::V1 {
                credentials: Some((user, password)),
                ..
            } => req = req.basic_auth(user, password.as_ref()),
            Api::V1 { .. } => {}
            Api::V2 { token, .. } => match HeaderValue::from_str(&format!("Token {token}")) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    req = req.header(AUTHORIZATION, v);
                }
                Err(_) => {
                    return Outcome::Refused(
                        "the token contains characters not allowed in an HTTP header".into(),
                    )
                }
            },
        }
        let resp = match req.body(payload).send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    error: error_chain(&e),
                    after: None,
                }
            }
        };
        let status = resp.status();
        if status.is_success() {
            return Outcome::Delivered;
        }
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = resp.text().await.unwrap_or_default();
        let error = describe(status, &text);
        match status {
            StatusCode::BAD_REQUEST
            | StatusCode::UNPROCESSABLE_ENTITY
            | StatusCode::PAYLOAD_TOO_LARGE => Outcome::Refused(error),
            _ => Outcome::Retry { error, after },
        }
    }
}

/// Compresses with gzip.
///
/// # Errors
/// Never in practice (writing to memory); kept for the encoder's signature.
pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut enc = GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        Compression::default(),
    );
    enc.write_all(data)?;
    enc.finish()
}

/// `InfluxDB answered 500 Internal Server Error: <first 300 characters of the body>`.
fn describe(status: StatusCode, body: &str) -> String {
    let body = body.trim();
    let short: String = body.chars().take(300).collect();
    if short.is_empty() {
        format!("InfluxDB answered {status}")
    } else {
        format!("InfluxDB answered {status}: {short}")
    }
}

/// The error and its causes, `a: b: c`.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(url: &str, rp: Option<&str>) -> Writer {
        Writer::new(
            url,
            Api::V1 {
                db: "Smart Meter".into(),
                rp: rp.map(Into::into),
                credentials: Some(("u".into(), Some("secret-pw".into()))),
            },
            true,
            Duration::from_secs(5),
        )
        .unwrap()
    }

    #[test]
    fn v1_urls_carry_db_rp_and_precision_but_no_credentials() {
        let w = v1("http://127.0.0.1:8086", Some("autogen"));
        assert_eq!(
            w.url(Precision::Ns).as_str(),
            "http://127.0.0.1:8086/write?db=Smart+Meter&rp=autogen&precision=n"
        );
        let w = v1("http://host/influx/", None);
        assert_eq!(
            w.url(Precision::Ms).as_str(),
            "http://host/influx/write?db=Smart+Meter&precision=ms"
        );
        assert!(!format!("{w:?}").contains("secret-pw"));
    }

    #[test]
    fn v2_urls_carry_org_bucket_and_precision() {
        let w = Writer::new(
            "http://127.0.0.1:8086",
            Api::V2 {
                org: "home".into(),
                bucket: "meters/raw".into(),
                token: "tok-123".into(),
            },
            false,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(
            w.url(Precision::Us).as_str(),
            "http://127.0.0.1:8086/api/v2/write?org=home&bucket=meters%2Fraw&precision=us"
        );
        assert!(!format!("{w:?}").contains("tok-123"));
    }

    #[test]
    fn only_http_and_https_are_accepted() {
        let api = Api::V1 {
            db: "x".into(),
            rp: None,
            credentials: None,
        };
        let e = Writer::new("ftp://x", api.clone(), true, Duration::from_secs(1)).unwrap_err();
        assert!(e.to_string().contains("http or https"), "{e}");
        assert!(Writer::new("not a url", api.clone(), true, Duration::from_secs(1)).is_err());
        let https = Writer::new("https://x", api, true, Duration::from_secs(1));
        assert_eq!(https.is_ok(), cfg!(feature = "tls"));
    }

    #[test]
    fn gzip_round_trips() {
        use std::io::Read as _;
        let z = gzip(b"m x=1i 1\n").unwrap();
        let mut out = String::new();
        flate2::read::GzDecoder::new(&z[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "m x=1i 1\n");
    }

    #[test]
    fn answers_are_described_briefly() {
        assert_eq!(
            describe(StatusCode::BAD_REQUEST, " {\"error\":\"bad\"}\n"),
            "InfluxDB answered 400 Bad Request: {\"error\":\"bad\"}"
        );
        assert_eq!(
            describe(StatusCode::SERVICE_UNAVAILABLE, ""),
            "InfluxDB answered 503 Service Unavailable"
        );
        let long = "x".repeat(1000);
        assert_eq!(describe(StatusCode::BAD_REQUEST, &long).len(), 35 + 300);
    }
}
