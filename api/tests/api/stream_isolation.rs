//! Attacks on the streams: a tenant holding every stream its quota allows,
//! re-leasing its messages as fast as the shortest visibility lets it,
//! churning reconnects and sending bad frames, plus anonymous upgrade
//! attempts, from other client addresses, on a node with 5 database
//! connections. Another tenant's stream keeps delivering, about as fast
//! as alone.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::streams::{connect_ws, stream_client, SseStream};
use crate::helpers::victim::percentile;
use crate::helpers::{unique_tenant, TestApp};

/// The victim produces one message at a time and times how long it takes
/// to arrive on its SSE stream: (latencies, messages that never came).
async fn victim_round(
    app: &TestApp,
    (user, password): (&str, &str),
    topic: &str,
    stream: &mut SseStream,
    length: Duration,
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut missing = 0;
    let ends = Instant::now() + length;
    let mut round = 0;
    while Instant::now() < ends {
        let value = format!("v{round}-{}", uuid::Uuid::new_v4().simple());
        let started = Instant::now();
        let body = json!([{ "Value": value }]).to_string();
        let response = app.produce(user, password, topic, &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        match stream.next_message(Duration::from_secs(10)).await {
            Some(event) if event.json()["Value"] == value.as_str() => {
                latencies.push(started.elapsed());
            }
            other => {
                missing += 1;
                println!("victim: expected {value}, got {other:?}");
            }
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    latencies.sort();
    (latencies, missing)
}

fn summary(latencies: &[Duration]) -> String {
    format!(
        "{} messages, median {:?}, p99 {:?}, max {:?}",
        latencies.len(),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies[latencies.len() - 1]
    )
}

#[tokio::test]
async fn a_tenant_churning_every_stream_it_may_hold_takes_nothing_from_another_tenants_stream() {
    let app = TestApp::spawn_with(|f| f.merge(("database.max_connections", 5))).await;
    let attacker = unique_tenant();
    let victim = unique_tenant();
    let quota =
        json!({ "requests_per_second": 10_000, "bytes_per_second": 1u64 << 30, "max_streams": 16 });
    for tenant in [&attacker, &victim] {
        let created = app
            .post_tenant(&json!({ "name": tenant, "quota": quota }))
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let (a_user, a_password) = app.rw_user(&attacker).await;
    let (b_user, b_password) = app.rw_user(&victim).await;
    let wide = format!("{attacker}.wide");
    let feed = format!("{victim}.feed");
    app.create_topic(&attacker, &wide, 8).await;
    app.create_topic(&victim, &feed, 1).await;
    let body: Vec<Value> = (0..800)
        .map(|i| json!({ "Value": format!("a{i}"), "Partition": i % 8 }))
        .collect();
    for chunk in body.chunks(400) {
        let response = app
            .produce(
                &a_user,
                &a_password,
                &wide,
                &Value::from(chunk.to_vec()).to_string(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    let mut stream = app
        .open_sse(&b_user, &b_password, &feed, "group=live")
        .await;
    assert_eq!(stream.status, StatusCode::OK);
    victim_round(
        &app,
        (&b_user, &b_password),
        &feed,
        &mut stream,
        Duration::from_millis(500),
    )
    .await;
    let (baseline, missing_alone) = victim_round(
        &app,
        (&b_user, &b_password),
        &feed,
        &mut stream,
        Duration::from_secs(4),
    )
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let delivered = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    // Every stream the quota allows, in manual mode with a 1 ms
    // visibility and no acks: each batch is leased again at once.
    for i in 0..16u8 {
        let local = IpAddr::from([127, 0, 0, 2 + i % 3]);
        let (url, user, password, topic, stop, delivered, refused) = (
            app.public_url.clone(),
            a_user.clone(),
            a_password.clone(),
            wide.clone(),
            stop.clone(),
            delivered.clone(),
            refused.clone(),
        );
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let query = format!(
                    "group=g{}&ack=manual&visibility=1&credit=100000&limit=1000",
                    i % 4
                );
                let Ok(mut ws) =
                    connect_ws(&url, (&user, &password), &topic, &query, Some(local)).await
                else {
                    refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                // Read for a while, then churn: bad frames until closed.
                let until = Instant::now() + Duration::from_millis(700);
                while Instant::now() < until {
                    match ws.next(Duration::from_millis(100)).await {
                        Ok(Some(frame)) => {
                            let n = frame["messages"].as_array().map_or(0, Vec::len);
                            delivered.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
                for _ in 0..3 {
                    ws.send_text("{ not json").await;
                }
                let _ = ws.closed(Duration::from_secs(2)).await;
            }
        }));
    }
    // Anonymous clients knocking on the stream routes.
    for i in 0..2u8 {
        let client = stream_client(Some(IpAddr::from([127, 0, 0, 5 + i])));
        let (url, topic, stop) = (app.public_url.clone(), wide.clone(), stop.clone());
        attackers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let response = client
                    .get(format!("{url}/topic/{topic}/stream"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (attacked, missing_attacked) = victim_round(
        &app,
        (&b_user, &b_password),
        &feed,
        &mut stream,
        Duration::from_secs(8),
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    for attacker in attackers {
        attacker.await.unwrap();
    }

    println!("victim alone: {}", summary(&baseline));
    println!("victim under attack: {}", summary(&attacked));
    println!(
        "attacker: {} messages delivered to its streams, {} refused connects",
        delivered.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed)
    );
    assert!(
        delivered.load(Ordering::Relaxed) >= 1000,
        "the attack hardly ran"
    );
    assert_eq!(missing_alone, 0);
    assert_eq!(
        missing_attacked, 0,
        "the victim's stream lost messages under attack"
    );
    let p99 = percentile(&attacked, 0.99);
    assert!(
        p99 < Duration::from_secs(2),
        "the victim's p99 was {p99:?} under attack, {:?} alone",
        percentile(&baseline, 0.99)
    );
}
