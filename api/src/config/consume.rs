//! `consume.*`: the bounds of a GET, the readers, leases and groups.

use std::time::Duration;

use serde::Deserialize;

use crate::setting::{self, invalid, Invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumeSettings {
    /// Largest `limit` a GET may ask for.
    pub max_limit: u64,
    /// A response stops once it holds this many bytes of messages, but it
    /// always carries at least one message when one is available.
    pub max_response_bytes: usize,
    /// Longest `wait` a GET may ask for.
    #[serde(
        default = "setting::ms::<30000>",
        deserialize_with = "setting::millis",
        alias = "max_wait_ms"
    )]
    pub max_wait: Duration,
    /// Size of the per-node pool of Kafka readers.
    pub readers: usize,
    /// Bytes of recently read messages kept per node, so that many groups
    /// reading the same stretch of a partition are served from memory
    /// instead of each moving the partition's reader; 0 turns it off.
    pub read_cache_bytes: u64,
    /// One GET's whole time budget for leasing and reading: the wait for a
    /// database connection and for a reader, and every partition it leased.
    #[serde(
        default = "setting::ms::<2000>",
        deserialize_with = "setting::millis",
        alias = "read_timeout_ms"
    )]
    pub read_timeout: Duration,
    /// How long a GET's lease on its partitions lasts (from Postgres
    /// `now()`). If a node dies mid-read, its partitions go to the next
    /// GET once this passes; it must outlast the read, so it is greater
    /// than `read_timeout`. Default: `read_timeout` + 3s.
    #[serde(default, deserialize_with = "setting::opt_millis", alias = "lease_ms")]
    pub lease: Option<Duration>,
    /// How often the watermarks of topics in use are refreshed from Kafka,
    /// so that messages produced by native clients (and topics deleted or
    /// created again outside sluice) are seen.
    #[serde(
        default = "setting::ms::<1000>",
        deserialize_with = "setting::millis",
        alias = "watermark_poll_ms"
    )]
    pub watermark_poll: Duration,
    /// How often committed cursors are mirrored to Kafka group offsets, so
    /// that standard tooling shows lag; 0 turns mirroring off.
    #[serde(
        default = "setting::ms::<5000>",
        deserialize_with = "setting::millis",
        alias = "mirror_interval_ms"
    )]
    pub mirror_interval: Duration,
    /// Groups no GET has used for this long are deleted, with their
    /// cursors and their mirrored Kafka group, so that groups named once
    /// do not pile up forever; 0 keeps them. The default (7 days) matches
    /// Kafka's own `offsets.retention.minutes`.
    #[serde(
        default = "setting::ms::<604800000>",
        deserialize_with = "setting::days",
        alias = "group_retention_days"
    )]
    pub group_retention: Duration,
    /// How often a node looks for groups past the retention (one node
    /// sweeps at a time, under a Postgres advisory lock).
    #[serde(
        default = "setting::ms::<600000>",
        deserialize_with = "setting::millis",
        alias = "group_sweep_interval_ms"
    )]
    pub group_sweep_interval: Duration,
    /// How long a manual-mode GET's messages stay leased to its receipt
    /// when the GET names no `visibility`: past it, unacked messages are
    /// delivered again.
    #[serde(
        default = "setting::ms::<30000>",
        deserialize_with = "setting::millis",
        alias = "visibility_timeout_ms"
    )]
    pub visibility_timeout: Duration,
    /// The longest `visibility` a GET or an extend may ask for (12 hours,
    /// as SQS allows).
    #[serde(
        default = "setting::ms::<43200000>",
        deserialize_with = "setting::millis",
        alias = "max_visibility_ms"
    )]
    pub max_visibility: Duration,
    /// How long an ended receipt is remembered, so that a repeated ack is
    /// still answered 204 and a late one 409 `receipt_expired`; after
    /// that it is `receipt_not_found`.
    #[serde(
        default = "setting::ms::<86400000>",
        deserialize_with = "setting::millis",
        alias = "receipt_retention_ms"
    )]
    pub receipt_retention: Duration,
    /// How often `sluice_consumer_lag` is measured for every group with
    /// cursors, by one node of the cluster at a time, so that the lag of a
    /// consumer that stopped keeps growing; 0 turns it off (no lag is then
    /// exported at all).
    #[serde(
        default = "setting::ms::<10000>",
        deserialize_with = "setting::millis",
        alias = "lag_interval_ms"
    )]
    pub lag_interval: Duration,
    /// How often an SSE or WebSocket stream with nothing to send writes a
    /// heartbeat (an SSE comment, a WebSocket ping), so that balancers and
    /// NATs keep the connection and a dead client is noticed.
    #[serde(
        default = "setting::ms::<15000>",
        deserialize_with = "setting::millis",
        alias = "stream_heartbeat_ms"
    )]
    pub stream_heartbeat: Duration,
    /// A stream that has delivered nothing and heard nothing from its
    /// client for this long is closed, so that forgotten streams give their
    /// place in `quota.max_streams` back; 0 keeps them open.
    #[serde(
        default = "setting::ms::<3600000>",
        deserialize_with = "setting::millis",
        alias = "stream_idle_ms"
    )]
    pub stream_idle: Duration,
}

/// What a lease adds to the read budget by default: time to commit once
/// the read has ended, even when the database is slow to hand out a
/// connection.
const LEASE_MARGIN: Duration = Duration::from_secs(3);

/// The longest group retention accepted: a hundred years.
const MAX_GROUP_RETENTION: Duration = Duration::from_secs(36_500 * 86_400);

impl ConsumeSettings {
    /// How long a GET's lease lasts.
    pub fn lease(&self) -> Duration {
        self.lease.unwrap_or(self.read_timeout + LEASE_MARGIN)
    }

    /// One GET's budget for leasing and reading.
    pub fn read_budget(&self) -> Duration {
        self.read_timeout
    }

    /// The section's rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.max_limit == 0 {
            return Err(invalid("consume.max_limit", "must be at least 1"));
        }
        if self.max_response_bytes == 0 {
            return Err(invalid("consume.max_response_bytes", "must be at least 1"));
        }
        if self.readers == 0 || self.readers > 64 {
            return Err(invalid("consume.readers", "must be 1..=64"));
        }
        if self.read_timeout.is_zero() {
            return Err(invalid("consume.read_timeout", "must be at least 1ms"));
        }
        if self.lease.is_some_and(|lease| lease <= self.read_timeout) {
            return Err(invalid(
                "consume.lease",
                "must be greater than consume.read_timeout, so that a lease outlasts the read",
            ));
        }
        if self.max_visibility.is_zero() || self.visibility_timeout.is_zero() {
            return Err(invalid(
                "consume.visibility_timeout",
                "must be at least 1ms, and so must consume.max_visibility",
            ));
        }
        if self.visibility_timeout > self.max_visibility {
            return Err(invalid(
                "consume.visibility_timeout",
                "must not exceed consume.max_visibility",
            ));
        }
        if self.watermark_poll < Duration::from_millis(10) {
            return Err(invalid("consume.watermark_poll", "must be at least 10ms"));
        }
        if self.group_retention > MAX_GROUP_RETENTION {
            return Err(invalid(
                "consume.group_retention",
                "must be 0 (keep groups) to 36500 days",
            ));
        }
        if self.group_sweep_interval < Duration::from_millis(10) {
            return Err(invalid(
                "consume.group_sweep_interval",
                "must be at least 10ms",
            ));
        }
        if self.stream_heartbeat < Duration::from_millis(10) {
            return Err(invalid("consume.stream_heartbeat", "must be at least 10ms"));
        }
        if !self.lag_interval.is_zero() && self.lag_interval < Duration::from_millis(10) {
            return Err(invalid(
                "consume.lag_interval",
                "must be 0 (off) or at least 10ms",
            ));
        }
        Ok(())
    }
}
