//! Clients of sluice's stream routes (issue 15): an SSE reader over a
//! reqwest response and a WebSocket client over our own TLS connection
//! (rustls with the run's CA, then tungstenite's handshake with Basic auth
//! on the upgrade request). They count and pick apart as little as they
//! can: the load generator shares the machine with sluice, so every CPU
//! cycle spent here is one sluice does not get.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// A client for SSE streams: the run's CA, HTTP/1.1 (one stream per
/// connection, as browsers and most SSE clients do) and no overall
/// timeout, since a stream lasts as long as the reader wants; `local`
/// picks the source address, so that many streams can be spread over
/// loopback addresses below the per-address connection cap.
pub fn sse_client(base: &str, ca: Option<&Path>, local: Option<IpAddr>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .http1_only()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0);
    if let Some(path) = ca {
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        builder = builder
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).context("parsing the CA")?);
    }
    if let Some(local) = local {
        builder = builder.local_address(local);
        // A socket bound to an IPv4 address cannot reach ::1.
        let url = reqwest::Url::parse(base).with_context(|| format!("parsing {base}"))?;
        if url.host_str() == Some("localhost") {
            let port = url.port_or_known_default().unwrap_or(443);
            builder = builder.resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }
    builder.build().context("building the SSE client")
}

/// Whether `base` names this machine, so that connections may leave from
/// other loopback addresses.
pub fn is_loopback(base: &str) -> bool {
    reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| h == "localhost" || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()))
}

type Body = std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// An open SSE response, read as complete events.
pub struct SseReader {
    body: Body,
    pending: Vec<u8>,
}

impl std::fmt::Debug for SseReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseReader")
            .field("pending", &self.pending.len())
            .finish()
    }
}

/// What one read of an SSE stream brought.
#[derive(Debug)]
pub enum SseRead {
    /// Complete events (the text up to and including the last blank
    /// line), possibly only comments.
    Events(Vec<u8>),
    /// Nothing within the timeout.
    Idle,
    /// The server ended the stream (or the connection failed).
    Ended,
}

impl SseReader {
    /// Opens `GET {base}/topic/{topic}/stream?{query}`; `Err` says how a
    /// refusal answered (status and body).
    pub async fn open(
        client: &reqwest::Client,
        base: &str,
        auth: &str,
        topic: &str,
        query: &str,
    ) -> Result<Self, (u16, String)> {
        let response = client
            .get(format!("{base}/topic/{topic}/stream?{query}"))
            .header("authorization", auth)
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| (0, e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err((status.as_u16(), body));
        }
        Ok(Self {
            body: Box::pin(response.bytes_stream()),
            pending: Vec::new(),
        })
    }

    /// Waits up to `timeout` for at least one complete event or comment.
    pub async fn read(&mut self, timeout: Duration) -> SseRead {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = last_blank_line(&self.pending) {
                let rest = self.pending.split_off(end);
                return SseRead::Events(std::mem::replace(&mut self.pending, rest));
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Err(_) => return SseRead::Idle,
                Ok(Some(Ok(chunk))) => self.pending.extend_from_slice(&chunk),
                Ok(_) => return SseRead::Ended,
            }
        }
    }
}

/// Just past the last `\n\n` of `buf`: where its complete events end.
fn last_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(2).rposition(|w| w == b"\n\n").map(|i| i + 2)
}

/// `event: message` lines in complete events.
pub fn count_events(events: &[u8]) -> u64 {
    const NEEDLE: &[u8] = b"event: message\n";
    events
        .windows(NEEDLE.len())
        .filter(|w| *w == NEEDLE)
        .count() as u64
}

/// The `data:` of each `event: message` in complete events.
pub fn message_data(events: &[u8]) -> impl Iterator<Item = &[u8]> {
    events
        .split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"data: "))
}

/// Where WebSocket connections go: the listener's address, its TLS name and
/// the run's CA.
#[derive(Clone)]
pub struct WsTarget {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    server: SocketAddr,
    host: String,
}

impl std::fmt::Debug for WsTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsTarget")
            .field("server", &self.server)
            .field("host", &self.host)
            .finish()
    }
}

/// One upgraded connection.
pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

impl WsTarget {
    /// The public listener at `base` (`https://host:port`; `localhost`
    /// means 127.0.0.1), trusting `ca` (the system roots are not loaded:
    /// the load test runs against its own CA).
    pub fn new(base: &str, ca: Option<&Path>) -> Result<Self> {
        let url = reqwest::Url::parse(base).with_context(|| format!("parsing {base}"))?;
        let host = url.host_str().context("the URL has no host")?.to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let ip: IpAddr = if host == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            host.parse()
                .with_context(|| format!("WebSocket runs need an IP or localhost, not {host}"))?
        };
        let Some(ca) = ca else {
            bail!("WebSocket runs need --ca");
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
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            server_name: ServerName::try_from(host.clone()).context("TLS server name")?,
            server: SocketAddr::new(ip, port),
            host: format!("{host}:{port}"),
        })
    }

    /// Opens `wss://…/topic/{topic}/ws?{query}` with `auth` on the upgrade
    /// request; `Err` carries a refused upgrade's status (0 without one)
    /// and body.
    pub async fn connect(&self, auth: &str, topic: &str, query: &str) -> Result<Ws, (u16, String)> {
        let failed = |e: &dyn std::fmt::Display| (0, e.to_string());
        let socket = TcpStream::connect(self.server)
            .await
            .map_err(|e| failed(&e))?;
        let _ = socket.set_nodelay(true);
        let stream = self
            .connector
            .connect(self.server_name.clone(), socket)
            .await
            .map_err(|e| failed(&e))?;
        let mut request = format!("wss://{}/topic/{topic}/ws?{query}", self.host)
            .into_client_request()
            .map_err(|e| failed(&e))?;
        request
            .headers_mut()
            .insert("authorization", auth.parse().map_err(|e| failed(&e))?);
        match tokio_tungstenite::client_async(request, stream).await {
            Ok((ws, _)) => Ok(ws),
            Err(tungstenite::Error::Http(response)) => {
                let status = response.status().as_u16();
                let body = response
                    .body()
                    .as_ref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default();
                Err((status, body))
            }
            Err(e) => Err(failed(&e)),
        }
    }
}

/// What a server text frame is, found without parsing the JSON.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A batch: its receipt (none in auto mode) and message count.
    Batch {
        /// The receipt to ack.
        receipt: Option<&'a str>,
        /// Messages in it, counted by their offsets.
        messages: u64,
    },
    /// `{"acked":…}` or `{"nacked":…}`.
    Settled,
    /// `{"error":…}`.
    Error,
}

/// Classifies a server frame (`{"receipt":"…","messages":[…]}`,
/// `{"acked":"…"}`, `{"error":{…}}`); receipts are base64-ish text with no
/// quotes or escapes.
pub fn classify(text: &str) -> Frame<'_> {
    if text.starts_with("{\"error\"") {
        return Frame::Error;
    }
    if !text.contains("\"messages\"") {
        return Frame::Settled;
    }
    const RECEIPT: &str = "\"receipt\":\"";
    let receipt = text.find(RECEIPT).and_then(|at| {
        let rest = &text[at + RECEIPT.len()..];
        rest.find('"').map(|end| &rest[..end])
    });
    const OFFSET: &str = "\"Offset\":";
    Frame::Batch {
        receipt,
        messages: text.matches(OFFSET).count() as u64,
    }
}

/// Sends `{"ack":"<receipt>"}`.
pub async fn ack(ws: &mut Ws, receipt: &str) -> Result<(), tungstenite::Error> {
    ws.send(Message::text(format!("{{\"ack\":\"{receipt}\"}}")))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_events_are_cut_at_the_last_blank_line_and_counted() {
        let text = b"retry: 1000\n: connected\n\nevent: message\nid: 0-1\ndata: {\"Value\":\"a\"}\n\nevent: message\nid: 1-2\ndata: {\"Va";
        let end = last_blank_line(text).unwrap();
        assert_eq!(count_events(&text[..end]), 1);
        let data: Vec<&[u8]> = message_data(&text[..end]).collect();
        assert_eq!(data, vec![&b"{\"Value\":\"a\"}"[..]]);
        assert_eq!(last_blank_line(b"event: message\n"), None);
    }

    #[test]
    fn frames_are_told_apart_without_parsing() {
        assert_eq!(
            classify(r#"{"receipt":"r1.x","messages":[{"Offset":1},{"Offset":2}]}"#),
            Frame::Batch {
                receipt: Some("r1.x"),
                messages: 2
            }
        );
        assert_eq!(
            classify(r#"{"messages":[{"Offset":1}]}"#),
            Frame::Batch {
                receipt: None,
                messages: 1
            }
        );
        assert_eq!(classify(r#"{"acked":"r1.x"}"#), Frame::Settled);
        assert_eq!(
            classify(r#"{"error":{"code":"invalid_frame","message":"no"}}"#),
            Frame::Error
        );
    }

    #[test]
    fn loopback_urls_are_recognised() {
        assert!(is_loopback("https://localhost:8443"));
        assert!(is_loopback("https://127.0.0.1:8443"));
        assert!(!is_loopback("https://sluice.example.com"));
    }
}
