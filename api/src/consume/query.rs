//! The query string of `GET /topic/{topic}`, validated before any work.

use std::time::Duration;

use serde::Deserialize;
use tenancy::GroupName;

use crate::config::ConsumeSettings;
use crate::encoding::Encoding;
use crate::error::{ApiError, Code};

/// As it arrives: strings, so that a bad number gets a precise message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumeQuery {
    limit: Option<String>,
    group: Option<String>,
    wait: Option<String>,
    #[serde(default)]
    encoding: Encoding,
    ack: Option<String>,
    visibility: Option<String>,
    value: Option<String>,
}

/// How a GET's messages are settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// OVH's "read only once": the group's position moves before the
    /// answer is written.
    Auto,
    /// At least once: the messages stay leased under a receipt for
    /// `visibility`, until the client acks them; otherwise they are
    /// delivered again.
    Manual { visibility: Duration },
}

/// A validated consume request.
#[derive(Debug, Clone)]
pub struct ConsumeParams {
    pub limit: usize,
    pub group: GroupName,
    pub wait: Duration,
    pub rendering: Rendering,
    pub ack: AckMode,
}

/// How messages are written out: `encoding` for keys, values and headers,
/// and whether values that parse as JSON go out parsed (`value=json`), so
/// that a JSON client need not parse a string inside its JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rendering {
    pub encoding: Encoding,
    pub json_values: bool,
}

impl ConsumeQuery {
    /// A stream's query as a GET's, without `wait`: each of its batches is
    /// one long poll.
    pub fn for_stream(
        limit: Option<String>,
        group: Option<String>,
        encoding: Encoding,
        ack: Option<String>,
        visibility: Option<String>,
        value: Option<String>,
    ) -> Self {
        Self {
            limit,
            group,
            wait: None,
            encoding,
            ack,
            visibility,
            value,
        }
    }
}

fn bad(code: Code, message: String) -> ApiError {
    ApiError::Input { code, message }
}

impl ConsumeQuery {
    /// Checks every parameter against the configured bounds. `username`
    /// gives the default group.
    pub fn validate(
        &self,
        settings: &ConsumeSettings,
        username: &str,
    ) -> Result<ConsumeParams, ApiError> {
        let limit = match &self.limit {
            None => 1,
            Some(text) => match text.parse::<u64>() {
                Ok(n) if (1..=settings.max_limit).contains(&n) => {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }
                _ => {
                    return Err(bad(
                        Code::InvalidLimit,
                        format!(
                            "limit must be a whole number in 1..={}, not '{text}'",
                            settings.max_limit
                        ),
                    ))
                }
            },
        };
        let wait = match &self.wait {
            None => Duration::ZERO,
            Some(text) => match text.parse::<u64>() {
                Ok(ms) if Duration::from_millis(ms) <= settings.max_wait => {
                    Duration::from_millis(ms)
                }
                _ => {
                    return Err(bad(
                        Code::InvalidWait,
                        format!(
                            "wait must be milliseconds in 0..={}, not '{text}'",
                            settings.max_wait.as_millis()
                        ),
                    ))
                }
            },
        };
        let group = match &self.group {
            None => GroupName::default_for(username),
            Some(name) => GroupName::parse(name)?,
        };
        Ok(ConsumeParams {
            limit,
            group,
            wait,
            rendering: self.rendering()?,
            ack: self.ack_mode(settings)?,
        })
    }

    /// `value=json` or `value=string` (the default). JSON values with
    /// `encoding=base64` are refused: base64 says "every value is bytes",
    /// `value=json` says "parse them", and one answer cannot do both.
    fn rendering(&self) -> Result<Rendering, ApiError> {
        let json_values = match self.value.as_deref() {
            None | Some("string") => false,
            Some("json") => true,
            Some(other) => {
                return Err(bad(
                    Code::InvalidQuery,
                    format!("value must be 'string' or 'json', not '{other}'"),
                ))
            }
        };
        if json_values && self.encoding == Encoding::Base64 {
            return Err(bad(
                Code::InvalidQuery,
                "value=json cannot be combined with encoding=base64".into(),
            ));
        }
        Ok(Rendering {
            encoding: self.encoding,
            json_values,
        })
    }

    fn ack_mode(&self, settings: &ConsumeSettings) -> Result<AckMode, ApiError> {
        let manual = match self.ack.as_deref() {
            None | Some("auto") => false,
            Some("manual") => true,
            Some(other) => {
                return Err(bad(
                    Code::InvalidAck,
                    format!("ack must be 'auto' or 'manual', not '{other}'"),
                ))
            }
        };
        if !manual {
            if self.visibility.is_some() {
                return Err(bad(
                    Code::InvalidVisibility,
                    "visibility applies only with ack=manual".into(),
                ));
            }
            return Ok(AckMode::Auto);
        }
        let visibility = match &self.visibility {
            None => settings.visibility_timeout,
            Some(text) => visibility(text, settings)?,
        };
        Ok(AckMode::Manual { visibility })
    }
}

/// A visibility timeout in ms, within `1..=consume.max_visibility`.
pub fn visibility(text: &str, settings: &ConsumeSettings) -> Result<Duration, ApiError> {
    match text.parse::<u64>() {
        Ok(ms) if ms >= 1 && Duration::from_millis(ms) <= settings.max_visibility => {
            Ok(Duration::from_millis(ms))
        }
        _ => Err(bad(
            Code::InvalidVisibility,
            format!(
                "visibility must be milliseconds in 1..={}, not '{text}'",
                settings.max_visibility.as_millis()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ConsumeSettings {
        ConsumeSettings {
            max_limit: 1000,
            max_response_bytes: 1 << 20,
            max_wait: Duration::from_secs(30),
            readers: 2,
            read_cache_bytes: 0,
            read_timeout: Duration::from_millis(500),
            lease: None,
            watermark_poll: Duration::from_secs(1),
            mirror_interval: Duration::ZERO,
            group_retention: Duration::from_secs(7 * 86_400),
            group_sweep_interval: Duration::from_secs(600),
            visibility_timeout: Duration::from_secs(30),
            max_visibility: Duration::from_secs(43_200),
            receipt_retention: Duration::from_secs(86_400),
            lag_interval: Duration::from_secs(10),
            stream_heartbeat: Duration::from_secs(15),
            stream_idle: Duration::from_secs(3600),
        }
    }

    fn query(limit: Option<&str>, wait: Option<&str>, group: Option<&str>) -> ConsumeQuery {
        ConsumeQuery {
            limit: limit.map(str::to_owned),
            wait: wait.map(str::to_owned),
            group: group.map(str::to_owned),
            encoding: Encoding::None,
            ack: None,
            visibility: None,
            value: None,
        }
    }

    #[test]
    fn value_is_string_unless_json_is_asked_for_and_never_json_with_base64() {
        let mut q = query(None, None, None);
        assert!(
            !q.validate(&settings(), "acme.app")
                .unwrap()
                .rendering
                .json_values
        );
        q.value = Some("json".into());
        assert!(
            q.validate(&settings(), "acme.app")
                .unwrap()
                .rendering
                .json_values
        );
        q.encoding = Encoding::Base64;
        let err = q.validate(&settings(), "acme.app").unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_query");
        q.encoding = Encoding::None;
        q.value = Some("yaml".into());
        let err = q.validate(&settings(), "acme.app").unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_query");
    }

    #[test]
    fn defaults_are_one_message_no_wait_and_the_users_own_group() {
        let params = query(None, None, None)
            .validate(&settings(), "acme.app")
            .unwrap();
        assert_eq!(params.limit, 1);
        assert_eq!(params.wait, Duration::ZERO);
        assert_eq!(params.group.as_str(), "app");
    }

    #[test]
    fn out_of_range_or_malformed_numbers_are_refused() {
        for limit in ["-1", "0", "1001", "1000000000000", "abc", "1.5", ""] {
            let err = query(Some(limit), None, None)
                .validate(&settings(), "acme.app")
                .unwrap_err();
            assert_eq!(err.code().as_str(), "invalid_limit", "{limit}");
        }
        for wait in ["-5", "100000000000", "soon"] {
            let err = query(None, Some(wait), None)
                .validate(&settings(), "acme.app")
                .unwrap_err();
            assert_eq!(err.code().as_str(), "invalid_wait", "{wait}");
        }
        let err = query(None, None, Some("a b"))
            .validate(&settings(), "acme.app")
            .unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_group");
    }

    fn acking(ack: Option<&str>, visibility: Option<&str>) -> Result<AckMode, ApiError> {
        let mut q = query(None, None, None);
        q.ack = ack.map(str::to_owned);
        q.visibility = visibility.map(str::to_owned);
        q.validate(&settings(), "acme.app").map(|p| p.ack)
    }

    #[test]
    fn manual_mode_takes_the_default_visibility_or_one_in_bounds() {
        assert_eq!(acking(None, None).unwrap(), AckMode::Auto);
        assert_eq!(acking(Some("auto"), None).unwrap(), AckMode::Auto);
        assert_eq!(
            acking(Some("manual"), None).unwrap(),
            AckMode::Manual {
                visibility: Duration::from_secs(30)
            }
        );
        assert_eq!(
            acking(Some("manual"), Some("1500")).unwrap(),
            AckMode::Manual {
                visibility: Duration::from_millis(1500)
            }
        );
        let err = acking(Some("sometimes"), None).unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_ack");
        for bad in ["0", "-1", "43200001", "soon"] {
            let err = acking(Some("manual"), Some(bad)).unwrap_err();
            assert_eq!(err.code().as_str(), "invalid_visibility", "{bad}");
        }
        let err = acking(None, Some("1000")).unwrap_err();
        assert_eq!(err.code().as_str(), "invalid_visibility");
    }
}
