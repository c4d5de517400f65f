use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rdkafka::mocking::MockCluster;
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use serde_json::{json, Value};

use crate::helpers::process::BinaryNode;
use crate::helpers::{sample, unique_tenant, TestApp};

#[tokio::test]
async fn a_node_killed_mid_drain_loses_at_most_what_was_in_flight_and_duplicates_nothing() {
    let survivor = TestApp::spawn().await;
    let (_, topic, user, password) = survivor.tenant_with_topic(6).await;
    survivor
        .produce_numbered(&user, &password, &topic, 3000)
        .await;
    let mut victim = BinaryNode::start(&survivor.database_url, &survivor.bootstrap, "warn").await;
    let survivor = Arc::new(survivor);
    let victim_url = Arc::new(victim.public_url.clone());
    let consumed = Arc::new(AtomicUsize::new(0));

    let mut clients = Vec::new();
    for client in 0..4usize {
        let (survivor, victim_url, topic, user, password, consumed) = (
            survivor.clone(),
            victim_url.clone(),
            topic.clone(),
            user.clone(),
            password.clone(),
            consumed.clone(),
        );
        clients.push(tokio::spawn(async move {
            let limit = 20usize;
            let mut got = Vec::new();
            let mut lost_allowance = 0usize;
            let mut victim_alive = true;
            let mut empties = 0;
            for round in 0.. {
                let use_victim = victim_alive && (client + round) % 2 == 0;
                let base = if use_victim {
                    victim_url.as_str()
                } else {
                    survivor.public_url.as_str()
                };
                let result = survivor
                    .data
                    .get(format!("{base}/topic/{topic}?limit={limit}"))
                    .basic_auth(&user, Some(&password))
                    .send()
                    .await;
                let body = match result {
                    Ok(response) => response.text().await,
                    Err(err) => Err(err),
                };
                let messages: Vec<Value> = match body.map(|t| serde_json::from_str(&t)) {
                    Ok(Ok(messages)) => messages,
                    _ => {
                        // A transport error: the answer may have been lost.
                        assert!(use_victim, "the survivor failed");
                        lost_allowance += limit;
                        victim_alive = false;
                        continue;
                    }
                };
                if messages.is_empty() {
                    // The killed node's leases keep its partitions for
                    // consume.lease_ms (5 s here); wait them out.
                    empties += 1;
                    if empties >= 30 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                empties = 0;
                consumed.fetch_add(messages.len(), Ordering::SeqCst);
                got.extend(
                    messages
                        .iter()
                        .map(|m| m["Value"].as_str().unwrap().parse::<u32>().unwrap()),
                );
            }
            (got, lost_allowance)
        }));
    }
    while consumed.load(Ordering::SeqCst) < 1000 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    victim.signal("KILL");
    let _ = victim.child.wait().await;

    let mut all = Vec::new();
    let mut allowance = 0;
    for client in clients {
        let (got, lost) = client.await.unwrap();
        all.extend(got);
        allowance += lost;
    }
    let unique: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        unique.len(),
        "{} duplicates",
        all.len() - unique.len()
    );
    let lost = 3000 - unique.len();
    assert!(
        lost <= allowance,
        "lost {lost}, more than the {allowance} in failed requests"
    );
}

#[tokio::test]
async fn real_multi_record_batches_are_drained_exactly_once_through_two_nodes() {
    let mock = MockCluster::new(1).unwrap();
    let tenant = unique_tenant();
    let topic = format!("{tenant}.batched");
    mock.create_topic(&topic, 3, 1).unwrap();
    let servers = mock.bootstrap_servers();
    let batched = move |f: figment::Figment| {
        f.merge(("kafka.bootstrap_servers", servers.clone())).merge(
            figment::providers::Serialized::default(
                "kafka.properties",
                json!({ "batch.num.messages": "500", "linger.ms": "50" }),
            ),
        )
    };
    let first = TestApp::spawn_with(batched.clone()).await;
    let second = TestApp::start_node_with(&first, batched).await;
    first.create_tenant(&tenant).await;
    let (user, password) = first.rw_user(&tenant).await;
    first.produce_numbered(&user, &password, &topic, 2000).await;

    let nodes = Arc::new([first, second]);
    let done = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for client in 0..4usize {
        let (nodes, topic, user, password, done) = (
            nodes.clone(),
            topic.clone(),
            user.clone(),
            password.clone(),
            done.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let mut empties = 0;
            for round in 0.. {
                if done.load(Ordering::SeqCst) && empties >= 3 {
                    break;
                }
                let messages = nodes[(client + round) % 2]
                    .consume_ok(&user, &password, &topic, "limit=7")
                    .await;
                if messages.is_empty() {
                    empties += 1;
                    if empties >= 10 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                empties = 0;
                got.extend(
                    messages
                        .iter()
                        .map(|m| m["Value"].as_str().unwrap().parse::<u32>().unwrap()),
                );
            }
            got
        }));
    }
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.unwrap());
    }
    done.store(true, Ordering::SeqCst);
    let unique: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        unique.len(),
        "{} duplicates",
        all.len() - unique.len()
    );
    assert_eq!(unique.len(), 2000, "{} lost", 2000 - unique.len());
}

/// librdkafka's mock cluster keeps at most 5 MiB per partition and drops
/// the oldest message sets beyond that, which is retention as far as a
/// reader can tell: the log start offset moves past a slow group's cursor.
#[tokio::test]
async fn a_cursor_that_falls_behind_retention_jumps_to_the_earliest_offset_and_reports_the_skip() {
    let mock = MockCluster::new(1).unwrap();
    let tenant = unique_tenant();
    let topic = format!("{tenant}.retained");
    mock.create_topic(&topic, 1, 1).unwrap();
    let servers = mock.bootstrap_servers();
    let on_mock = move |f: figment::Figment| f.merge(("kafka.bootstrap_servers", servers.clone()));
    let app = TestApp::spawn_with(on_mock.clone()).await;
    app.create_tenant(&tenant).await;
    let (user, password) = app.rw_user(&tenant).await;
    let big = "x".repeat(100 * 1024);
    let batch = |n: usize| Value::from(vec![json!({ "Value": big }); n]).to_string();
    assert_eq!(
        app.produce(&user, &password, &topic, &batch(2))
            .await
            .status(),
        200
    );
    let first = app.consume_ok(&user, &password, &topic, "limit=1").await;
    assert_eq!(first[0]["Offset"], 0);

    // 6 MiB more: the oldest message sets, the slow group's cursor among
    // them, fall out of the log.
    for _ in 0..6 {
        assert_eq!(
            app.produce(&user, &password, &topic, &batch(10))
                .await
                .status(),
            200
        );
    }
    // Another node, whose readers have fetched nothing ahead (the first
    // node's reader may still hold the dropped messages in its queue).
    let other = TestApp::start_node_with(&app, on_mock).await;
    let response = other.consume(&user, &password, &topic, "limit=5").await;
    assert_eq!(response.status(), 200);
    let skipped: i64 = response
        .headers()
        .get("sluice-skipped-messages")
        .expect("the skip is reported")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let messages: Vec<Value> = response.json().await.unwrap();
    let earliest = messages[0]["Offset"].as_i64().unwrap();
    assert!(earliest > 1, "nothing was dropped: {earliest}");
    assert_eq!(
        skipped,
        earliest - 1,
        "the skip counts what lay between the cursor and the log start"
    );
    let offsets: Vec<i64> = messages
        .iter()
        .map(|m| m["Offset"].as_i64().unwrap())
        .collect();
    assert_eq!(offsets, (earliest..earliest + 5).collect::<Vec<_>>());

    let metrics = app.get_metrics().await;
    assert_eq!(
        sample(
            &metrics,
            "sluice_consume_skipped_messages_total",
            &[("tenant", &tenant)]
        ),
        Some(skipped as f64),
        "the skip is counted per tenant"
    );
}

/// An OFFSET_OUT_OF_RANGE answer for a cursor that is in fact inside the
/// log (a broker mid-failover can say so): the reader re-checks the
/// retained range, moves nowhere, and the group loses and repeats nothing.
#[tokio::test]
async fn an_offset_out_of_range_answer_is_recovered_without_loss_or_duplicates() {
    let mock = MockCluster::new(1).unwrap();
    let tenant = unique_tenant();
    let topic = format!("{tenant}.retained");
    mock.create_topic(&topic, 1, 1).unwrap();
    let servers = mock.bootstrap_servers();
    let app = TestApp::spawn_with(move |f| f.merge(("kafka.bootstrap_servers", servers))).await;
    app.create_tenant(&tenant).await;
    let (user, password) = app.rw_user(&tenant).await;
    app.produce_numbered(&user, &password, &topic, 10).await;
    assert_eq!(
        app.consume_ok(&user, &password, &topic, "limit=3")
            .await
            .len(),
        3
    );

    // The next fetch (for a second group, so the reader must fetch anew)
    // is refused as out of range.
    mock.request_errors(
        RDKafkaApiKey::Fetch,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE],
    );
    let mut seen = Vec::new();
    for _ in 0..20 {
        let messages = app
            .consume_ok(&user, &password, &topic, "group=second&limit=10")
            .await;
        seen.extend(messages.iter().map(|m| m["Offset"].as_i64().unwrap()));
        if seen.len() >= 10 {
            break;
        }
    }
    assert_eq!(seen, (0..10).collect::<Vec<i64>>());
    let rest = app.consume_ok(&user, &password, &topic, "limit=10").await;
    let offsets: Vec<i64> = rest.iter().map(|m| m["Offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, [3, 4, 5, 6, 7, 8, 9]);
}

#[tokio::test]
async fn reader_threads_and_memory_stay_flat_across_a_thousand_groups() {
    let app = TestApp::spawn().await;
    // GETs served from the cache of recent messages come fast: more than
    // the default quota's share on each of the two nodes.
    let (tenant, user, password) = app
        .tenant_with_quota(json!({ "requests_per_second": 10_000, "max_groups": 2_000 }))
        .await;
    let topic = format!("{tenant}.orders");
    app.create_topic(&tenant, &topic, 2).await;
    app.produce_numbered(&user, &password, &topic, 10).await;
    let node = BinaryNode::start(&app.database_url, &app.bootstrap, "warn").await;
    let get = |group: String| {
        let url = format!("{}/topic/{topic}?group={group}", node.public_url);
        let request = app.data.get(url).basic_auth(&user, Some(&password));
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            let messages: Vec<Value> = response.json().await.unwrap();
            assert_eq!(messages.len(), 1);
        }
    };
    get("g0".into()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (threads_before, rss_before) = node.threads_and_rss();

    for i in 1..1000 {
        get(format!("g{i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (threads_after, rss_after) = node.threads_and_rss();

    assert!(
        threads_after.abs_diff(threads_before) <= 2,
        "threads went from {threads_before} to {threads_after}"
    );
    assert!(
        rss_after.saturating_sub(rss_before) < 100 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}
