//! The node's own sections: `tls.*`, `database.*`, `admin.*` and `log.*`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::setting::{self, invalid, Invalid};

/// Minimum length of the admin token: anything shorter is guessable.
pub const MIN_ADMIN_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// `false` serves plain HTTP, for deployments behind a TLS-terminating
    /// balancer; a warning is logged.
    pub enabled: bool,
    /// PEM certificate chain; re-read on SIGHUP.
    pub cert: Option<PathBuf>,
    /// PEM private key; re-read on SIGHUP.
    pub key: Option<PathBuf>,
}

/// The certificate and key of an enabled TLS listener, checked at boot.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsSettings {
    /// The files to serve TLS with, or `None` for plain HTTP. The one
    /// place that knows both must be set while TLS is on.
    pub fn files(&self) -> Result<Option<TlsFiles>, Invalid> {
        if !self.enabled {
            return Ok(None);
        }
        let cert = self
            .cert
            .clone()
            .ok_or_else(|| invalid("tls.cert", "must be set while tls.enabled is true"))?;
        let key = self
            .key
            .clone()
            .ok_or_else(|| invalid("tls.key", "must be set while tls.enabled is true"))?;
        Ok(Some(TlsFiles { cert, key }))
    }

    /// The section's rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(files) = self.files()? {
            for (key, path) in [("tls.cert", &files.cert), ("tls.key", &files.key)] {
                if !path.is_file() {
                    return Err(invalid(
                        key,
                        format!("{} is not a readable file", path.display()),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Postgres URL. Secret, because it usually carries a password.
    pub url: SecretString,
    pub max_connections: u32,
    /// How long a request waits for a pooled connection before it gets
    /// 503 `database_unavailable`.
    #[serde(
        default = "setting::ms::<3000>",
        deserialize_with = "setting::millis",
        alias = "acquire_timeout_ms"
    )]
    pub acquire_timeout: Duration,
}

impl DatabaseSettings {
    /// The section's rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        let url = self.url.expose_secret();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(invalid("database.url", "must be a postgres:// URL"));
        }
        if self.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.acquire_timeout.is_zero() {
            return Err(invalid("database.acquire_timeout", "must be at least 1ms"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// The admin plane's own address; loopback by default so that it is
    /// never exposed by accident.
    pub listen: SocketAddr,
    /// The bearer token of the admin API. Required: there is no default.
    #[serde(default, deserialize_with = "setting::secret_text")]
    pub token: Option<SecretString>,
    /// When set, `GET /metrics` requires it (or the admin token) as a
    /// bearer token, so that a scraper holds a secret that can read
    /// metrics and nothing else. Unset, `/metrics` is open to whoever
    /// reaches the admin listener.
    #[serde(default, deserialize_with = "setting::secret_text")]
    pub metrics_token: Option<SecretString>,
}

impl AdminSettings {
    /// The section's rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(token) = &self.token {
            if token.expose_secret().len() < MIN_ADMIN_TOKEN_LEN {
                return Err(invalid(
                    "admin.token",
                    format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters"),
                ));
            }
        }
        if let Some(metrics) = &self.metrics_token {
            if metrics.expose_secret().len() < MIN_ADMIN_TOKEN_LEN {
                return Err(invalid(
                    "admin.metrics_token",
                    format!("must be at least {MIN_ADMIN_TOKEN_LEN} characters"),
                ));
            }
            if self
                .token
                .as_ref()
                .is_some_and(|admin| admin.expose_secret() == metrics.expose_secret())
            {
                return Err(invalid(
                    "admin.metrics_token",
                    "must differ from admin.token: a scraper's token must not open the admin API",
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for development.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `sluice=debug,info`. `RUST_LOG`
    /// wins when set.
    pub level: String,
}

impl LogSettings {
    /// The section's rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        tracing_subscriber::EnvFilter::try_new(&self.level)
            .map(|_| ())
            .map_err(|e| invalid("log.level", e.to_string()))
    }
}
