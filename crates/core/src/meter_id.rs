//! Meter ids: the names used in topics, tags and file names.

use std::fmt;
use std::sync::Arc;

/// A meter id: 1 to 64 characters of lowercase ASCII letters, digits, `-` and `_`, starting with
/// a letter or digit. This keeps it valid as an MQTT topic level, a Homie device id (after `_` →
/// `-`), an InfluxDB tag and a file name. Shared, so that every reading can carry it without
/// copying it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MeterId(Arc<str>);

impl MeterId {
    /// Validates `name`; the error says what is wrong.
    pub fn new(name: &str) -> Result<Self, String> {
        if name.is_empty() || name.len() > 64 {
            return Err(format!(
                "meter id must have 1 to 64 characters, got {}",
                name.len()
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return Err(format!(
                "meter id {name:?} may hold only a-z, 0-9, '-' and '_', found {c:?}"
            ));
        }
        if name.starts_with(['-', '_']) {
            return Err(format!(
                "meter id {name:?} must start with a letter or digit"
            ));
        }
        Ok(MeterId(name.into()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MeterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_topic_safe_names_only() {
        assert!(MeterId::new("evn").is_ok());
        assert!(MeterId::new("kamstrup_403").is_ok());
        assert!(MeterId::new("Evn").is_err());
        assert!(MeterId::new("a/b").is_err());
        assert!(MeterId::new("").is_err());
        assert!(MeterId::new("-x").is_err());
    }
}
