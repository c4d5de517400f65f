//! Group filters: `PUT /topic/{topic}/groups/{group}` with `{"filter"}`
//! gives a group on a topic only the messages that match; the others are
//! skipped for it (its position moves past them), counted in
//! `Sluice-Filtered-Messages` and in a per-tenant metric. A filter that
//! does not parse is 400 `invalid_filter`, naming the position.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, sample, TestApp};

/// The orders of the tests, each a JSON value with a region header.
const ORDERS: &str = r#"[
    {"Key":"o-1","Value":"{\"type\":\"order\",\"total\":10}","Headers":{"region":"eu-west"}},
    {"Key":"r-1","Value":"{\"type\":\"refund\",\"total\":10}","Headers":{"region":"eu-west"}},
    {"Key":"o-2","Value":"{\"type\":\"order\",\"total\":25}","Headers":{"region":"us-east"}},
    {"Key":"x-1","Value":"not json at all"},
    {"Key":"o-3","Value":"{\"type\":\"order\",\"total\":7,\"paid\":true}","Headers":{"region":"eu-north"}}
]"#;

fn keys(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["Key"].as_str().unwrap())
        .collect()
}

fn filtered(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("Sluice-Filtered-Messages")
        .map(|v| v.to_str().unwrap().parse().unwrap())
}

async fn put_filter(
    app: &TestApp,
    (user, password): (&str, &str),
    topic: &str,
    group: &str,
    body: &Value,
) -> Value {
    let response = app.put_group(user, password, topic, group, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// `PUT` of `{"filter": filter}`, asserting a 200.
async fn set_filter(
    app: &TestApp,
    credentials: (&str, &str),
    topic: &str,
    group: &str,
    filter: &str,
) -> Value {
    put_filter(app, credentials, topic, group, &json!({ "filter": filter })).await
}

#[tokio::test]
async fn a_group_with_a_filter_gets_only_what_matches_and_moves_past_the_rest() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce(&user, &password, &topic, ORDERS).await;
    let filter = r#"value.type == "order" && (header.region ^= "eu-" || value.paid == true)"#;
    let shown = set_filter(&app, (&user, &password), &topic, "eu-orders", filter).await;
    assert_eq!(shown["filter"], filter);
    assert_eq!(shown["dead_letters"], Value::Null);

    let response = app
        .consume(&user, &password, &topic, "group=eu-orders&limit=100")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(filtered(&response), Some(3));
    let messages: Vec<Value> = response.json().await.unwrap();
    assert_eq!(keys(&messages), ["o-1", "o-3"]);

    // The position moved past the skipped messages: nothing comes again.
    let again = app
        .consume(&user, &password, &topic, "group=eu-orders&limit=100")
        .await;
    assert_eq!(filtered(&again), None);
    assert_eq!(
        again.json::<Vec<Value>>().await.unwrap(),
        Vec::<Value>::new()
    );
    let view = app
        .get_topic_group(&user, &password, &topic, "eu-orders")
        .await;
    let view: Value = view.json().await.unwrap();
    assert_eq!(view["lag"], 0, "{view}");

    // Another group of the tenant, without a filter, gets everything.
    let all = app
        .consume_ok(&user, &password, &topic, "group=audit&limit=100")
        .await;
    assert_eq!(all.len(), 5);

    let metrics = app.get_metrics().await;
    let counted = sample(
        &metrics,
        "sluice_consume_filtered_messages_total",
        &[("tenant", &tenant)],
    );
    assert_eq!(counted, Some(3.0), "per-tenant filtered count");
}

#[tokio::test]
async fn an_invalid_filter_is_a_400_naming_the_position_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let kept = r#"key ^= "o-""#;
    set_filter(&app, (&user, &password), &topic, "g", kept).await;

    let cases = [
        (r#"key == "#, 7),
        (r#"value.type = "order""#, 11),
        (r#"header. == "x""#, 7),
        (r#"key == "a" &&"#, 13),
        (r#"(key == "a""#, 11),
        ("", 0),
    ];
    for (bad, at) in cases {
        let response = app
            .put_group(&user, &password, &topic, "g", &json!({ "filter": bad }))
            .await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_filter").await;
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("position {at}")),
            "{bad:?}: {message}"
        );
    }
    let long = format!(r#"key == "{}""#, "a".repeat(2000));
    let response = app
        .put_group(&user, &password, &topic, "g", &json!({ "filter": long }))
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "invalid_filter").await;
    // Not a string: the body is refused as a whole.
    let response = app
        .put_group(&user, &password, &topic, "g", &json!({ "filter": 3 }))
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let view: Value = app
        .get_topic_group(&user, &password, &topic, "g")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["filter"], kept, "a refused filter replaced nothing");
}

#[tokio::test]
async fn a_field_left_out_keeps_its_value_and_null_clears_it() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let dlq = format!("{tenant}.orders.dlq");
    app.create_topic(&tenant, &dlq, 1).await;
    let filter = r#"key ^= "o-""#;
    set_filter(&app, (&user, &password), &topic, "g", filter).await;

    // Setting the dead-letter policy leaves the filter alone, and back.
    let policy = json!({ "max_deliveries": 3, "dead_letter_topic": dlq });
    let shown = put_filter(&app, (&user, &password), &topic, "g", &policy).await;
    assert_eq!(shown["filter"], filter);
    assert_eq!(shown["dead_letters"]["max_deliveries"], 3);
    let shown = put_filter(&app, (&user, &password), &topic, "g", &json!({})).await;
    assert_eq!(shown["filter"], filter);
    assert_eq!(shown["dead_letters"]["max_deliveries"], 3);

    let shown = put_filter(
        &app,
        (&user, &password),
        &topic,
        "g",
        &json!({ "filter": null }),
    )
    .await;
    assert_eq!(shown["filter"], Value::Null);
    assert_eq!(shown["dead_letters"]["max_deliveries"], 3);
    app.produce(&user, &password, &topic, ORDERS).await;
    let all = app
        .consume_ok(&user, &password, &topic, "group=g&limit=100")
        .await;
    assert_eq!(all.len(), 5, "no filter once cleared");

    // Every change is audited with the user as actor.
    let entries: Vec<Value> = app
        .get_audit(&format!("tenant={tenant}&action=group.filter"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(
        entries.iter().all(|e| e["actor"] == format!("user:{user}")),
        "{entries:?}"
    );
}

#[tokio::test]
async fn a_match_far_behind_many_skipped_messages_comes_in_one_get() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let mut batch: Vec<Value> = (0..900)
        .map(|i| json!({ "Key": format!("noise-{i}"), "Value": "{}" }))
        .collect();
    batch.push(json!({ "Key": "wanted", "Value": "{}" }));
    let response = app
        .produce(&user, &password, &topic, &Value::from(batch).to_string())
        .await;
    assert!(response.status().is_success());
    set_filter(
        &app,
        (&user, &password),
        &topic,
        "picky",
        r#"key == "wanted""#,
    )
    .await;

    // limit=1 and no wait: one GET still reads past the 900.
    let response = app
        .consume(&user, &password, &topic, "group=picky&limit=1")
        .await;
    assert_eq!(filtered(&response), Some(900));
    let messages: Vec<Value> = response.json().await.unwrap();
    assert_eq!(keys(&messages), ["wanted"]);
}

#[tokio::test]
async fn a_filter_changed_on_one_node_applies_on_another_that_had_cached_it() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn_node(&first).await;
    let (_, topic, user, password) = first.tenant_with_topic(1).await;
    set_filter(&first, (&user, &password), &topic, "g", r#"key == "r-1""#).await;
    first.produce(&user, &password, &topic, ORDERS).await;
    let seen = second
        .consume_ok(&user, &password, &topic, "group=g&limit=100")
        .await;
    assert_eq!(keys(&seen), ["r-1"]);

    set_filter(&first, (&user, &password), &topic, "g", r#"key ^= "o-""#).await;
    first.produce(&user, &password, &topic, ORDERS).await;
    // The notice reaches the second node within moments, not the cache's
    // minute.
    let mut got = Vec::new();
    for _ in 0..50 {
        let response = second
            .consume(&user, &password, &topic, "group=g&limit=100&wait=200")
            .await;
        got.extend(response.json::<Vec<Value>>().await.unwrap());
        if !got.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(keys(&got), ["o-1", "o-2", "o-3"], "the new filter applied");
}

/// A manual-mode GET of group `g` with a short visibility.
const MANUAL_GET: &str = "group=g&limit=100&ack=manual&visibility=300";

#[tokio::test]
async fn a_filtered_manual_mode_get_holds_only_what_it_delivered() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce(&user, &password, &topic, ORDERS).await;
    set_filter(
        &app,
        (&user, &password),
        &topic,
        "g",
        r#"value.total == 10"#,
    )
    .await;
    let response = app.consume(&user, &password, &topic, MANUAL_GET).await;
    assert_eq!(filtered(&response), Some(3));
    let receipt = response.headers()["Sluice-Receipt"]
        .to_str()
        .unwrap()
        .to_owned();
    let first: Vec<Value> = response.json().await.unwrap();
    assert_eq!(keys(&first), ["o-1", "r-1"]);

    // Not acked: delivered again, still filtered, counted as a second delivery.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let again = app.consume(&user, &password, &topic, MANUAL_GET).await;
    let again: Vec<Value> = again.json().await.unwrap();
    assert_eq!(keys(&again), ["o-1", "r-1"]);
    assert!(again.iter().all(|m| m["Deliveries"] == 2), "{again:?}");
    let stale = app
        .post_ack(&user, &password, &topic, &json!({ "receipt": receipt }))
        .await;
    assert!(stale.status().is_client_error(), "the old receipt is spent");
}
