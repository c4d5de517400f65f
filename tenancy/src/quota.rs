//! Per-tenant quotas. The rate limiter of the data plane enforces them; the
//! admin plane sets them.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// A tenant's limits. Bursts are expressed in seconds of rate, so that one
/// number scales both the request and the byte bucket.
///
/// `Deserialize` reads the configured defaults (`quota.*`), `Serialize`
/// writes quotas into the audit log; HTTP bodies use the api crate's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub requests_per_second: u32,
    pub bytes_per_second: u64,
    pub burst_seconds: u32,
    pub max_topics: u32,
    pub max_partitions: u32,
    /// Consumer groups the tenant may have at once: each costs cursor rows,
    /// a mirrored Kafka group and metric series.
    pub max_groups: u32,
    /// Consumes (long polls included) the tenant may run at once over the
    /// cluster; each live node admits its share, so one tenant's open
    /// long polls cannot take a node's every connection and worker.
    pub max_concurrent_consumes: u32,
    /// SSE and WebSocket streams the tenant may hold open at once over the
    /// cluster; each live node admits its share, since a stream keeps a
    /// connection and a task for as long as its client likes.
    pub max_streams: u32,
}

/// Upper bounds that keep quotas within what the database columns and the
/// rate limiter can represent.
const MAX_RPS: u32 = 10_000_000;
const MAX_BPS: u64 = 1 << 40;
const MAX_BURST_SECONDS: u32 = 3_600;
const MAX_COUNT: u32 = 1_000_000;

impl Quota {
    /// Checks every field, naming the first one that is out of range.
    pub fn validate(&self) -> Result<(), ValidationError> {
        fn range<T: PartialOrd + std::fmt::Display>(
            field: &'static str,
            value: T,
            min: T,
            max: T,
        ) -> Result<(), ValidationError> {
            if value < min || value > max {
                return Err(ValidationError::new(
                    field,
                    format!("{value} is outside {min}..={max}"),
                ));
            }
            Ok(())
        }
        range(
            "quota.requests_per_second",
            self.requests_per_second,
            1,
            MAX_RPS,
        )?;
        range("quota.bytes_per_second", self.bytes_per_second, 1, MAX_BPS)?;
        range(
            "quota.burst_seconds",
            self.burst_seconds,
            1,
            MAX_BURST_SECONDS,
        )?;
        range("quota.max_topics", self.max_topics, 0, MAX_COUNT)?;
        range("quota.max_partitions", self.max_partitions, 0, MAX_COUNT)?;
        range("quota.max_groups", self.max_groups, 0, MAX_COUNT)?;
        range(
            "quota.max_concurrent_consumes",
            self.max_concurrent_consumes,
            1,
            MAX_COUNT,
        )?;
        range("quota.max_streams", self.max_streams, 1, MAX_COUNT)?;
        Ok(())
    }

    /// Applies the fields a patch sets, then validates the result.
    pub fn apply(&self, patch: &QuotaPatch) -> Result<Quota, ValidationError> {
        let next = Quota {
            requests_per_second: patch
                .requests_per_second
                .unwrap_or(self.requests_per_second),
            bytes_per_second: patch.bytes_per_second.unwrap_or(self.bytes_per_second),
            burst_seconds: patch.burst_seconds.unwrap_or(self.burst_seconds),
            max_topics: patch.max_topics.unwrap_or(self.max_topics),
            max_partitions: patch.max_partitions.unwrap_or(self.max_partitions),
            max_groups: patch.max_groups.unwrap_or(self.max_groups),
            max_concurrent_consumes: patch
                .max_concurrent_consumes
                .unwrap_or(self.max_concurrent_consumes),
            max_streams: patch.max_streams.unwrap_or(self.max_streams),
        };
        next.validate()?;
        Ok(next)
    }
}

/// A partial quota: on create, the missing fields come from the configured
/// defaults; on update, from the tenant's current quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaPatch {
    pub requests_per_second: Option<u32>,
    pub bytes_per_second: Option<u64>,
    pub burst_seconds: Option<u32>,
    pub max_topics: Option<u32>,
    pub max_partitions: Option<u32>,
    pub max_groups: Option<u32>,
    pub max_concurrent_consumes: Option<u32>,
    pub max_streams: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Quota {
        Quota {
            requests_per_second: 100,
            bytes_per_second: 1 << 20,
            burst_seconds: 2,
            max_topics: 10,
            max_partitions: 30,
            max_groups: 100,
            max_concurrent_consumes: 32,
            max_streams: 100,
        }
    }

    #[test]
    fn a_patch_changes_only_the_fields_it_sets() {
        let patch = QuotaPatch {
            requests_per_second: Some(5),
            ..QuotaPatch::default()
        };
        let next = base().apply(&patch).unwrap();
        assert_eq!(next.requests_per_second, 5);
        assert_eq!(next.max_topics, 10);
    }

    #[test]
    fn a_zero_rate_is_refused_and_named() {
        let patch = QuotaPatch {
            bytes_per_second: Some(0),
            ..QuotaPatch::default()
        };
        let err = base().apply(&patch).unwrap_err();
        assert_eq!(err.field, "quota.bytes_per_second");
    }

    #[test]
    fn zero_concurrent_consumes_is_refused_but_zero_groups_is_not() {
        let none = QuotaPatch {
            max_concurrent_consumes: Some(0),
            ..QuotaPatch::default()
        };
        assert_eq!(
            base().apply(&none).unwrap_err().field,
            "quota.max_concurrent_consumes"
        );
        let no_groups = QuotaPatch {
            max_groups: Some(0),
            ..QuotaPatch::default()
        };
        assert_eq!(base().apply(&no_groups).unwrap().max_groups, 0);
    }
}
