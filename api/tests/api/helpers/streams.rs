//! Clients of the stream routes: an SSE reader over a real reqwest
//! response, and a WebSocket client over our own TLS connection (rustls
//! with the test CA, then tungstenite's handshake with Basic auth).

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt as _, Stream, StreamExt as _};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use super::{tls, TestApp};

/// One server-sent event (or comment).
#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    /// `message`, `shutdown`, `error`, or `comment` for a `:` line.
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).expect("an event's data is JSON")
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<actix_web::web::Bytes>> + Send>>;

/// An open SSE response, read event by event.
pub struct SseStream {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    body: Body,
    buffer: String,
}

impl SseStream {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        }
    }

    /// The next event or comment, or `None` at the end of the stream or
    /// after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if let Some(event) = parse_block(&block) {
                    return Some(event);
                }
                continue;
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return None,
            }
        }
    }

    /// The next `event: message`, skipping comments; `None` after
    /// `timeout` or at any other event.
    pub async fn next_message(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            match event.event.as_str() {
                "comment" => continue,
                "message" => return Some(event),
                _ => return None,
            }
        }
    }

    /// Reads until a non-comment event that is not a message: how the
    /// stream ended.
    pub async fn ending(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self.next(left).await?;
            if event.event != "comment" && event.event != "message" {
                return Some(event);
            }
        }
    }
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        event: "message".into(),
        ..SseEvent::default()
    };
    let mut fields = 0;
    for line in block.lines() {
        if let Some(comment) = line.strip_prefix(':') {
            if fields == 0 {
                event.event = "comment".into();
                event.data = comment.trim().to_owned();
                fields += 1;
            }
        } else if let Some(v) = line.strip_prefix("event: ") {
            event.event = v.to_owned();
            fields += 1;
        } else if let Some(v) = line.strip_prefix("id: ") {
            event.id = Some(v.to_owned());
            fields += 1;
        } else if let Some(v) = line.strip_prefix("data: ") {
            event.data.push_str(v);
            fields += 1;
        } else if line.starts_with("retry: ") {
            continue;
        }
    }
    (fields > 0).then_some(event)
}

/// A reqwest client for streams: TLS with the test CA and no overall
/// timeout (a stream lasts as long as it likes).
pub fn stream_client(local: Option<IpAddr>) -> reqwest::Client {
    let ca =
        reqwest::Certificate::from_pem(tls::certs().ca_pem.as_bytes()).expect("the test CA parses");
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .connect_timeout(Duration::from_secs(10))
        .http1_only();
    if let Some(local) = local {
        builder = builder
            .local_address(local)
            .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    builder.build().expect("TLS client")
}

/// A WebSocket connection to a node, over TLS.
pub struct WsClient {
    ws: WebSocketStream<TlsStream<TcpStream>>,
}

/// How a WebSocket connection ended: its close code and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl WsClient {
    /// Sends a JSON text frame.
    pub async fn send(&mut self, frame: &Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("the frame is sent");
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("the frame is sent");
    }

    /// The next JSON text frame (pings are answered by tungstenite), or
    /// `Err` with how the connection closed, or `Ok(None)` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Result<Option<Value>, Closed> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => {
                    return Err(Closed {
                        code: 1006,
                        reason: "gone".into(),
                    })
                }
                Ok(Some(Err(err))) => {
                    return Err(Closed {
                        code: 1006,
                        reason: err.to_string(),
                    })
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Ok(Some(serde_json::from_str(&text).expect("frames are JSON")))
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Err(frame.map_or(
                        Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f| Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        },
                    ))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Reads frames until the connection closes (or `timeout`), returning
    /// how it closed.
    pub async fn closed(&mut self, timeout: Duration) -> Option<Closed> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(closed) => return Some(closed),
            }
        }
    }

    /// Closes from the client side.
    pub async fn close(mut self) {
        let _ = self
            .ws
            .close(Some(tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
    }
}

/// Opens `wss://localhost:<port>/topic/{topic}/ws?{query}` from `local`
/// (127.0.0.1 unless given). `Err` carries the HTTP status of a refused
/// upgrade and its body.
pub async fn connect_ws(
    public_url: &str,
    (user, password): (&str, &str),
    topic: &str,
    query: &str,
    local: Option<IpAddr>,
) -> Result<WsClient, (u16, String)> {
    let port: u16 = public_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the public URL has a port");
    let socket = match local {
        Some(local) => {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(std::net::SocketAddr::new(local, 0)).unwrap();
            socket
                .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
                .await
                .expect("connect")
        }
        None => TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect"),
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut tls::certs().ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, socket).await.expect("TLS");
    let url = format!("wss://localhost:{port}/topic/{topic}/ws?{query}");
    let mut request = url.into_client_request().unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    request
        .headers_mut()
        .insert("authorization", format!("Basic {basic}").parse().unwrap());
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((ws, _)) => Ok(WsClient { ws }),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err((status, body))
        }
        Err(err) => Err((0, err.to_string())),
    }
}

impl TestApp {
    /// `GET /topic/{topic}/stream?{query}` with `Accept: text/event-stream`.
    pub async fn open_sse(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        query: &str,
    ) -> SseStream {
        self.open_sse_from(None, user, password, topic, query).await
    }

    /// [`TestApp::open_sse`] from another loopback address.
    pub async fn open_sse_from(
        &self,
        local: Option<IpAddr>,
        user: &str,
        password: &str,
        topic: &str,
        query: &str,
    ) -> SseStream {
        let response = stream_client(local)
            .get(format!("{}/topic/{topic}/stream?{query}", self.public_url))
            .basic_auth(user, Some(password))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("the data plane answers");
        SseStream::new(response)
    }

    /// `GET /topic/{topic}/ws?{query}`, upgraded.
    pub async fn open_ws(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        query: &str,
    ) -> Result<WsClient, (u16, String)> {
        connect_ws(&self.public_url, (user, password), topic, query, None).await
    }
}
