//! Broker URLs: `mqtt://host[:port]` (plain TCP, default port 1883) and `mqtts://host[:port]`
//! (TLS, default port 8883). `tcp://` and `ssl://`/`tls://` are accepted as aliases. IPv6
//! addresses go in brackets (`mqtt://[::1]:1883`). Credentials do not belong in the URL (it
//! is logged); use the `username`/`password` keys.

use std::fmt;
use std::str::FromStr;

/// A parsed broker address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// TLS (`mqtts://`).
    pub tls: bool,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl FromStr for BrokerUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (scheme, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("expected mqtt://host:port or mqtts://host:port, got {s:?}"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" | "tls" => true,
            other => {
                return Err(format!(
                    "unsupported scheme {other:?}: use mqtt:// or mqtts:// (TLS)"
                ))
            }
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(
                "credentials in the URL are not supported (URLs are logged); use the username \
                 and password keys"
                    .into(),
            );
        }
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err(format!(
                "the URL must be scheme://host[:port] without a path, got {s:?}"
            ));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("unclosed '[' in {s:?}"))?;
            let port = match after {
                "" => default_port,
                p => parse_port(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("expected :port after ']' in {s:?}"))?,
                )?,
            };
            (host.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), parse_port(p)?),
                None => (rest.to_string(), default_port),
            }
        };
        if host.is_empty() {
            return Err(format!("no host in {s:?}"));
        }
        Ok(BrokerUrl { tls, host, port })
    }
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("bad port {p:?}: expected 1 to 65535")),
        Ok(n) => Ok(n),
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_tls_urls_with_default_ports() {
        let u: BrokerUrl = "mqtt://broker.local".parse().unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port),
            (false, "broker.local", 1883)
        );
        let u: BrokerUrl = "mqtts://broker.local".parse().unwrap();
        assert_eq!((u.tls, u.port), (true, 8883));
        let u: BrokerUrl = "mqtt://10.0.0.2:1884/".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port), ("10.0.0.2", 1884));
        let u: BrokerUrl = "mqtts://[::1]:8884".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 8884));
        assert_eq!(u.to_string(), "mqtts://[::1]:8884");
        assert_eq!("ssl://h".parse::<BrokerUrl>().unwrap().port, 8883);
    }

    #[test]
    fn rejects_other_schemes_paths_ports_and_credentials() {
        assert!("http://h"
            .parse::<BrokerUrl>()
            .unwrap_err()
            .contains("scheme"));
        assert!("h:1883".parse::<BrokerUrl>().is_err());
        assert!("mqtt://h:0"
            .parse::<BrokerUrl>()
            .unwrap_err()
            .contains("port"));
        assert!("mqtt://h:99999".parse::<BrokerUrl>().is_err());
        assert!("mqtt://h/x".parse::<BrokerUrl>().is_err());
        let e = "mqtt://u:secret@h".parse::<BrokerUrl>().unwrap_err();
        assert!(!e.contains("secret"), "{e}");
        assert!("mqtt://:1883".parse::<BrokerUrl>().is_err());
    }
}
