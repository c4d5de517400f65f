//! Attacks on the manual-ack surface: a tenant flooding manual GETs,
//! nacks and extends does not take the database pool from another; one
//! that holds receipts for the maximum visibility blocks nothing of
//! another tenant (not even a group of the same name); and a receipt is
//! worth nothing outside its tenant.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::victim::{gather, Observed};
use crate::helpers::{assert_error, data_client_from, unique_tenant, TestApp};

/// `POST /topic/{topic}/{verb}` (ack, nack or extend) with `body`.
async fn settle(
    client: &reqwest::Client,
    app: &TestApp,
    (user, password): (&str, &str),
    topic: &str,
    verb: &str,
    body: &Value,
) -> reqwest::Response {
    client
        .post(format!("{}/topic/{topic}/{verb}", app.public_url))
        .basic_auth(user, Some(password))
        .json(body)
        .send()
        .await
        .expect("the data plane answers")
}

/// One manual GET: (status, messages, receipt).
async fn manual_get(
    client: &reqwest::Client,
    app: &TestApp,
    (user, password): (&str, &str),
    topic: &str,
    query: &str,
) -> (StatusCode, Vec<Value>, Option<String>) {
    let response = client
        .get(format!(
            "{}/topic/{topic}?ack=manual&{query}",
            app.public_url
        ))
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("the data plane answers");
    let status = response.status();
    let receipt = response
        .headers()
        .get("Sluice-Receipt")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap_or_default();
    let messages = if status == StatusCode::OK {
        serde_json::from_str(&text).unwrap_or_default()
    } else {
        Vec::new()
    };
    (status, messages, receipt)
}

/// Produces `per_partition` messages to each of `partitions` partitions.
async fn fill(app: &TestApp, user: &str, password: &str, topic: &str, partitions: i32, n: usize) {
    let body: Vec<Value> = (0..partitions)
        .flat_map(|p| (0..n).map(move |i| json!({ "Value": format!("{p}-{i}"), "Partition": p })))
        .collect();
    for chunk in body.chunks(500) {
        let response = app
            .produce(
                user,
                password,
                topic,
                &Value::from(chunk.to_vec()).to_string(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
    }
}

/// The victim's workload for `length`: produce one message, read it with
/// an auto-mode GET, read it with a manual GET and ack that receipt; with
/// the receipts it acked.
async fn victim_workload(
    app: &TestApp,
    (user, password): (&str, &str),
    topic: &str,
    length: Duration,
) -> (Observed, usize) {
    let mut seen = Observed::default();
    let mut receipts = 0;
    let ends = Instant::now() + length;
    let mut round = 0;
    while Instant::now() < ends {
        let started = Instant::now();
        let body = json!([{ "Value": format!("v{round}") }]).to_string();
        let response = app.produce(user, password, topic, &body).await;
        seen.record("produce", started, response).await;

        let started = Instant::now();
        let response = app
            .consume(user, password, topic, "limit=10&group=auto")
            .await;
        seen.record("auto GET", started, response).await;

        let started = Instant::now();
        let response = app
            .consume(
                user,
                password,
                topic,
                "limit=10&group=manual&ack=manual&visibility=30000",
            )
            .await;
        let receipt = response
            .headers()
            .get("Sluice-Receipt")
            .map(|v| v.to_str().unwrap().to_owned());
        seen.record("manual GET", started, response).await;
        if let Some(receipt) = receipt {
            let started = Instant::now();
            let response = settle(
                &app.data,
                app,
                (user, password),
                topic,
                "ack",
                &json!({ "receipt": receipt }),
            )
            .await;
            if response.status() == StatusCode::NO_CONTENT {
                receipts += 1;
            }
            seen.record("ack", started, response).await;
        }
        round += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (seen, receipts)
}

/// Tenant A, with a generous request quota, runs many concurrent loops of
/// manual GETs over a wide topic and nacks or extends every receipt (each
/// call a transaction on the receipts and cursors), from other client
/// addresses, on a node with 5 database connections. Tenant B's produce,
/// auto GET, manual GET and ack keep succeeding, about as fast as alone.
#[tokio::test]
async fn a_tenant_flooding_manual_gets_nacks_and_extends_never_takes_the_database_pool_from_another(
) {
    let app = TestApp::spawn_with(|f| f.merge(("database.max_connections", 5))).await;
    let attacker = unique_tenant();
    let victim = unique_tenant();
    let quota = json!({ "requests_per_second": 10_000, "bytes_per_second": 1u64 << 30 });
    for tenant in [&attacker, &victim] {
        let created = app
            .post_tenant(&json!({ "name": tenant, "quota": quota }))
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
    }
    let (a_user, a_password) = app.rw_user(&attacker).await;
    let (b_user, b_password) = app.rw_user(&victim).await;
    let wide = format!("{attacker}.wide");
    let quiet = format!("{victim}.quiet");
    app.create_topic(&attacker, &wide, 8).await;
    app.create_topic(&victim, &quiet, 1).await;
    fill(&app, &a_user, &a_password, &wide, 8, 200).await;

    // Warm up both, then the victim alone: the baseline.
    victim_workload(
        &app,
        (&b_user, &b_password),
        &quiet,
        Duration::from_millis(500),
    )
    .await;
    let (mut baseline, _) =
        victim_workload(&app, (&b_user, &b_password), &quiet, Duration::from_secs(4)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut attackers = Vec::new();
    for i in 0..24u8 {
        let client = data_client_from(IpAddr::from([127, 0, 0, 2 + i % 4]));
        let (app_url, user, password, topic, stop) = (
            app.public_url.clone(),
            a_user.clone(),
            a_password.clone(),
            wide.clone(),
            stop.clone(),
        );
        attackers.push(tokio::spawn(async move {
            // (settled calls answered 204, other answers of any call)
            let (mut settled, mut other) = (0u64, Vec::<String>::new());
            let get = format!(
                "{app_url}/topic/{topic}?limit=100&group=g{}&ack=manual&visibility=10000",
                i % 6
            );
            let post = |verb: &str, body: Value| {
                client
                    .post(format!("{app_url}/topic/{topic}/{verb}"))
                    .basic_auth(&user, Some(&password))
                    .json(&body)
                    .send()
            };
            let mut round = 0u64;
            while !stop.load(Ordering::SeqCst) {
                round += 1;
                let Ok(response) = client
                    .get(&get)
                    .basic_auth(&user, Some(&password))
                    .send()
                    .await
                else {
                    continue;
                };
                let status = response.status();
                let receipt = response
                    .headers()
                    .get("Sluice-Receipt")
                    .map(|v| v.to_str().unwrap().to_owned());
                let _ = response.bytes().await;
                if status != StatusCode::OK {
                    other.push(format!("GET {status}"));
                    continue;
                }
                let Some(receipt) = receipt else { continue };
                let mut calls = Vec::new();
                if round.is_multiple_of(2) {
                    calls.push((
                        "extend",
                        json!({ "receipt": receipt, "visibility": 20_000 }),
                    ));
                }
                calls.push(("nack", json!({ "receipt": receipt })));
                for (verb, body) in calls {
                    match post(verb, body).await {
                        Ok(r) if r.status() == StatusCode::NO_CONTENT => settled += 1,
                        Ok(r) => other.push(format!("{verb} {}", r.status())),
                        Err(e) => other.push(format!("{verb} {e}")),
                    }
                }
            }
            (settled, other)
        }));
    }
    // Let the flood build up first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (mut attacked, acked) =
        victim_workload(&app, (&b_user, &b_password), &quiet, Duration::from_secs(8)).await;
    stop.store(true, Ordering::SeqCst);
    let (settled, refused) = gather(attackers).await;

    println!(
        "tenant A: {settled} nacks and extends answered 204, {} other answers (first: {:?})",
        refused.len(),
        &refused[..refused.len().min(5)]
    );
    assert!(
        settled >= 200,
        "the attack hardly ran: {settled} settlements, {:?}",
        &refused[..refused.len().min(5)]
    );
    assert!(
        baseline.failures.is_empty(),
        "tenant B failed alone: {:?}",
        baseline.failures
    );
    assert!(acked > 0, "tenant B never acked a receipt");
    attacked.assert_served(&mut baseline, Duration::from_secs(2));
}

/// Tenant A leases every partition of its topic under receipts with the
/// maximum visibility (12 h) and never settles them. Tenant B, on its own
/// topic and with a group of the very same name, is served at once, and
/// A's other groups still read A's topic.
#[tokio::test]
async fn receipts_held_for_the_maximum_visibility_by_one_tenant_block_nothing_of_another() {
    let app = TestApp::spawn().await;
    let (attacker, a_topic, a_user, a_password) = app.tenant_with_topic(4).await;
    let (_, b_topic, b_user, b_password) = app.tenant_with_topic(4).await;
    let a = (a_user.as_str(), a_password.as_str());
    let b = (b_user.as_str(), b_password.as_str());
    fill(&app, &a_user, &a_password, &a_topic, 4, 5).await;
    fill(&app, &b_user, &b_password, &b_topic, 4, 5).await;
    // B's topic is read once before (another group): what B waits for
    // below is not the first, cold read of its partitions.
    let (mut warm, until) = (0, Instant::now() + Duration::from_secs(15));
    while warm < 20 {
        assert!(Instant::now() < until, "B's warm-up read {warm} of 20");
        warm += app
            .consume_ok(&b_user, &b_password, &b_topic, "limit=1000&group=warm")
            .await
            .len();
    }

    // A takes everything of `workers` for 12 hours, from another address.
    let attack_client = data_client_from(IpAddr::from([127, 0, 0, 2]));
    let mut held = 0;
    let mut receipts = Vec::new();
    let until = Instant::now() + Duration::from_secs(15);
    while held < 20 {
        assert!(Instant::now() < until, "A leased only {held} of 20");
        let (status, messages, receipt) = manual_get(
            &attack_client,
            &app,
            a,
            &a_topic,
            "limit=1000&group=workers&visibility=43200000",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        held += messages.len();
        receipts.extend(receipt);
    }
    let leased: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM cursors
         WHERE tenant = $1 AND group_name = 'workers'
           AND lease_expires_at > now() + interval '11 hours'",
    )
    .bind(&attacker)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(leased, 4, "every partition of A's topic is held for 12 h");
    let (status, more, _) = manual_get(&attack_client, &app, a, &a_topic, "group=workers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(more.is_empty(), "A's held partitions were served: {more:?}");

    // B, with a group of the same name, manual then auto: served at once.
    let started = Instant::now();
    let mut got = Vec::new();
    while got.len() < 20 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B got {} of 20",
            got.len()
        );
        let (status, messages, receipt) = manual_get(
            &app.data,
            &app,
            b,
            &b_topic,
            "limit=1000&group=workers&visibility=43200000",
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        if let Some(receipt) = receipt {
            let acked = settle(
                &app.data,
                &app,
                b,
                &b_topic,
                "ack",
                &json!({ "receipt": receipt }),
            )
            .await;
            assert_eq!(acked.status(), StatusCode::NO_CONTENT);
        }
        got.extend(messages);
    }
    let b_took = started.elapsed();
    fill(&app, &b_user, &b_password, &b_topic, 4, 1).await;
    let mut auto = Vec::new();
    while auto.len() < 4 {
        assert!(started.elapsed() < Duration::from_secs(15), "B's auto GET");
        auto.extend(
            app.consume_ok(&b_user, &b_password, &b_topic, "limit=1000&group=workers")
                .await,
        );
    }
    println!("B read its 20 messages under a group named like A's held one in {b_took:?}");
    assert!(
        b_took < Duration::from_secs(2),
        "B waited {b_took:?} for its own messages"
    );

    // A's other groups read A's topic in full.
    let mut others = 0;
    let until = Instant::now() + Duration::from_secs(10);
    while others < 20 {
        assert!(Instant::now() < until, "A's other group got {others} of 20");
        others += app
            .consume_ok(&a_user, &a_password, &a_topic, "limit=1000&group=others")
            .await
            .len();
    }
    // And A's receipts are still A's, untouched by all of it.
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM receipts WHERE tenant = $1 AND settled IS NULL
           AND expires_at > now() + interval '11 hours'",
    )
    .bind(&attacker)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(open, receipts.len() as i64);
}

/// A receipt of tenant A, presented by a user of tenant B on B's topic
/// (not found) or on A's (forbidden), acks, nacks and extends nothing: A's
/// receipt keeps its expiry, A's ack afterwards answers 204, and the
/// messages are never delivered again.
#[tokio::test]
async fn a_receipt_presented_by_another_tenant_is_refused_and_changes_nothing_for_its_owner() {
    let app = TestApp::spawn().await;
    let (tenant_a, a_topic, a_user, a_password) = app.tenant_with_topic(1).await;
    let (_, b_topic, b_user, b_password) = app.tenant_with_topic(1).await;
    let a = (a_user.as_str(), a_password.as_str());
    let b = (b_user.as_str(), b_password.as_str());
    app.produce_numbered(&a_user, &a_password, &a_topic, 5)
        .await;
    app.produce_numbered(&b_user, &b_password, &b_topic, 5)
        .await;
    let (status, messages, receipt) = manual_get(
        &app.data,
        &app,
        a,
        &a_topic,
        "limit=100&group=workers&visibility=30000",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(messages.len(), 5);
    let receipt = receipt.expect("a manual GET that delivered carries a receipt");
    let expiry = || {
        sqlx::query_as::<_, (chrono::DateTime<chrono::Utc>, Option<String>)>(
            "SELECT expires_at, settled FROM receipts WHERE tenant = $1",
        )
        .bind(&tenant_a)
        .fetch_one(&app.db)
    };
    let before = expiry().await.unwrap();

    // B also has a group of that name, with a receipt of its own open.
    let (_, b_messages, b_receipt) = manual_get(
        &app.data,
        &app,
        b,
        &b_topic,
        "limit=100&group=workers&visibility=30000",
    )
    .await;
    assert_eq!(b_messages.len(), 5);

    let intruder = data_client_from(IpAddr::from([127, 0, 0, 3]));
    let attempts = [
        ("ack", json!({ "receipt": receipt })),
        ("nack", json!({ "receipt": receipt })),
        ("nack", json!({ "receipt": receipt, "delay": 43_200_000 })),
        ("extend", json!({ "receipt": receipt, "visibility": 1 })),
        (
            "ack",
            json!({ "receipt": receipt, "offsets": [{ "Partition": 0, "Offset": 2 }] }),
        ),
        (
            "nack",
            json!({ "receipt": receipt, "offsets": [{ "Partition": 0, "Offset": 2 }] }),
        ),
    ];
    for (verb, body) in &attempts {
        let on_b = settle(&intruder, &app, b, &b_topic, verb, body).await;
        assert_error(on_b, StatusCode::NOT_FOUND, "receipt_not_found").await;
        let on_a = settle(&intruder, &app, b, &a_topic, verb, body).await;
        assert_error(on_a, StatusCode::FORBIDDEN, "forbidden").await;
    }

    // Nothing moved for A: same expiry, still open, still leased.
    assert_eq!(expiry().await.unwrap(), before);
    let (status, again, _) = manual_get(&app.data, &app, a, &a_topic, "group=workers").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        again.is_empty(),
        "A's leased messages were released: {again:?}"
    );
    let acked = settle(
        &app.data,
        &app,
        a,
        &a_topic,
        "ack",
        &json!({ "receipt": receipt }),
    )
    .await;
    assert_eq!(acked.status(), StatusCode::NO_CONTENT);
    assert_eq!(expiry().await.unwrap().1.as_deref(), Some("acked"));
    // Acked, never delivered again, in either mode.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, after, _) = manual_get(&app.data, &app, a, &a_topic, "group=workers").await;
    assert!(after.is_empty(), "acked messages came back: {after:?}");
    assert!(app
        .consume_ok(&a_user, &a_password, &a_topic, "group=workers")
        .await
        .is_empty());

    // B's own receipt is untouched by A's being tried on B's topic.
    let b_acked = settle(
        &app.data,
        &app,
        b,
        &b_topic,
        "ack",
        &json!({ "receipt": b_receipt.unwrap() }),
    )
    .await;
    assert_eq!(b_acked.status(), StatusCode::NO_CONTENT);
}
