//! `http.*`: the front door: proxies, deadlines and connection caps.

use std::time::Duration;

use serde::Deserialize;

use crate::setting::{self, invalid, Invalid};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Addresses or CIDR ranges of proxies whose `X-Forwarded-For` is
    /// believed, e.g. `["10.0.0.0/8", "127.0.0.1"]`.
    pub trusted_proxies: Vec<String>,
    /// Serves `GET /_noop` and `GET /_noop/authenticated` on the public
    /// listener, for benchmarks that separate the HTTP/TLS and auth costs
    /// from the Kafka path. Off in production.
    pub noop_routes: bool,
    /// Deadline for a request's whole body, counted from the start of the
    /// request: a client that declares a body and does not send it loses
    /// its connection then, instead of holding it for ever.
    #[serde(
        default = "setting::ms::<10000>",
        deserialize_with = "setting::millis",
        alias = "body_read_timeout_ms"
    )]
    pub body_read_timeout: Duration,
    /// Deadline for a request's headers (slowloris); also bounds the TLS
    /// handshake and the HTTP/2 preface.
    #[serde(
        default = "setting::ms::<5000>",
        deserialize_with = "setting::millis",
        alias = "client_request_timeout_ms"
    )]
    pub client_request_timeout: Duration,
    /// An idle keep-alive connection is closed after this long: HTTP/1.1
    /// by actix, HTTP/2 (where actix only pings) by a watchdog.
    #[serde(
        default = "setting::ms::<5000>",
        deserialize_with = "setting::millis",
        alias = "keep_alive_timeout_ms"
    )]
    pub keep_alive_timeout: Duration,
    /// Concurrent connections from one client network (an IPv4 address or
    /// an IPv6 /64) on the public listener; trusted proxies are exempt.
    pub max_connections_per_address: usize,
    /// Concurrent connections on the public listener in total.
    pub max_connections: usize,
    /// Requests in flight on one connection (HTTP/2 streams); past it a
    /// request gets 429 `too_many_streams`.
    pub max_streams_per_connection: usize,
}

impl HttpSettings {
    /// The public listener's connection caps.
    pub fn connection_limits(&self) -> crate::connections::Limits {
        crate::connections::Limits {
            per_network: self.max_connections_per_address,
            total: self.max_connections,
            streams_per_connection: self.max_streams_per_connection,
            idle: self.keep_alive_timeout,
        }
    }

    /// The trusted proxies as networks; a bare address is a /32 or /128.
    pub fn trusted_networks(&self) -> Result<Vec<ipnet::IpNet>, Invalid> {
        self.trusted_proxies
            .iter()
            .map(|entry| {
                entry
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| entry.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        invalid(
                            "http.trusted_proxies",
                            format!("'{entry}' is not an address or CIDR range"),
                        )
                    })
            })
            .collect()
    }

    /// The section's rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.trusted_networks()?;
        for (key, value) in [
            ("http.body_read_timeout", self.body_read_timeout),
            ("http.client_request_timeout", self.client_request_timeout),
            ("http.keep_alive_timeout", self.keep_alive_timeout),
        ] {
            if value.is_zero() {
                return Err(invalid(key, "must be at least 1ms"));
            }
        }
        for (key, value) in [
            (
                "http.max_connections_per_address",
                self.max_connections_per_address,
            ),
            ("http.max_connections", self.max_connections),
            (
                "http.max_streams_per_connection",
                self.max_streams_per_connection,
            ),
        ] {
            if value == 0 {
                return Err(invalid(key, "must be at least 1"));
            }
        }
        if self.max_connections_per_address > self.max_connections {
            return Err(invalid(
                "http.max_connections_per_address",
                "must not be above http.max_connections",
            ));
        }
        Ok(())
    }
}
