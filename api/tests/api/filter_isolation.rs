//! Group filters against a hostile neighbour: a filter that never
//! matches makes every GET of its group scan the topic on the node's
//! shared readers, and a tenant that rewinds such groups over a big topic
//! again and again, within its quota, must take nothing from another.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::victim::{baseline, gather, produce_and_read};
use crate::helpers::{data_client_from, unique_tenant, TestApp};

/// Groups of the attacker, each with the never-matching filter.
const GROUPS: usize = 8;
/// Concurrent attacker loops: half the default consume cap of a tenant.
const LOOPS: usize = 16;
/// A's byte quota, bytes/s (burst: 2 s of it).
const BYTE_QUOTA: u64 = 1 << 20;
/// Bytes a scanned message of the test counts for: a 200-byte value and
/// a short key.
const MESSAGE_BYTES: u64 = 200;

/// Tenant A, with a request quota far above what it sends and a byte
/// quota of 1 MiB/s, puts `key == "never"`
/// on 8 groups of a 4-partition topic of 12,000 messages, and 16 loops
/// from other addresses read through those groups and rewind them to the
/// earliest offset after each GET: every GET scans thousands of messages
/// and returns none. What A scans stays within what its byte quota pays
/// for (before, a GET was charged only once all its passes were done, and
/// A scanned 7× its quota), and tenant B, producing and reading its own
/// topic on the same node, gets no failure and a p99 under 500 ms.
#[tokio::test]
async fn a_never_matching_filter_rescanning_a_big_topic_takes_nothing_from_another_tenant() {
    let app = TestApp::spawn().await;
    let attacker = unique_tenant();
    let victim = unique_tenant();
    // Requests are not what bounds A here: its byte quota, which pays for
    // what a filter skips, is.
    let quota = json!({ "requests_per_second": 10_000, "bytes_per_second": BYTE_QUOTA });
    let created = app
        .post_tenant(&json!({ "name": attacker, "quota": quota }))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    app.create_tenant(&victim).await;
    let (a_user, a_password) = app.rw_user(&attacker).await;
    let (b_user, b_password) = app.rw_user(&victim).await;
    let big = format!("{attacker}.big");
    let quiet = format!("{victim}.quiet");
    app.create_topic(&attacker, &big, 4).await;
    app.create_topic(&victim, &quiet, 1).await;
    let value = "x".repeat(200);
    for _ in 0..24 {
        let body: Vec<Value> = (0..500)
            .map(|i| json!({ "Key": format!("k{i}"), "Value": value, "Partition": i % 4 }))
            .collect();
        let response = app
            .produce(&a_user, &a_password, &big, &Value::from(body).to_string())
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    for g in 0..GROUPS {
        let response = app
            .put_group(
                &a_user,
                &a_password,
                &big,
                &format!("g{g}"),
                &json!({ "filter": r#"key == "never""# }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    let mut baseline = baseline(&app, (&b_user, &b_password), &quiet).await;

    let stop = Arc::new(AtomicBool::new(false));
    let attack_began = Instant::now();
    let mut attackers = Vec::new();
    for i in 0..LOOPS {
        let client = data_client_from(IpAddr::from([127, 0, 0, 2 + (i % 4) as u8]));
        let (base, user, password, topic, stop) = (
            app.public_url.clone(),
            a_user.clone(),
            a_password.clone(),
            big.clone(),
            stop.clone(),
        );
        attackers.push(tokio::spawn(async move {
            let group = format!("g{}", i % GROUPS);
            let read = format!("{base}/topic/{topic}?limit=100&group={group}");
            let rewind = format!("{base}/topic/{topic}/groups/{group}/seek");
            // (messages scanned and filtered out, statuses other than 200)
            let (mut scanned, mut other) = (0u64, Vec::<StatusCode>::new());
            while !stop.load(Ordering::SeqCst) {
                let Ok(response) = client
                    .get(&read)
                    .basic_auth(&user, Some(&password))
                    .send()
                    .await
                else {
                    continue;
                };
                let status = response.status();
                scanned += response
                    .headers()
                    .get("Sluice-Filtered-Messages")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(0);
                let _ = response.bytes().await;
                if status != StatusCode::OK {
                    other.push(status);
                }
                let _ = client
                    .post(&rewind)
                    .basic_auth(&user, Some(&password))
                    .json(&json!({ "to": "earliest" }))
                    .send()
                    .await;
            }
            (scanned, other)
        }));
    }
    // Let the scans pile up first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut attacked =
        produce_and_read(&app, (&b_user, &b_password), &quiet, Duration::from_secs(8)).await;
    stop.store(true, Ordering::SeqCst);
    let attack_lasted = attack_began.elapsed().as_secs_f64();
    let (scanned, other) = gather(attackers).await;

    println!(
        "tenant A: {scanned} messages scanned and filtered out, {} answers other than 200 (first: {:?})",
        other.len(),
        &other[..other.len().min(5)]
    );
    assert!(
        scanned >= 20_000,
        "the attack hardly ran: {scanned} messages scanned"
    );
    // The quota over the attack, its burst, and one pass of every loop
    // begun before the debt showed: twice that is the most A may scan.
    let paid = (BYTE_QUOTA as f64 * (attack_lasted + 2.0)) / MESSAGE_BYTES as f64;
    let one_pass = (LOOPS * 4 * 256) as f64;
    assert!(
        (scanned as f64) <= 2.0 * (paid + one_pass),
        "A scanned {scanned} messages in {attack_lasted:.1} s; its byte quota pays for about {paid:.0}"
    );
    attacked.assert_served(&mut baseline, Duration::from_millis(500));
}
