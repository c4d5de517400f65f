//! `auth.*`: the login cache, the argon2 queue and the login throttle.

use std::time::Duration;

use serde::Deserialize;

use crate::setting::{self, invalid, Invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// How long a verified credential is served from memory. Changes made
    /// through the admin API drop it at once on every node (LISTEN/NOTIFY).
    #[serde(
        default = "setting::ms::<60000>",
        deserialize_with = "setting::seconds",
        alias = "cache_ttl_seconds"
    )]
    pub cache_ttl: Duration,
    /// Most argon2 verifications running at once on a node.
    pub max_concurrent_verifications: usize,
    /// The nice value (0..=19) of the node's argon2 threads. Above 0, a
    /// verification gets the CPU only as far as the threads answering
    /// requests leave it: a flood of logins then slows logins, not the
    /// requests of clients already logged in.
    pub verification_nice: u8,
    /// How long a password check may wait for an argon2 slot before the
    /// request gets 503 `overloaded`; nothing waits without limit.
    #[serde(
        default = "setting::ms::<2000>",
        deserialize_with = "setting::millis",
        alias = "verification_queue_ms"
    )]
    pub verification_queue: Duration,
    /// Failed password checks allowed per (username, client network) per
    /// minute on each node, known and unknown names alike; past it, that
    /// pair gets 429 until the budget refills. Other networks are unaffected.
    pub login_attempts_per_minute: u32,
    /// Failed password checks allowed per client network (IPv4 address or
    /// IPv6 /64) per minute, across usernames.
    pub address_attempts_per_minute: u32,
    /// Password checks one client network may have queued or running at
    /// once, so that one network cannot fill the argon2 queue.
    pub max_verifications_per_address: usize,
}

impl AuthSettings {
    /// The section's rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.cache_ttl.is_zero() {
            return Err(invalid("auth.cache_ttl", "must be at least 1s"));
        }
        if self.verification_nice > 19 {
            return Err(invalid("auth.verification_nice", "must be 0..=19"));
        }
        if self.verification_queue.is_zero() {
            return Err(invalid("auth.verification_queue", "must be at least 1ms"));
        }
        for (key, value) in [
            (
                "auth.max_concurrent_verifications",
                self.max_concurrent_verifications as u64,
            ),
            (
                "auth.max_verifications_per_address",
                self.max_verifications_per_address as u64,
            ),
            (
                "auth.login_attempts_per_minute",
                u64::from(self.login_attempts_per_minute),
            ),
            (
                "auth.address_attempts_per_minute",
                u64::from(self.address_attempts_per_minute),
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        Ok(())
    }
}
