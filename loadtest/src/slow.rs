//! Slow connections: a TLS connection from a chosen local address that
//! sends a request's headers declaring a body, then nothing, and waits for
//! the server to close it. Built on a raw socket, since an HTTP client
//! would neither hold a connection it got an answer on nor say when the
//! server closed it.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::engine::{Op, Outcome, Status};

/// Where and how to open slow connections.
#[derive(Clone)]
pub struct SlowConnections {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    server: SocketAddr,
    local: IpAddr,
    request: Arc<Vec<u8>>,
}

impl SlowConnections {
    /// Slow connections from `local` to the public listener at `base`
    /// (`https://host:port`, a `localhost` host meaning 127.0.0.1), each
    /// sending `GET {path}` with `Content-Length: {declared}` and no body.
    pub fn new(base: &str, ca: &Path, local: IpAddr, path: &str, declared: usize) -> Result<Self> {
        let url = reqwest::Url::parse(base).with_context(|| format!("parsing {base}"))?;
        let host = url.host_str().context("the URL has no host")?.to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let ip: IpAddr = if host == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            host.parse()
                .with_context(|| format!("slow connections need an IP or localhost, not {host}"))?
        };
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        let mut roots = RootCertStore::empty();
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            roots
                .add(cert.context("parsing the CA")?)
                .context("adding the CA")?;
        }
        let mut config =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .context("TLS versions")?
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
        );
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name: ServerName::try_from(host).context("server name")?,
            server: SocketAddr::new(ip, port),
            local,
            request: Arc::new(request.into_bytes()),
        })
    }

    /// One connection, from connect to the server closing it. `Ok` never
    /// happens: a connection closed without an answer is
    /// `closed, no answer`, one answered and then closed is its status,
    /// and one the client could not open is `connect` or `tls` (after a
    /// pause, so that a refusing server is not spun against).
    pub fn op(&self) -> Op {
        let this = self.clone();
        Arc::new(move |_, _| {
            let this = this.clone();
            async move {
                let status = this.hold().await;
                if matches!(status, Status::Error("connect" | "tls")) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Outcome::failed(status)
            }
            .boxed()
        })
    }

    async fn hold(&self) -> Status {
        let socket = match self.local {
            IpAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            IpAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        };
        let Ok(socket) = socket else {
            return Status::Error("connect");
        };
        if socket.bind(SocketAddr::new(self.local, 0)).is_err() {
            return Status::Error("connect");
        }
        let Ok(tcp) = socket.connect(self.server).await else {
            return Status::Error("connect");
        };
        let Ok(mut tls) = self.connector.connect(self.server_name.clone(), tcp).await else {
            return Status::Error("tls");
        };
        if tls.write_all(&self.request).await.is_err() || tls.flush().await.is_err() {
            return Status::Error("closed, no answer");
        }
        // Read until the server closes; remember the status of any answer.
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if head.len() < 32 {
                        head.extend_from_slice(&buf[..n]);
                    }
                }
            }
        }
        match parse_status(&head) {
            Some(code) => Status::Http(code),
            None => Status::Error("closed, no answer"),
        }
    }
}

/// The status code of `HTTP/1.1 408 …`.
fn parse_status(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_is_read_from_the_first_line_of_an_answer() {
        assert_eq!(parse_status(b"HTTP/1.1 408 Request Timeout\r\n"), Some(408));
        assert_eq!(parse_status(b"HTTP/1.0 200 OK\r\n\r\n"), Some(200));
        assert_eq!(parse_status(b""), None);
        assert_eq!(parse_status(b"\x15\x03\x03"), None);
    }
}
