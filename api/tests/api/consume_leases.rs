//! Leases: a GET holds no database connection while it reads Kafka, a
//! node that dies mid-read gives its partitions back when its lease
//! expires, claims are fair, a truncated log is not re-read, and large
//! topics are announced within NOTIFY's payload limit.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::mocking::MockCluster;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::PgListener;

use crate::helpers::process::BinaryNode;
use crate::helpers::victim::percentile;
use crate::helpers::{data_client_from, sample, unique_tenant, TestApp};

/// Produces `per_partition` numbered messages to each of `partitions`
/// partitions, in one request.
async fn fill_partitions(
    app: &TestApp,
    user: &str,
    password: &str,
    topic: &str,
    partitions: i32,
    per_partition: usize,
) {
    let body: Vec<Value> = (0..partitions)
        .flat_map(|p| {
            (0..per_partition).map(move |i| json!({ "Value": format!("{p}-{i}"), "Partition": p }))
        })
        .collect();
    let response = app
        .produce(user, password, topic, &Value::from(body).to_string())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

fn partitions_of(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["Partition"].as_i64().unwrap())
        .collect()
}

fn offsets_of(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["Offset"].as_i64().unwrap())
        .collect()
}

/// Tenant A runs many concurrent wide GETs against a broker that answers
/// every request half a second late, on a node with only 4 database
/// connections. Before leases each of those GETs held a connection for its
/// whole read and tenant B got 503 `database_unavailable`.
#[tokio::test]
async fn slow_wide_reads_of_one_tenant_never_drain_the_database_pool_for_another() {
    let mock = MockCluster::new(1).unwrap();
    let attacker = unique_tenant();
    let victim = unique_tenant();
    let slow = format!("{attacker}.slow");
    let quiet = format!("{victim}.quiet");
    mock.create_topic(&slow, 64, 1).unwrap();
    mock.create_topic(&quiet, 1, 1).unwrap();
    let servers = mock.bootstrap_servers();
    let app = TestApp::spawn_with(move |f| {
        f.merge(("kafka.bootstrap_servers", servers))
            .merge(("database.max_connections", 4))
            .merge(("consume.read_timeout_ms", 2000))
    })
    .await;
    app.post_tenant(&json!({ "name": attacker, "quota": { "requests_per_second": 10_000 } }))
        .await;
    app.create_tenant(&victim).await;
    let (a_user, a_password) = app.rw_user(&attacker).await;
    let (b_user, b_password) = app.rw_user(&victim).await;
    // Users of B who log in for the first time during the attack: each
    // login needs the database (and an argon2 check).
    let mut fresh = Vec::new();
    for i in 0..6 {
        let name = format!("{victim}.late{i}");
        let grants = json!([{ "prefix": format!("{victim}."), "read": true }]);
        let password = app.create_user(&victim, &name, grants).await;
        fresh.push((name, password));
    }
    fill_partitions(&app, &a_user, &a_password, &slow, 64, 1).await;
    // Both topics' watermarks and cursors are known before the broker slows.
    assert!(app
        .consume_ok(&b_user, &b_password, &quiet, "limit=1")
        .await
        .is_empty());
    app.consume_ok(&a_user, &a_password, &slow, "limit=1&group=warm")
        .await;
    mock.broker_round_trip_time(1, Duration::from_millis(500))
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let attack_client = data_client_from(IpAddr::from([127, 0, 0, 2]));
    let mut attackers = Vec::new();
    for i in 0..24 {
        let url = format!("{}/topic/{slow}?limit=1000&group=g{i}", app.public_url);
        let (client, user, password, stop) = (
            attack_client.clone(),
            a_user.clone(),
            a_password.clone(),
            stop.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let mut slow_gets = 0;
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let response = client
                    .get(&url)
                    .basic_auth(&user, Some(&password))
                    .send()
                    .await
                    .unwrap();
                let _ = response.bytes().await;
                if started.elapsed() > Duration::from_millis(900) {
                    slow_gets += 1;
                }
            }
            slow_gets
        }));
    }
    // Let the wide reads pile up first.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    let attack_ends = Instant::now() + Duration::from_secs(8);
    let mut round = 0;
    while Instant::now() < attack_ends {
        let (user, password) = if round % 4 == 2 && !fresh.is_empty() {
            fresh.pop().unwrap()
        } else {
            (b_user.clone(), b_password.clone())
        };
        let started = Instant::now();
        let response = app.consume(&user, &password, &quiet, "limit=1").await;
        latencies.push(started.elapsed());
        if response.status() != StatusCode::OK {
            failures.push(format!(
                "{}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            ));
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut slow_gets = 0;
    for attacker in attackers {
        slow_gets += attacker.await.unwrap();
    }
    mock.broker_round_trip_time(1, Duration::ZERO).unwrap();

    assert!(
        slow_gets >= 24,
        "the attack did not make reads slow ({slow_gets} slow GETs)"
    );
    assert!(fresh.is_empty(), "every late user logged in");
    assert!(
        failures.is_empty(),
        "tenant B failed {} of {} requests: {:?}",
        failures.len(),
        latencies.len(),
        &failures[..failures.len().min(3)]
    );
    latencies.sort();
    let p99 = percentile(&latencies, 0.99);
    println!(
        "tenant B: {} requests, median {:?}, p99 {:?}, max {:?}; {slow_gets} slow attacker GETs",
        latencies.len(),
        percentile(&latencies, 0.5),
        p99,
        latencies[latencies.len() - 1]
    );
    assert!(
        p99 < Duration::from_millis(1500),
        "tenant B's p99 was {p99:?} (median {:?})",
        percentile(&latencies, 0.5)
    );
}

/// The node serving a GET is SIGKILLed while it reads (the broker answers
/// slowly): its lease keeps the partition from other GETs until it
/// expires, then the next GET gets every message, exactly once.
#[tokio::test]
async fn a_node_killed_mid_read_gives_its_messages_to_the_next_get_once_its_lease_expires() {
    let mock = MockCluster::new(1).unwrap();
    let tenant = unique_tenant();
    let topic = format!("{tenant}.orders");
    mock.create_topic(&topic, 1, 1).unwrap();
    let servers = mock.bootstrap_servers();
    let on_mock = {
        let servers = servers.clone();
        move |f: figment::Figment| f.merge(("kafka.bootstrap_servers", servers))
    };
    let app = TestApp::spawn_with(on_mock).await;
    app.create_tenant(&tenant).await;
    let (user, password) = app.rw_user(&tenant).await;
    app.produce_numbered(&user, &password, &topic, 11).await;
    let lease_ms = 4000u64;
    let mut victim = BinaryNode::start_with(
        &app.database_url,
        &servers,
        "warn",
        // No cache of recent messages on the victim: the warm-up read would
        // fill it, and the doomed GET would answer from memory at once,
        // its lease gone before anyone could see it (why this test was
        // flaky). It must read from the slowed broker.
        &format!(
            "[consume]\nread_timeout_ms = 3000\nlease_ms = {lease_ms}\nread_cache_bytes = 0\n"
        ),
    )
    .await;
    // Warm both nodes up (topic metadata and watermarks) with another group.
    let warm = |base: String| {
        let request = app
            .data
            .get(format!("{base}/topic/{topic}?group=warm"))
            .basic_auth(&user, Some(&password));
        async move { assert_eq!(request.send().await.unwrap().status(), StatusCode::OK) }
    };
    warm(victim.public_url.clone()).await;
    warm(app.public_url.clone()).await;

    mock.broker_round_trip_time(1, Duration::from_millis(1000))
        .unwrap();
    let doomed = tokio::spawn(
        app.data
            .get(format!("{}/topic/{topic}?limit=100", victim.public_url))
            .basic_auth(&user, Some(&password))
            .send(),
    );
    // Kill it as soon as its lease is in Postgres: it is reading now.
    let leased_at = Instant::now();
    let expires: chrono::DateTime<chrono::Utc> = loop {
        let lease: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT lease_expires_at FROM cursors
             WHERE tenant = $1 AND group_name = 'app' AND lease_holder IS NOT NULL",
        )
        .bind(&tenant)
        .fetch_optional(&app.db)
        .await
        .unwrap()
        .flatten();
        if let Some(expires) = lease {
            break expires;
        }
        assert!(
            leased_at.elapsed() < Duration::from_secs(60),
            "the victim never leased the partition"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    victim.signal("KILL");
    let _ = victim.child.wait().await;
    assert!(doomed.await.unwrap().is_err(), "the killed node answered");
    mock.broker_round_trip_time(1, Duration::ZERO).unwrap();

    // While the lease lives, the partition is nobody else's.
    let during = app.consume_ok(&user, &password, &topic, "limit=100").await;
    let now: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        during.is_empty() || now >= expires,
        "a live lease was taken over: {during:?}"
    );

    // Once it has expired, the next GET gets everything, once.
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_millis(lease_ms) + Duration::from_secs(10);
    while got.len() < 11 && Instant::now() < until {
        let messages = app.consume_ok(&user, &password, &topic, "limit=100").await;
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        got.extend(offsets_of(&messages));
    }
    assert_eq!(
        got,
        (0..11).collect::<Vec<i64>>(),
        "during the lease: {during:?}"
    );
    assert!(app
        .consume_ok(&user, &password, &topic, "limit=100")
        .await
        .is_empty());
    let metrics = app.get_metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "sluice_consume_leases_expired_total",
            &[("tenant", &tenant)]
        ),
        Some(1.0),
        "the takeover is counted"
    );
}

/// One GET has one time budget for every partition it leased: on a broker
/// answering each request 400 ms late, a GET over 8 partitions with
/// nothing cached ends within about the read timeout, not 8 of them.
#[tokio::test]
async fn one_get_spends_one_read_timeout_across_all_the_partitions_it_leased() {
    let mock = MockCluster::new(1).unwrap();
    let tenant = unique_tenant();
    let topic = format!("{tenant}.wide");
    mock.create_topic(&topic, 8, 1).unwrap();
    let servers = mock.bootstrap_servers();
    let app = TestApp::spawn_with(move |f| {
        f.merge(("kafka.bootstrap_servers", servers))
            .merge(("consume.read_timeout_ms", 1000))
            .merge(("consume.read_cache_bytes", 0))
    })
    .await;
    app.create_tenant(&tenant).await;
    let (user, password) = app.rw_user(&tenant).await;
    fill_partitions(&app, &user, &password, &topic, 8, 2).await;
    app.consume_ok(&user, &password, &topic, "limit=1&group=warm")
        .await;
    mock.broker_round_trip_time(1, Duration::from_millis(400))
        .unwrap();
    let started = Instant::now();
    let messages = app.consume_ok(&user, &password, &topic, "limit=1000").await;
    let took = started.elapsed();
    mock.broker_round_trip_time(1, Duration::ZERO).unwrap();
    assert!(
        messages.len() < 16,
        "every partition was read within the budget"
    );
    assert!(
        took < Duration::from_millis(2500),
        "the GET took {took:?} for {} messages",
        messages.len()
    );
    // The partitions it did not reach were given back at once, not left
    // leased: the rest is served now, none twice.
    let mut seen: Vec<(i64, i64)> = messages
        .iter()
        .map(|m| {
            (
                m["Partition"].as_i64().unwrap(),
                m["Offset"].as_i64().unwrap(),
            )
        })
        .collect();
    let next = app.consume_ok(&user, &password, &topic, "limit=1000").await;
    assert!(!next.is_empty(), "the partitions not read are still leased");
    seen.extend(next.iter().map(|m| {
        (
            m["Partition"].as_i64().unwrap(),
            m["Offset"].as_i64().unwrap(),
        )
    }));
    let until = Instant::now() + Duration::from_secs(20);
    while seen.len() < 16 && Instant::now() < until {
        let more = app.consume_ok(&user, &password, &topic, "limit=1000").await;
        seen.extend(more.iter().map(|m| {
            (
                m["Partition"].as_i64().unwrap(),
                m["Offset"].as_i64().unwrap(),
            )
        }));
    }
    let unique: HashSet<(i64, i64)> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "duplicates: {seen:?}");
    assert_eq!(unique.len(), 16);
}

#[tokio::test]
async fn limit_one_on_a_four_partition_backlog_is_served_round_robin() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(4).await;
    fill_partitions(&app, &user, &password, &topic, 4, 5).await;
    let mut served = Vec::new();
    for _ in 0..16 {
        let messages = app.consume_ok(&user, &password, &topic, "limit=1").await;
        assert_eq!(messages.len(), 1);
        served.extend(partitions_of(&messages));
    }
    for window in served.chunks(4) {
        let distinct: BTreeSet<i64> = window.iter().copied().collect();
        assert_eq!(distinct.len(), 4, "not round-robin: {served:?}");
    }
    assert!(
        served.windows(5).all(|w| w[0] == w[4]),
        "not round-robin: {served:?}"
    );
}

/// With a byte cap of one message, a GET leases more partitions than it
/// reads. Stamping them all (as claims once did) served partitions 0 and 2
/// over and over; only the partition actually read is stamped now.
#[tokio::test]
async fn partitions_leased_but_not_read_keep_their_turn() {
    let app = TestApp::spawn_with(|f| f.merge(("consume.max_response_bytes", 1))).await;
    let (_, topic, user, password) = app.tenant_with_topic(4).await;
    fill_partitions(&app, &user, &password, &topic, 4, 5).await;
    let mut served = Vec::new();
    for _ in 0..12 {
        let messages = app.consume_ok(&user, &password, &topic, "limit=10").await;
        assert_eq!(messages.len(), 1, "the byte cap allows one message");
        served.extend(partitions_of(&messages));
    }
    for window in served.chunks(4) {
        let distinct: BTreeSet<i64> = window.iter().copied().collect();
        assert_eq!(distinct.len(), 4, "a partition starved: {served:?}");
    }
}

/// The log was truncated under a group (here: its cursor is set past the
/// end in Postgres, as a topic deleted and created again outside sluice
/// leaves it). The cursor moves to the end, not back to the start.
#[tokio::test]
async fn a_cursor_beyond_the_end_of_the_log_moves_to_the_end_and_is_flagged() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 5).await;
    let first = app.consume_ok(&user, &password, &topic, "limit=100").await;
    assert_eq!(offsets_of(&first), [0, 1, 2, 3, 4]);
    sqlx::query("UPDATE cursors SET next_offset = 50 WHERE tenant = $1 AND group_name = 'app'")
        .bind(&tenant)
        .execute(&app.db)
        .await
        .unwrap();

    let response = app.consume(&user, &password, &topic, "limit=100").await;
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("sluice-cursor-reset").as_deref(), Some("truncated"));
    assert_eq!(header("sluice-skipped-messages").as_deref(), Some("0"));
    let messages: Vec<Value> = response.json().await.unwrap();
    assert!(messages.is_empty(), "the log was re-read: {messages:?}");
    let cursor: i64 = sqlx::query_scalar(
        "SELECT next_offset FROM cursors WHERE tenant = $1 AND group_name = 'app'",
    )
    .bind(&tenant)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(cursor, 5, "the cursor moved to the high watermark");

    // It reads on from the end: new messages only, and no flag any more.
    app.produce_numbered(&user, &password, &topic, 2).await;
    let response = app.consume(&user, &password, &topic, "limit=100").await;
    assert!(response.headers().get("sluice-cursor-reset").is_none());
    let messages: Vec<Value> = response.json().await.unwrap();
    assert_eq!(offsets_of(&messages), [5, 6]);
    let metrics = app.get_metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "sluice_consume_cursor_resets_total",
            &[("tenant", &tenant), ("reason", "truncated")]
        ),
        Some(1.0),
        "the reset is counted per tenant"
    );
}

/// One message on each of 1,000 partitions, delivered together, makes an
/// announcement of about 8 KB with this topic name: more than NOTIFY takes.
/// It goes out in several notices, each under the limit, together naming
/// every partition.
/// (On librdkafka's mock cluster: tansu 0.6.0 takes over 30 s to create a
/// 1,000-partition topic and stalls every other client meanwhile.)
#[tokio::test]
async fn a_thousand_partition_topic_is_announced_in_notices_notify_accepts() {
    let mock = MockCluster::new(1).unwrap();
    let tenant = unique_tenant();
    let topic = format!("{tenant}.{}", "a".repeat(120));
    mock.create_topic(&topic, 1000, 1).unwrap();
    let servers = mock.bootstrap_servers();
    // A produce request announces its deliveries together, once all are in.
    let app = TestApp::spawn_with(move |f| f.merge(("kafka.bootstrap_servers", servers))).await;
    app.create_tenant(&tenant).await;
    let (user, password) = app.rw_user(&tenant).await;
    let mut listener = PgListener::connect(&app.database_url).await.unwrap();
    listener.listen(tenancy::PRODUCED_CHANNEL).await.unwrap();
    fill_partitions(&app, &user, &password, &topic, 1000, 1).await;
    let mut announced = BTreeSet::new();
    let mut notices = 0;
    let until = Instant::now() + Duration::from_secs(10);
    while announced.len() < 1000 && Instant::now() < until {
        let Ok(Ok(notice)) = tokio::time::timeout(Duration::from_secs(1), listener.recv()).await
        else {
            continue;
        };
        let payload = notice.payload();
        assert!(payload.len() < 8000, "{} bytes", payload.len());
        let notice: Value = serde_json::from_str(payload).unwrap();
        if notice["topic"] != topic.as_str() {
            continue;
        }
        notices += 1;
        for pair in notice["highs"].as_array().unwrap() {
            announced.insert(pair[0].as_i64().unwrap());
        }
    }
    assert_eq!(
        announced.len(),
        1000,
        "partitions announced, in {notices} notices"
    );
}
