//! The HTTPS connection pool that drives sluice, and the admin API calls
//! that provision what the scenarios need. One pool per run keeps TLS
//! handshakes out of the measurements.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};

/// Which HTTP version the connection pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum HttpVersion {
    /// HTTP/1.1 keep-alive: one request in flight per connection.
    H1,
    /// HTTP/2 over ALPN: many streams per connection.
    H2,
}

/// A pool of keep-alive connections to one sluice public listener.
#[derive(Debug, Clone)]
pub struct Pool {
    clients: Arc<Vec<reqwest::Client>>,
    /// Public base URL, without a trailing slash.
    pub base: String,
}

impl Pool {
    /// Builds the pool: HTTP/1.1 keeps one connection per request in flight;
    /// HTTP/2 multiplexes over `h2_connections` connections.
    pub fn new(
        base: &str,
        ca: Option<&Path>,
        http: HttpVersion,
        concurrency: usize,
        h2_connections: usize,
    ) -> Result<Self> {
        let count = match http {
            HttpVersion::H1 => 1,
            HttpVersion::H2 => h2_connections.max(1),
        };
        let ca = match ca {
            Some(path) => {
                let pem =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                Some(reqwest::Certificate::from_pem(&pem).context("parsing the CA")?)
            }
            None => None,
        };
        let mut clients = Vec::with_capacity(count);
        for _ in 0..count {
            let mut builder = reqwest::Client::builder()
                .use_rustls_tls()
                .pool_max_idle_per_host(concurrency.max(1) * 2)
                .pool_idle_timeout(Duration::from_secs(90))
                .tcp_nodelay(true)
                .timeout(Duration::from_secs(60));
            if let Some(ca) = &ca {
                builder = builder.add_root_certificate(ca.clone());
            }
            builder = match http {
                HttpVersion::H1 => builder.http1_only(),
                HttpVersion::H2 => builder.http2_prior_knowledge(),
            };
            clients.push(builder.build().context("building the HTTP client")?);
        }
        Ok(Self {
            clients: Arc::new(clients),
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The client a worker uses: workers are spread over the connections.
    pub fn client(&self, worker: usize) -> &reqwest::Client {
        &self.clients[worker % self.clients.len()]
    }

    /// An HTTP/1.1 pool whose connections leave from `local` (another
    /// loopback address), for attacker and neighbour traffic that a server
    /// must tell apart from the victim's by address. A `localhost` URL is
    /// pinned to 127.0.0.1: a socket bound to an IPv4 address cannot reach
    /// `::1`.
    pub fn bound(base: &str, ca: Option<&Path>, local: IpAddr, connections: usize) -> Result<Self> {
        let url = reqwest::Url::parse(base).with_context(|| format!("parsing {base}"))?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .http1_only()
            .local_address(local)
            .pool_max_idle_per_host(connections.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(60));
        if url.host_str() == Some("localhost") {
            let port = url.port_or_known_default().unwrap_or(443);
            builder = builder.resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)));
        }
        if let Some(path) = ca {
            let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(&pem).context("parsing the CA")?,
            );
        }
        Ok(Self {
            clients: Arc::new(vec![builder.build().context("building the HTTP client")?]),
            base: base.trim_end_matches('/').to_owned(),
        })
    }
}

/// A user's `Authorization: Basic …` header value, computed once.
pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The admin API of one sluice.
#[derive(Debug, Clone)]
pub struct Admin {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// A tenant's quota, as the admin API takes it.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Quota {
    /// Requests per second.
    pub requests_per_second: u64,
    /// Bytes per second.
    pub bytes_per_second: u64,
    /// Burst, in seconds of rate.
    pub burst_seconds: u64,
}

impl Quota {
    /// High enough that no scenario meets it: throughput runs must
    /// measure sluice, not its limiter.
    pub fn unlimited() -> Self {
        Self {
            requests_per_second: 1_000_000,
            bytes_per_second: 10_000_000_000,
            burst_seconds: 10,
        }
    }
}

impl Admin {
    /// A client for the admin API at `base` with the bearer `token`.
    pub fn new(base: &str, token: &str) -> Result<Self> {
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                // A few provisioning calls, spread over a run: reusing an
                // idle connection races the admin listener's keep-alive
                // timeout ("connection closed before message completed").
                .pool_max_idle_per_host(0)
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("admin API {method} {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a tenant with its own quota.
    pub async fn create_tenant(&self, name: &str, quota: Quota) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            "/v1/tenants",
            Some(json!({"name": name, "quota": {
                "requests_per_second": quota.requests_per_second,
                "bytes_per_second": quota.bytes_per_second,
                "burst_seconds": quota.burst_seconds,
                "max_topics": 50,
                "max_partitions": 1000,
                // Scenarios measure throughput, not the per-tenant caps:
                // the fan-in alone uses 1,000 groups.
                "max_groups": 100_000,
                "max_concurrent_consumes": 100_000,
                "max_streams": 100_000,
            }})),
        )
        .await
        .map(drop)
    }

    /// Creates a user with read and write on the whole tenant; returns its
    /// password.
    pub async fn create_user(&self, tenant: &str, user: &str) -> Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/tenants/{tenant}/users"),
                Some(json!({"name": user, "grants": [{"prefix": format!("{tenant}."), "read": true, "write": true}]})),
            )
            .await?;
        v.get("password")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("the admin API answered no password")
    }

    /// Creates a topic.
    pub async fn create_topic(&self, tenant: &str, topic: &str, partitions: u32) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/tenants/{tenant}/topics"),
            Some(json!({"name": topic, "partitions": partitions})),
        )
        .await
        .map(drop)
    }

    /// Deletes a topic, from Kafka too (the call waits until every node
    /// has stopped reading it).
    pub async fn delete_topic(&self, tenant: &str, topic: &str) -> Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/tenants/{tenant}/topics/{topic}"),
            None,
        )
        .await
        .map(drop)
    }

    /// Enables a user that is already enabled: a change like any other,
    /// so every node drops the user's cached login and its next request
    /// verifies the password again, as when the cache entry expires.
    pub async fn drop_cached_login(&self, tenant: &str, user: &str) -> Result<()> {
        self.call(
            reqwest::Method::PATCH,
            &format!("/v1/tenants/{tenant}/users/{user}"),
            Some(json!({"disabled": false})),
        )
        .await
        .map(drop)
    }

    /// Messages of `tenant` that sluice served from its cache of recent
    /// messages (`sluice_consume_cache_messages_total`), so that a consume
    /// figure says how much of it Kafka served; 0 when the series is absent.
    pub async fn cached_messages(&self, tenant: &str) -> Result<u64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .context("GET /metrics")?
            .error_for_status()?
            .text()
            .await?;
        let series = format!("sluice_consume_cache_messages_total{{tenant=\"{tenant}\"}} ");
        Ok(text
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .map_or(0, |value| value as u64))
    }

    /// Deletes a tenant with its users and topics.
    pub async fn delete_tenant(&self, tenant: &str) -> Result<()> {
        self.call(
            reqwest::Method::DELETE,
            &format!("/v1/tenants/{tenant}?force=true"),
            None,
        )
        .await
        .map(drop)
    }
}
