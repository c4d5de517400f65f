//! The pieces every settings section is built from, whichever layer owns
//! the section: durations written with units, secrets that stay text, and
//! the error naming a key. A leaf module, so that the Kafka layer can own
//! its settings without depending on the configuration loader.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

/// A value that breaks a rule, naming its dotted key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct Invalid {
    pub key: &'static str,
    pub reason: String,
}

/// Builds an [`Invalid`].
pub fn invalid(key: &'static str, reason: impl Into<String>) -> Invalid {
    Invalid {
        key,
        reason: reason.into(),
    }
}

/// A duration as written in a file or a variable: text with a unit
/// (`"10s"`, `"500ms"`, `"2m"`, `"7d"`), or a bare number in the unit of
/// the key's old name (`read_timeout_ms = 2000`), which stays accepted as
/// an alias.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Number(u64),
    Text(String),
}

fn duration<'de, D: Deserializer<'de>>(
    deserializer: D,
    unit: Duration,
) -> Result<Duration, D::Error> {
    match Written::deserialize(deserializer)? {
        Written::Number(n) => unit
            .checked_mul(u32::try_from(n).map_err(serde::de::Error::custom)?)
            .ok_or_else(|| serde::de::Error::custom("the duration is too long")),
        Written::Text(text) => {
            let text = text.trim();
            // A number in a string (an environment variable) is a bare number.
            if let Ok(n) = text.parse::<u64>() {
                return unit
                    .checked_mul(u32::try_from(n).map_err(serde::de::Error::custom)?)
                    .ok_or_else(|| serde::de::Error::custom("the duration is too long"));
            }
            humantime::parse_duration(text).map_err(|e| {
                serde::de::Error::custom(format!(
                    "'{text}' is not a duration such as \"500ms\", \"10s\" or \"5m\": {e}"
                ))
            })
        }
    }
}

/// A duration whose bare numbers are milliseconds (old `*_ms` keys).
pub fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    duration(deserializer, Duration::from_millis(1))
}

/// [`millis`], optional.
pub fn opt_millis<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    millis(deserializer).map(Some)
}

/// A duration whose bare numbers are seconds (old `*_seconds` keys).
pub fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    duration(deserializer, Duration::from_secs(1))
}

/// A duration whose bare numbers are days (old `*_days` keys).
pub fn days<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    duration(deserializer, Duration::from_secs(86_400))
}

/// Compiled-in durations for `#[serde(default = …)]`.
pub fn ms<const N: u64>() -> Duration {
    Duration::from_millis(N)
}

/// Reads a secret that an environment variable may have spelt as a number
/// or a boolean (figment parses `SLUICE_ADMIN__TOKEN=1234…` as a number):
/// secrets are text whatever they look like. Quote the value (`'"0123"'`)
/// to keep leading zeros.
pub fn secret_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Flag(bool),
    }
    Ok(Option::<Raw>::deserialize(deserializer)?.map(|raw| {
        SecretString::from(match raw {
            Raw::Text(text) => text,
            Raw::Unsigned(n) => n.to_string(),
            Raw::Signed(n) => n.to_string(),
            Raw::Float(n) => n.to_string(),
            Raw::Flag(b) => b.to_string(),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "millis", alias = "timeout_ms")]
        timeout: Duration,
        #[serde(default = "ms::<1500>", deserialize_with = "days")]
        retention: Duration,
    }

    fn probe(json: serde_json::Value) -> Result<Probe, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn durations_take_units_and_old_keys_take_bare_numbers_in_their_unit() {
        let p = probe(serde_json::json!({"timeout": "2s", "retention": "12h"})).unwrap();
        assert_eq!(p.timeout, Duration::from_secs(2));
        assert_eq!(p.retention, Duration::from_secs(12 * 3600));
        let p = probe(serde_json::json!({"timeout_ms": 250, "retention": 7})).unwrap();
        assert_eq!(p.timeout, Duration::from_millis(250));
        assert_eq!(p.retention, Duration::from_secs(7 * 86_400));
        let p = probe(serde_json::json!({"timeout": "750"})).unwrap();
        assert_eq!(p.timeout, Duration::from_millis(750));
        assert_eq!(p.retention, Duration::from_millis(1500));
    }

    #[test]
    fn a_duration_without_a_known_unit_or_given_twice_is_refused() {
        let err = probe(serde_json::json!({"timeout": "soon"})).unwrap_err();
        assert!(err.to_string().contains("not a duration"), "{err}");
        assert!(probe(serde_json::json!({"timeout": "2s", "timeout_ms": 5})).is_err());
    }
}
