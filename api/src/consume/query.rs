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
}

/// A validated consume request.
#[derive(Debug, Clone)]
pub struct ConsumeParams {
    pub limit: usize,
    pub group: GroupName,
    pub wait: Duration,
    pub encoding: Encoding,
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
            encoding: self.encoding,
        })
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
            lag_interval: Duration::from_secs(10),
        }
    }

    fn query(limit: Option<&str>, wait: Option<&str>, group: Option<&str>) -> ConsumeQuery {
        ConsumeQuery {
            limit: limit.map(str::to_owned),
            wait: wait.map(str::to_owned),
            group: group.map(str::to_owned),
            encoding: Encoding::None,
        }
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
}
