//! `Idempotency-Key` on produce, end to end over TLS: replays, reuse,
//! malformed keys, concurrency, dropped connections, faults, expiry,
//! tenant isolation and a flood of unique keys from another tenant.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::ClientConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;

use crate::helpers::kafka::read_back;
use crate::helpers::{assert_error, data_client_from, tls, unique_tenant, TestApp};

/// How many messages partition 0 of `topic` holds.
fn copies(bootstrap: &str, topic: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let (low, high) = consumer
        .fetch_watermarks(topic, 0, Duration::from_secs(10))
        .unwrap();
    high - low
}

fn replayed(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("idempotency-replayed")
        .is_some_and(|v| v == "true")
}

async fn json_of(response: reqwest::Response) -> (StatusCode, bool, Value) {
    let status = response.status();
    let again = replayed(&response);
    (status, again, response.json().await.unwrap())
}

#[tokio::test]
async fn a_repeated_key_gets_the_first_answer_with_the_same_offsets_and_a_replayed_header_and_nothing_is_produced_again(
) {
    let app = TestApp::spawn().await;
    let (_tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let body = r#"[{"Value":"one"},{"Value":"two"}]"#;

    let (status, again, first) = json_of(
        app.produce_with_key(&user, &password, &topic, "order-42", body)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert!(!again);
    for _ in 0..3 {
        let (status, again, repeat) = json_of(
            app.produce_with_key(&user, &password, &topic, "order-42", body)
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(again, "a replay says so");
        assert_eq!(repeat, first);
    }
    assert_eq!(copies(&app.bootstrap, &topic), 2);
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_a_422_idempotency_key_reused() {
    let app = TestApp::spawn().await;
    let (_tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let first = app
        .produce_with_key(&user, &password, &topic, "k1", r#"[{"Value":"a"}]"#)
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let other = app
        .produce_with_key(&user, &password, &topic, "k1", r#"[{"Value":"b"}]"#)
        .await;
    assert_error(
        other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(copies(&app.bootstrap, &topic), 1);
}

#[tokio::test]
async fn a_malformed_key_is_a_400_invalid_idempotency_key_and_nothing_is_produced() {
    let app = TestApp::spawn().await;
    let (_tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let too_long = "k".repeat(256);
    for key in ["", "has space", too_long.as_str()] {
        let response = app
            .produce_with_key(&user, &password, &topic, key, r#"[{"Value":"a"}]"#)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    }
    let non_ascii = app
        .data
        .post(format!("{}/topic/{topic}", app.public_url))
        .basic_auth(&user, Some(&password))
        .header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        )
        .body(r#"[{"Value":"a"}]"#)
        .send()
        .await
        .unwrap();
    assert_error(
        non_ascii,
        StatusCode::BAD_REQUEST,
        "invalid_idempotency_key",
    )
    .await;
    let longest = "k".repeat(255);
    let response = app
        .produce_with_key(&user, &password, &topic, &longest, r#"[{"Value":"a"}]"#)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(copies(&app.bootstrap, &topic), 1);
}

#[tokio::test]
async fn a_client_that_drops_its_connection_after_sending_then_retries_with_the_same_key_leaves_exactly_one_copy_in_kafka(
) {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let body = r#"[{"Value":"dropped-then-retried"}]"#;

    // A raw TLS connection: the whole request, then gone without reading.
    let port: u16 = app.public_url.rsplit(':').next().unwrap().parse().unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    let tcp = socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
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
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut stream = TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let request = format!(
        "POST /topic/{topic} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/json\r\nIdempotency-Key: drop-1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    // Gone as soon as the server has taken the key, without reading a byte
    // of the answer: the client timed out, or crashed.
    let row = |tenant: String| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, Option<i16>>(
                "SELECT status FROM idempotency_keys WHERE tenant = $1 AND key = 'drop-1'",
            )
            .bind(tenant)
            .fetch_optional(&db)
            .await
            .unwrap()
        }
    };
    let started = Instant::now();
    while row(tenant.clone()).await.is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "never claimed");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    drop(stream);

    // The server carries on without the client: its answer is recorded.
    while row(tenant.clone()).await != Some(Some(200)) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, again, answer) = json_of(
        app.produce_with_key(&user, &password, &topic, "drop-1", body)
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(again, "the retry got the first request's answer: {answer}");
    assert_eq!(answer["offsets"][0]["Offset"], 0);
    let stored = read_back(&app.bootstrap, &topic, 1, 1);
    assert_eq!(
        stored[0].value.as_deref(),
        Some(&b"dropped-then-retried"[..])
    );
    assert_eq!(copies(&app.bootstrap, &topic), 1, "exactly one copy");
}

#[tokio::test]
async fn concurrent_requests_with_the_same_key_on_two_nodes_produce_once_and_all_get_the_same_offsets(
) {
    let app = TestApp::spawn().await;
    let other = TestApp::spawn_node(&app).await;
    let (_tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let body = r#"[{"Value":"once"}]"#;
    let mut requests = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { &app } else { &other };
        requests.push(node.produce_with_key(&user, &password, &topic, "same", body));
    }
    let answers = futures::future::join_all(requests).await;
    let mut bodies = Vec::new();
    let mut fresh = 0;
    for response in answers {
        let (status, again, body) = json_of(response).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        fresh += usize::from(!again);
        bodies.push(body);
    }
    assert_eq!(fresh, 1, "one request produced, the others got its answer");
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(copies(&app.bootstrap, &topic), 1);
}

#[tokio::test]
async fn keys_are_per_tenant_so_another_tenant_with_the_same_key_produces_its_own_message() {
    let app = TestApp::spawn().await;
    let (_a, a_topic, a_user, a_password) = app.tenant_with_topic(1).await;
    let (_b, b_topic, b_user, b_password) = app.tenant_with_topic(1).await;
    let body = r#"[{"Value":"x"}]"#;
    let a = app
        .produce_with_key(&a_user, &a_password, &a_topic, "shared-key", body)
        .await;
    assert_eq!(a.status(), StatusCode::OK);
    let b = app
        .produce_with_key(&b_user, &b_password, &b_topic, "shared-key", body)
        .await;
    assert_eq!(b.status(), StatusCode::OK);
    assert!(!replayed(&b), "tenant A's key never replays for tenant B");
    assert_eq!(copies(&app.bootstrap, &b_topic), 1);
    // B's own repeat replays B's answer, not A's.
    let b_again = app
        .produce_with_key(&b_user, &b_password, &b_topic, "shared-key", body)
        .await;
    assert!(replayed(&b_again));
}

#[tokio::test]
async fn a_claim_held_by_a_node_that_died_answers_409_in_flight_until_it_expires_then_the_key_works_again(
) {
    let app = TestApp::spawn_with(|f| f.merge(("produce.timeout_ms", 2000))).await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let body = r#"[{"Value":"x"}]"#;
    let first = app
        .produce_with_key(&user, &password, &topic, "held", body)
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    // Make the record look like a produce in flight on a node that died.
    sqlx::query(
        "UPDATE idempotency_keys SET status = NULL, response = NULL,
         claim = gen_random_uuid(), claimed_until = now() + interval '3 seconds'
         WHERE tenant = $1 AND key = 'held'",
    )
    .bind(&tenant)
    .execute(&app.db)
    .await
    .unwrap();
    let started = Instant::now();
    let waited = app
        .produce_with_key(&user, &password, &topic, "held", body)
        .await;
    let elapsed = started.elapsed();
    assert_error(waited, StatusCode::CONFLICT, "idempotency_key_in_flight").await;
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(5),
        "waited {elapsed:?} with a 2 s produce deadline"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let retried = app
        .produce_with_key(&user, &password, &topic, "held", body)
        .await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert!(!replayed(&retried), "the expired claim was taken over");
}

#[tokio::test]
async fn an_expired_key_is_purged_in_the_background_and_produces_again() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("produce.idempotency_ttl_seconds", 1))
            .merge(("produce.idempotency_purge_interval_ms", 100))
    })
    .await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let body = r#"[{"Value":"x"}]"#;
    let first = app
        .produce_with_key(&user, &password, &topic, "ttl", body)
        .await;
    assert_eq!(first.status(), StatusCode::OK);
    let started = Instant::now();
    loop {
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE tenant = $1")
                .bind(&tenant)
                .fetch_one(&app.db)
                .await
                .unwrap();
        if rows == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = app
        .produce_with_key(&user, &password, &topic, "ttl", body)
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert!(!replayed(&again));
    assert_eq!(copies(&app.bootstrap, &topic), 2);
}

#[tokio::test]
async fn a_503_or_504_with_the_broker_down_is_not_recorded_and_a_retry_with_the_key_produces_once()
{
    let mock = MockCluster::new(1).unwrap();
    let tenant = unique_tenant();
    let topic = format!("{tenant}.orders");
    mock.create_topic(&topic, 1, 1).unwrap();
    let servers = mock.bootstrap_servers();
    let app = TestApp::spawn_with(move |f| {
        f.merge(("kafka.bootstrap_servers", servers))
            .merge(("produce.timeout_ms", 3000))
            .merge(("kafka.request_timeout_ms", 1000))
    })
    .await;
    app.create_tenant(&tenant).await;
    let (user, password) = app.rw_user(&tenant).await;
    let warm = app
        .produce(&user, &password, &topic, r#"[{"Value":"w"}]"#)
        .await;
    assert_eq!(warm.status(), StatusCode::OK);

    mock.broker_down(1).unwrap();
    let body = r#"[{"Value":"x"}]"#;
    let failed = app
        .produce_with_key(&user, &password, &topic, "outage", body)
        .await;
    let status = failed.status();
    assert!(
        status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::GATEWAY_TIMEOUT,
        "got {status}"
    );
    assert!(!replayed(&failed));
    mock.broker_up(1).unwrap();

    let started = Instant::now();
    let answer = loop {
        let response = app
            .produce_with_key(&user, &password, &topic, "outage", body)
            .await;
        // The first attempt goes on to its delivery reports after its 5xx:
        // if its message landed, the retry replays that 200. A 5xx itself
        // is never replayed.
        assert!(
            !replayed(&response) || response.status() == StatusCode::OK,
            "a 5xx is never replayed"
        );
        if response.status() == StatusCode::OK {
            break response.json::<Value>().await.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "no recovery");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // Once it succeeded, the answer is recorded and replayed.
    let again = app
        .produce_with_key(&user, &password, &topic, "outage", body)
        .await;
    assert!(replayed(&again));
    assert_eq!(again.json::<Value>().await.unwrap(), answer);
    let stored = read_back(&mock.bootstrap_servers(), &topic, 1, 2);
    let copies_of_x = stored
        .iter()
        .filter(|m| m.value.as_deref() == Some(&b"x"[..]))
        .count();
    assert_eq!(copies_of_x, 1, "{stored:?}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

/// The victim's keyed produces for `length`: (latencies, failures).
async fn victim_keyed_produces(
    app: &TestApp,
    (user, password): (&str, &str),
    topic: &str,
    prefix: &str,
    length: Duration,
) -> (Vec<Duration>, Vec<String>) {
    let (mut latencies, mut failures) = (Vec::new(), Vec::new());
    let ends = Instant::now() + length;
    let mut i = 0;
    while Instant::now() < ends {
        let body = json!([{ "Value": format!("{prefix}{i}") }]).to_string();
        let started = Instant::now();
        let response = app
            .produce_with_key(user, password, topic, &format!("{prefix}{i}"), &body)
            .await;
        latencies.push(started.elapsed());
        if response.status() != StatusCode::OK || replayed(&response) {
            failures.push(format!(
                "{}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ));
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies.sort();
    (latencies, failures)
}

/// Tenant A floods keyed produces with unique keys from other client
/// addresses, far past the per-tenant key cap; tenant B's keyed produces
/// keep succeeding about as fast as alone, B's keys keep replaying, and A
/// holds no more than its cap once the purge has run.
#[tokio::test]
async fn a_tenant_flooding_unique_keys_keeps_only_its_cap_and_never_slows_or_evicts_another_tenants_keys(
) {
    let cap = 300u64;
    let app = TestApp::spawn_with(move |f| {
        f.merge(("produce.idempotency_max_keys", cap))
            .merge(("produce.idempotency_purge_interval_ms", 200))
            .merge(("database.max_connections", 10))
    })
    .await;
    let quota = json!({ "requests_per_second": 10_000, "bytes_per_second": 1u64 << 30 });
    let (attacker, a_user, a_password) = app.tenant_with_quota(quota.clone()).await;
    let (victim, b_user, b_password) = app.tenant_with_quota(quota).await;
    let a_topic = format!("{attacker}.flood");
    let b_topic = format!("{victim}.orders");
    app.create_topic(&attacker, &a_topic, 1).await;
    app.create_topic(&victim, &b_topic, 1).await;

    victim_keyed_produces(
        &app,
        (&b_user, &b_password),
        &b_topic,
        "warm",
        Duration::from_millis(500),
    )
    .await;
    let (alone, failures) = victim_keyed_produces(
        &app,
        (&b_user, &b_password),
        &b_topic,
        "alone",
        Duration::from_secs(4),
    )
    .await;
    assert!(failures.is_empty(), "{failures:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    for i in 0..16u8 {
        let client = data_client_from(IpAddr::from([127, 0, 0, 2 + i % 4]));
        let (url, user, password, stop, sent) = (
            format!("{}/topic/{a_topic}", app.public_url),
            a_user.clone(),
            a_password.clone(),
            stop.clone(),
            sent.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let _ = client
                    .post(&url)
                    .basic_auth(&user, Some(&password))
                    .header(
                        "idempotency-key",
                        format!("flood-{i}-{n}-{}", "x".repeat(200)),
                    )
                    .body(r#"[{"Value":"f"}]"#)
                    .send()
                    .await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (attacked, failures) = victim_keyed_produces(
        &app,
        (&b_user, &b_password),
        &b_topic,
        "attacked",
        Duration::from_secs(6),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for attacker in attackers {
        attacker.await.unwrap();
    }
    let flood = sent.load(Ordering::Relaxed);
    let (p99_alone, p99_attacked) = (percentile(&alone, 0.99), percentile(&attacked, 0.99));
    eprintln!(
        "victim keyed produce p99: alone {p99_alone:?} ({} requests), under a flood of {flood} unique keys {p99_attacked:?} ({} requests)",
        alone.len(),
        attacked.len()
    );
    assert!(failures.is_empty(), "the victim failed: {failures:?}");
    assert!(
        flood > cap * 2,
        "the flood was too small to test the cap: {flood}"
    );
    assert!(
        p99_attacked < p99_alone * 5 + Duration::from_millis(250),
        "victim p99 {p99_attacked:?} under attack vs {p99_alone:?} alone"
    );

    // The purge brings the attacker down to its cap; the victim (under
    // it) keeps every key and each still replays.
    let started = Instant::now();
    loop {
        let rows: i64 =
            sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE tenant = $1")
                .bind(&attacker)
                .fetch_one(&app.db)
                .await
                .unwrap();
        if rows as u64 <= cap {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{rows} keys left over a cap of {cap}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let repeat = app
        .produce_with_key(
            &b_user,
            &b_password,
            &b_topic,
            "alone0",
            r#"[{"Value":"alone0"}]"#,
        )
        .await;
    assert!(replayed(&repeat), "the victim's oldest key was kept");
}
