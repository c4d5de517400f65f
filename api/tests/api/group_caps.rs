//! Per-tenant caps on shared resources: `max_groups`, concurrent consumes
//! per node, the retention of unused groups, and operators deleting groups.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::Offset;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::kafka::committed;
use crate::helpers::{assert_error, tls, TestApp};

/// A data-plane client whose connections come from another loopback
/// address, as an attacker's would.
fn client_from(address: Ipv4Addr) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(tls::certs().ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .local_address(IpAddr::V4(address))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn get(
    client: &reqwest::Client,
    app: &TestApp,
    user: &str,
    password: &str,
    topic: &str,
    query: &str,
) -> reqwest::Response {
    client
        .get(format!("{}/topic/{topic}?{query}", app.public_url))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
}

async fn count(app: &TestApp, sql: &str, tenant: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(tenant)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn groups_of(app: &TestApp, tenant: &str) -> i64 {
    count(
        app,
        "SELECT count(*) FROM consumer_groups WHERE tenant = $1",
        tenant,
    )
    .await
}

async fn cursor_groups_of(app: &TestApp, tenant: &str) -> i64 {
    count(
        app,
        "SELECT count(DISTINCT group_name) FROM cursors WHERE tenant = $1",
        tenant,
    )
    .await
}

/// A tenant with the given quota, a read-write user and a one-partition
/// topic; returns (tenant, topic, user, password).
async fn tenant_with(app: &TestApp, quota: Value) -> (String, String, String, String) {
    let (tenant, user, password) = app.tenant_with_quota(quota).await;
    let topic = format!("{tenant}.orders");
    app.create_topic(&tenant, &topic, 1).await;
    (tenant, topic, user, password)
}

/// Waits until Kafka shows `expected` for the group, or fails.
async fn await_committed(bootstrap: &str, group: &str, topic: &str, expected: Offset) {
    let started = Instant::now();
    loop {
        let (b, g, t) = (bootstrap.to_owned(), group.to_owned(), topic.to_owned());
        let offset = tokio::task::spawn_blocking(move || committed(&b, &g, &t))
            .await
            .unwrap();
        if offset == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "Kafka shows {offset:?} for {group}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn new_tenants_get_the_configured_group_and_consume_caps() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant(&crate::helpers::unique_tenant()).await;
    assert_eq!(tenant["quota"]["max_groups"], 100);
    assert_eq!(tenant["quota"]["max_concurrent_consumes"], 32);
    assert_eq!(tenant["groups"], 0);
    let name = tenant["name"].as_str().unwrap();
    let patched: Value = app
        .patch_tenant(name, &json!({ "quota": { "max_groups": 3 } }))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(patched["quota"]["max_groups"], 3);
    let refused = app
        .patch_tenant(name, &json!({ "quota": { "max_concurrent_consumes": 0 } }))
        .await;
    assert_error(refused, StatusCode::BAD_REQUEST, "invalid_quota").await;
}

#[tokio::test]
async fn a_group_past_max_groups_gets_409_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = tenant_with(&app, json!({ "max_groups": 3 })).await;
    app.produce_numbered(&user, &password, &topic, 5).await;
    for group in ["g1", "g2", "g3"] {
        let read = app
            .consume_ok(&user, &password, &topic, &format!("group={group}"))
            .await;
        assert_eq!(read.len(), 1);
    }

    let refused = app.consume(&user, &password, &topic, "group=g4").await;
    let body = assert_error(refused, StatusCode::CONFLICT, "group_limit_reached").await;
    assert!(body["message"].as_str().unwrap().contains("max_groups"));
    assert_eq!(groups_of(&app, &tenant).await, 3);
    assert_eq!(cursor_groups_of(&app, &tenant).await, 3);
    let listed: Vec<Value> = app.get_groups(&tenant).await.json().await.unwrap();
    assert!(listed.iter().all(|g| g["group"] != "g4"), "{listed:?}");

    // The groups it has keep working, and deleting one makes room.
    assert_eq!(
        app.consume_ok(&user, &password, &topic, "group=g1")
            .await
            .len(),
        1
    );
    let deleted = app.delete_group(&tenant, "g2").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.consume_ok(&user, &password, &topic, "group=g4")
            .await
            .len(),
        1
    );
    let shown: Value = app.get_tenant(&tenant).await.json().await.unwrap();
    assert_eq!(shown["groups"], 3);
}

#[tokio::test]
async fn concurrent_new_groups_on_two_nodes_never_exceed_max_groups() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_node(&first).await;
    let (tenant, topic, user, password) = tenant_with(
        &first,
        json!({ "max_groups": 5, "requests_per_second": 10_000 }),
    )
    .await;
    // Logins cached on both nodes first: this test is about groups.
    for node in [&first, &second] {
        let me = node
            .data
            .get(format!("{}/me", node.public_url))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
    }
    let nodes = Arc::new([first, second]);
    let mut gets = Vec::new();
    for i in 0..24 {
        let (nodes, topic, user, password) =
            (nodes.clone(), topic.clone(), user.clone(), password.clone());
        gets.push(tokio::spawn(async move {
            let node = &nodes[i % 2];
            node.consume(&user, &password, &topic, &format!("group=new{i}"))
                .await
                .status()
        }));
    }
    let mut created = 0;
    for get in gets {
        match get.await.unwrap() {
            StatusCode::OK => created += 1,
            StatusCode::CONFLICT => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 5, "exactly max_groups GETs create a group");
    assert_eq!(groups_of(&nodes[0], &tenant).await, 5);
    assert!(cursor_groups_of(&nodes[0], &tenant).await <= 5);
}

#[tokio::test]
async fn a_tenant_at_its_consume_cap_gets_429_while_another_tenant_is_served() {
    let app = Arc::new(TestApp::spawn().await);
    let (_, a_topic, a_user, a_password) = tenant_with(
        &app,
        json!({ "max_concurrent_consumes": 8, "requests_per_second": 10_000 }),
    )
    .await;
    let (_, b_topic, b_user, b_password) = tenant_with(&app, json!({})).await;
    app.produce_numbered(&b_user, &b_password, &b_topic, 200)
        .await;

    // Tenant A opens 200 long polls on its empty topic, from 127.0.0.2
    // (its login cached first: this test is about consumes, not logins).
    let attacker = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let warm = get(&attacker, &app, &a_user, &a_password, &a_topic, "").await;
    assert_eq!(warm.status(), StatusCode::OK);
    let mut polls = Vec::new();
    for _ in 0..200 {
        let (app, attacker, topic, user, password) = (
            app.clone(),
            attacker.clone(),
            a_topic.clone(),
            a_user.clone(),
            a_password.clone(),
        );
        polls.push(tokio::spawn(async move {
            let started = Instant::now();
            let response = get(&attacker, &app, &user, &password, &topic, "wait=8000").await;
            let status = response.status();
            let retry_after = response.headers().get("retry-after").cloned();
            let body: Value = response.json().await.unwrap();
            (status, retry_after, body, started.elapsed())
        }));
    }

    // Meanwhile tenant B consumes on the same node.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let started = Instant::now();
        let response = app.consume(&b_user, &b_password, &b_topic, "limit=1").await;
        assert_eq!(response.status(), StatusCode::OK, "tenant B refused");
        let messages: Vec<Value> = response.json().await.unwrap();
        assert_eq!(messages.len(), 1);
        latencies.push(started.elapsed());
    }
    // A's own extra GETs are refused while its polls are open.
    let extra = get(&attacker, &app, &a_user, &a_password, &a_topic, "").await;
    assert_error(extra, StatusCode::TOO_MANY_REQUESTS, "too_many_consumes").await;

    let mut open = 0;
    let mut refused = 0;
    for poll in polls {
        let (status, retry_after, body, took) = poll.await.unwrap();
        match status {
            StatusCode::OK => {
                open += 1;
                assert!(took >= Duration::from_secs(7), "a poll answered early");
            }
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert_eq!(body["code"], "too_many_consumes");
                assert!(retry_after.is_some(), "a 429 says when to retry");
                assert!(took < Duration::from_secs(5), "a refusal is quick");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(open, 8, "the node admits A's share and no more");
    assert_eq!(refused, 192);

    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    eprintln!(
        "tenant B while A held its 8 slots and was refused 192 polls: p50 {:?}, p99 {:?}, max {:?}",
        latencies[latencies.len() / 2],
        p99,
        latencies[latencies.len() - 1]
    );
    assert!(
        p99 < Duration::from_secs(2),
        "tenant B's p99 was {p99:?} while A was at its cap"
    );
    // Once A's polls have answered, its slots are free again.
    let again = get(&attacker, &app, &a_user, &a_password, &a_topic, "").await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn two_live_nodes_each_admit_half_of_the_concurrent_consumes() {
    let first = Arc::new(TestApp::spawn().await);
    let second = TestApp::spawn_node(&first).await;
    let (tenant, topic, user, password) = tenant_with(
        &first,
        json!({ "max_concurrent_consumes": 6, "requests_per_second": 10_000 }),
    )
    .await;
    // Each node sees the other within a few heartbeats.
    let started = Instant::now();
    loop {
        let me: Value = first
            .data
            .get(format!("{}/me", first.public_url))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if me["usage"]["live_nodes"] == 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the nodes never saw each other: {me}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(groups_of(&second, &tenant).await, 0);
    let mut polls = Vec::new();
    for _ in 0..10 {
        let (app, topic, user, password) =
            (first.clone(), topic.clone(), user.clone(), password.clone());
        polls.push(tokio::spawn(async move {
            app.consume(&user, &password, &topic, "wait=3000")
                .await
                .status()
        }));
    }
    let mut open = 0;
    for poll in polls {
        if poll.await.unwrap() == StatusCode::OK {
            open += 1;
        }
    }
    assert_eq!(open, 3, "6 over 2 live nodes is 3 on this one");
}

#[tokio::test]
async fn a_group_unused_past_the_retention_is_deleted_with_its_kafka_group() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("consume.group_sweep_interval_ms", 200))
            .merge(("consume.mirror_interval_ms", 200))
    })
    .await;
    let (tenant, topic, user, password) = tenant_with(&app, json!({})).await;
    app.produce_numbered(&user, &password, &topic, 5).await;
    for group in ["old", "fresh"] {
        let read = app
            .consume_ok(&user, &password, &topic, &format!("group={group}&limit=3"))
            .await;
        assert_eq!(read.len(), 3);
    }
    let kafka_old = format!("{tenant}.old");
    await_committed(&app.bootstrap, &kafka_old, &topic, Offset::Offset(3)).await;

    // Eight days ago, by the database's clock.
    sqlx::query(
        "UPDATE consumer_groups SET last_used_at = now() - interval '8 days'
         WHERE tenant = $1 AND group_name = 'old'",
    )
    .bind(&tenant)
    .execute(&app.db)
    .await
    .unwrap();

    let started = Instant::now();
    while count(
        &app,
        "SELECT count(*) FROM cursors WHERE tenant = $1 AND group_name = 'old'",
        &tenant,
    )
    .await
        > 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the janitor never deleted the group"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(groups_of(&app, &tenant).await, 1, "'fresh' is kept");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM cursors WHERE tenant = $1 AND group_name = 'fresh'",
            &tenant
        )
        .await,
        1
    );
    await_committed(&app.bootstrap, &kafka_old, &topic, Offset::Invalid).await;
    let audit: Vec<Value> = app
        .get_audit(&format!("action=group.expire&tenant={tenant}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["target"], "old");

    // The name can be used again: a new group, from the earliest offset.
    let again = app
        .consume_ok(&user, &password, &topic, "group=old&limit=5")
        .await;
    assert_eq!(again.len(), 5);
    assert_eq!(again[0]["Offset"], 0);
}

#[tokio::test]
async fn operators_list_and_delete_groups_through_the_api_and_the_cli() {
    let app = TestApp::spawn_with(|f| f.merge(("consume.mirror_interval_ms", 200))).await;
    let (tenant, topic, user, password) = tenant_with(&app, json!({})).await;
    app.produce_numbered(&user, &password, &topic, 4).await;
    for group in ["a", "b"] {
        app.consume_ok(&user, &password, &topic, &format!("group={group}&limit=2"))
            .await;
    }
    let listed: Vec<Value> = app.get_groups(&tenant).await.json().await.unwrap();
    let names: Vec<&str> = listed
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert!(listed.iter().all(|g| g["last_used_at"].is_string()));
    let kafka_a = format!("{tenant}.a");
    await_committed(&app.bootstrap, &kafka_a, &topic, Offset::Offset(2)).await;

    let deleted = app.delete_group(&tenant, "a").await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let listed: Vec<Value> = app.get_groups(&tenant).await.json().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["group"], "b");
    await_committed(&app.bootstrap, &kafka_a, &topic, Offset::Invalid).await;
    let audit: Vec<Value> = app
        .get_audit(&format!("action=group.delete&tenant={tenant}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["target"], "a");
    assert_eq!(audit[0]["details"]["cursors_deleted"], 1);

    let again = app.delete_group(&tenant, "a").await;
    assert_error(again, StatusCode::NOT_FOUND, "group_not_found").await;
    let bad = app.delete_group(&tenant, "a..b").await;
    assert_error(bad, StatusCode::BAD_REQUEST, "invalid_group").await;

    // A deleted group read again starts over, as a new group does.
    let reread = app
        .consume_ok(&user, &password, &topic, "group=a&limit=4")
        .await;
    assert_eq!(reread.len(), 4);

    let out = app.cli(&["group", "delete", &tenant, "b"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = app.cli(&["group", "delete", &tenant, "b"]).await;
    assert_eq!(out.status.code(), Some(3), "not found exits with 3");
    let listed: Vec<Value> = app.get_groups(&tenant).await.json().await.unwrap();
    assert_eq!(listed.len(), 1, "only 'a', read again, is left");
}
