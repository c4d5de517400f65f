//! Connection hygiene on the public listener: body deadlines, connection
//! caps, the idle keep-alive timeout, HTTP/2 stream caps and HTTP/2 413s.
//! Attackers connect from other loopback addresses with raw TLS sockets.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::helpers::{tls, TestApp};

const H1: &[&[u8]] = &[b"http/1.1"];
const H2: &[&[u8]] = &[b"h2"];

fn public_addr(app: &TestApp) -> SocketAddr {
    let port = app.public_url.rsplit(':').next().unwrap();
    SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap()))
}

fn tls_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut tls::certs().ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to the public listener from the loopback address
/// `local`.
async fn connect_from(
    app: &TestApp,
    local: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(local.parse().unwrap(), 0))?;
    let tcp = socket.connect(public_addr(app)).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    TlsConnector::from(tls_config(alpn))
        .connect(name, tcp)
        .await
}

/// Everything the server sends until it closes the connection (an error
/// counts as closed).
async fn read_until_closed(stream: &mut TlsStream<TcpStream>) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `GET /healthz` on an HTTP/1.1 connection and reads one answer.
async fn healthz_on(stream: &mut TlsStream<TcpStream>) -> std::io::Result<String> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("no answer within 5 s"))??;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A data-plane client whose connections come from `local`.
fn client_from(local: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(tls::certs().ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .local_address(local.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[tokio::test]
async fn two_hundred_connections_that_declare_a_body_and_send_none_are_closed_by_the_deadline_while_a_normal_client_is_served(
) {
    let deadline = Duration::from_millis(1500);
    let app = TestApp::spawn_with(|f| f.merge(("http.body_read_timeout_ms", 1500))).await;
    let (_tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let victim = client_from("127.0.0.1");
    let produce_url = format!("{}/topic/{topic}", app.public_url);
    let produce = |body: &'static str| {
        victim
            .post(&produce_url)
            .basic_auth(&user, Some(&password))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // The victim's login is done before the attack: the attack is on
    // connections, not on logins.
    assert_eq!(
        produce(r#"[{"Value":"before"}]"#).await.unwrap().status(),
        StatusCode::OK
    );

    let attack = futures::future::join_all((0..200).map(|i| {
        let app = &app;
        let topic = &topic;
        async move {
            let mut tls = connect_from(app, "127.0.0.3", H1).await.unwrap();
            let head = if i % 2 == 0 {
                format!(
                    "POST /topic/{topic} HTTP/1.1\r\nHost: localhost\r\n\
                     Content-Type: application/json\r\nContent-Length: 65536\r\n\r\n"
                )
            } else {
                "GET /healthz HTTP/1.1\r\nHost: localhost\r\nContent-Length: 65536\r\n\r\n"
                    .to_owned()
            };
            tls.write_all(head.as_bytes()).await.unwrap();
            let sent = Instant::now();
            let answer =
                tokio::time::timeout(Duration::from_secs(20), read_until_closed(&mut tls)).await;
            (sent.elapsed(), answer)
        }
    }));
    let served = async {
        let started = Instant::now();
        let mut latencies = Vec::new();
        while started.elapsed() < deadline + Duration::from_secs(2) {
            let sent = Instant::now();
            let response = produce(r#"[{"Value":"during"}]"#).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "the victim is served");
            latencies.push(sent.elapsed());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        latencies
    };
    let (attackers, latencies) = tokio::join!(attack, served);

    for (held, answer) in &attackers {
        let answer = answer
            .as_ref()
            .unwrap_or_else(|_| panic!("a connection was still open after {held:?}"));
        assert!(
            *held >= deadline - Duration::from_millis(300),
            "closed after {held:?}, before the deadline: {answer}"
        );
        assert!(
            *held < deadline + Duration::from_secs(5),
            "closed only after {held:?}"
        );
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 "),
            "{answer}"
        );
    }
    assert!(latencies.len() >= 5, "the victim sent too few requests");
    let slowest = latencies.iter().max().unwrap();
    let closed = attackers.iter().map(|(held, _)| *held);
    eprintln!(
        "attackers closed after {:?}..{:?}; victim: {} requests, slowest {slowest:?}",
        closed.clone().min().unwrap(),
        closed.max().unwrap(),
        latencies.len()
    );
    assert!(
        *slowest < Duration::from_secs(2),
        "the victim waited {slowest:?}"
    );
}

#[tokio::test]
async fn a_produce_whose_body_stops_coming_gets_408_body_timeout_and_its_connection_closed() {
    let app = TestApp::spawn_with(|f| f.merge(("http.body_read_timeout_ms", 1000))).await;
    let (_tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut tls = connect_from(&app, "127.0.0.3", H1).await.unwrap();
    let head = format!(
        "POST /topic/{topic} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {credentials}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{{\"Value\":"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let sent = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), read_until_closed(&mut tls))
        .await
        .expect("the connection is closed");
    assert!(sent.elapsed() >= Duration::from_millis(800), "{answer}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"body_timeout""#), "{answer}");
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_while_other_addresses_are_served() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("http.max_connections_per_address", 8))
            .merge(("http.keep_alive_timeout_ms", 30_000))
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut tls = connect_from(&app, "127.0.0.4", H1).await.unwrap();
        let answer = healthz_on(&mut tls).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        held.push(tls);
    }
    for _ in 0..4 {
        // The server shuts the socket down right after the handshake:
        // either the handshake fails or the request gets no answer.
        if let Ok(mut tls) = connect_from(&app, "127.0.0.4", H1).await {
            let _ = tls
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .await;
            let answer = tokio::time::timeout(Duration::from_secs(5), read_until_closed(&mut tls))
                .await
                .expect("an over-cap connection is closed at once");
            assert_eq!(answer, "", "an over-cap connection was answered");
        }
    }
    // Other clients are served: reqwest from 127.0.0.1 and raw from .5.
    let response = client_from("127.0.0.1")
        .get(format!("{}/healthz", app.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut other = connect_from(&app, "127.0.0.5", H1).await.unwrap();
    assert!(healthz_on(&mut other)
        .await
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    // The held connections are still served, and a closed one frees its slot.
    assert!(healthz_on(&mut held[0])
        .await
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    drop(held.pop());
    let started = Instant::now();
    loop {
        let mut tls = connect_from(&app, "127.0.0.4", H1).await.unwrap();
        match healthz_on(&mut tls).await {
            Ok(answer) if answer.starts_with("HTTP/1.1 200") => break,
            _ if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("the freed slot was not given back: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_body_over_the_limit_gets_its_json_413_over_http2() {
    let app = TestApp::spawn().await;
    let (_tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let mut body = tempfile::NamedTempFile::new().unwrap();
    body.write_all(&vec![b'x'; 30 * 1024 * 1024]).unwrap();
    let data = format!("@{}", body.path().display());
    let credentials = format!("{user}:{password}");
    let url = format!("{}/topic/{topic}", app.public_url);
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--http2", "--cacert"])
        .arg(&tls::certs().ca)
        .args(["-u", &credentials, "-H", "content-type: application/json"])
        .args([
            "--data-binary",
            &data,
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .arg(&url)
        .output()
        .await
        .expect("curl runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (json, status) = stdout.rsplit_once('\n').unwrap();
    assert_eq!(
        status,
        "413 2",
        "curl: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let error: Value = serde_json::from_str(json).unwrap();
    assert_eq!(error["code"], "payload_too_large");
    assert!(out.status.success(), "curl failed: {:?}", out.status);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout_on_http1_and_http2() {
    let app = TestApp::spawn_with(|f| f.merge(("http.keep_alive_timeout_ms", 1000))).await;

    let mut h1 = connect_from(&app, "127.0.0.6", H1).await.unwrap();
    assert!(healthz_on(&mut h1)
        .await
        .unwrap()
        .starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), read_until_closed(&mut h1))
        .await
        .expect("HTTP/1.1: the idle connection is closed");
    assert!(idle.elapsed() >= Duration::from_millis(700));

    let tls = connect_from(&app, "127.0.0.6", H2).await.unwrap();
    let (mut h2, connection) = h2::client::handshake(tls).await.unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("{}/healthz", app.public_url))
        .body(())
        .unwrap();
    let (response, _) = h2.send_request(request, true).unwrap();
    assert_eq!(response.await.unwrap().status(), 200);
    let idle = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), connection)
        .await
        .expect("HTTP/2: the idle connection is closed")
        .unwrap()
        .ok();
    assert!(idle.elapsed() >= Duration::from_millis(700));
}

#[tokio::test]
async fn requests_past_the_stream_cap_of_an_http2_connection_get_429_too_many_streams() {
    let app = TestApp::spawn_with(|f| f.merge(("http.max_streams_per_connection", 3))).await;
    let (_tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let credentials = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let tls = connect_from(&app, "127.0.0.7", H2).await.unwrap();
    let (h2, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let get = |path: String| {
        let mut h2 = h2.clone();
        let request = http::Request::get(format!("{}{path}", app.public_url))
            .header("authorization", &credentials)
            .body(())
            .unwrap();
        async move {
            h2 = h2.ready().await.unwrap();
            let (response, _) = h2.send_request(request, true).unwrap();
            let response = response.await.unwrap();
            let status = response.status();
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    // Three long polls fill the connection's streams.
    let polls = futures::future::join_all(
        (0..3).map(|i| get(format!("/topic/{topic}?wait=3000&group=g{i}"))),
    );
    let over = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let sent = Instant::now();
        let answer = get("/healthz".to_owned()).await;
        (sent.elapsed(), answer)
    };
    let (polls, (waited, (status, body))) = tokio::join!(polls, over);
    for (status, body) in &polls {
        assert_eq!(*status, 200, "{body}");
    }
    assert_eq!(status, 429, "{body}");
    assert!(body.contains(r#""code":"too_many_streams""#), "{body}");
    assert!(
        waited < Duration::from_secs(1),
        "the refusal took {waited:?}"
    );
    // Once the polls are answered, the connection serves again.
    let (status, body) = get("/healthz".to_owned()).await;
    assert_eq!(status, 200, "{body}");
    // Another connection of the same client was never limited by it.
    let response = client_from("127.0.0.7")
        .get(format!("{}/healthz", app.public_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
