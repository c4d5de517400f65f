//! A tenant's own groups on the data plane: `/topic/{topic}/groups` lists
//! them with their lag, seeks move them (audited with the user as actor),
//! a PUT sets their dead-letter policy; and the lag gauge follows a group
//! that stopped reading.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, sample, unique_tenant, TestApp};

/// Produces `count` messages stamped one second apart from `base` ms.
async fn produce_stamped(app: &TestApp, user: &str, password: &str, topic: &str, count: i64) {
    let body: Vec<Value> = (0..count)
        .map(|i| json!({ "Value": i.to_string(), "Timestamp": 1_700_000_000_000_i64 + i * 1000 }))
        .collect();
    let response = app
        .produce(user, password, topic, &Value::from(body).to_string())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

async fn json_ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, StatusCode::OK, "{text}");
    serde_json::from_str(&text).expect("a JSON body")
}

/// The next offsets of a group view, by partition.
fn offsets(view: &Value) -> Vec<i64> {
    view["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_tenant_lists_its_groups_on_a_topic_with_next_offset_high_watermark_and_lag_per_partition(
) {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    produce_stamped(&app, &user, &password, &topic, 10).await;
    app.consume_ok(&user, &password, &topic, "group=billing&limit=4")
        .await;

    let groups = json_ok(app.get_topic_groups(&user, &password, &topic).await).await;
    let groups = groups.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{groups:?}");
    assert_eq!(groups[0]["group"], "billing");
    assert_eq!(groups[0]["topic"], topic.as_str());
    assert_eq!(groups[0]["lag"], 6);
    let partition = &groups[0]["partitions"][0];
    assert_eq!(partition["partition"], 0);
    assert_eq!(partition["offset"], 4);
    assert_eq!(partition["high"], 10);
    assert_eq!(partition["lag"], 6);
    assert!(partition["leased"].is_null(), "{partition}");
    assert!(groups[0]["dead_letters"].is_null());

    let one = json_ok(
        app.get_topic_group(&user, &password, &topic, "billing")
            .await,
    )
    .await;
    assert_eq!(one["lag"], 6);
    let missing = app
        .get_topic_group(&user, &password, &topic, "nobody")
        .await;
    assert_error(missing, StatusCode::NOT_FOUND, "group_not_found").await;
}

#[tokio::test]
async fn another_tenants_user_or_a_user_without_read_sees_nothing_of_the_groups() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    produce_stamped(&app, &user, &password, &topic, 3).await;
    app.consume_ok(&user, &password, &topic, "group=billing")
        .await;

    let other = unique_tenant();
    app.create_tenant(&other).await;
    let (stranger, stranger_password) = app.rw_user(&other).await;
    let writer = format!("{tenant}.writer");
    let writer_password = app
        .create_user(
            &tenant,
            &writer,
            json!([{ "prefix": format!("{tenant}."), "read": false, "write": true }]),
        )
        .await;
    for (who, password) in [(&stranger, &stranger_password), (&writer, &writer_password)] {
        let list = app.get_topic_groups(who, password, &topic).await;
        let body = assert_error(list, StatusCode::FORBIDDEN, "forbidden").await;
        assert!(!body.to_string().contains("billing"), "{body}");
        let one = app.get_topic_group(who, password, &topic, "billing").await;
        assert_error(one, StatusCode::FORBIDDEN, "forbidden").await;
        let seek = app
            .post_seek(
                who,
                password,
                &topic,
                "billing",
                &json!({ "to": "earliest" }),
            )
            .await;
        assert_error(seek, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let audit: Vec<Value> = app
        .get_audit("action=group.reset")
        .await
        .json()
        .await
        .unwrap();
    assert!(audit.is_empty(), "{audit:?}");
}

/// The `billing` group after a seek, asserting a 200.
async fn seek_billing(
    app: &TestApp,
    (user, password, topic): (&str, &str, &str),
    body: Value,
) -> Value {
    json_ok(app.post_seek(user, password, topic, "billing", &body).await).await
}

/// The `billing` group's view, asserting a 200.
async fn show_billing(app: &TestApp, (user, password, topic): (&str, &str, &str)) -> Value {
    json_ok(app.get_topic_group(user, password, topic, "billing").await).await
}

#[tokio::test]
async fn seeks_to_earliest_latest_a_timestamp_and_explicit_offsets_move_the_group_and_are_audited_with_the_user(
) {
    let app = TestApp::spawn().await;
    let (tenant, _, user, password) = app.tenant_with_topic(1).await;
    let topic = format!("{tenant}.events");
    app.create_topic(&tenant, &topic, 2).await;
    // Partition 0 only, one request each: five, then a point in time,
    // then five more. (The messages carry the time they were produced:
    // tansu finds a time by when it stored each batch, Kafka by the
    // messages' timestamps, and both agree here.)
    let produce_one = |i: i64| {
        let body = json!([{ "Value": i.to_string(), "Partition": 0 }]).to_string();
        let (app, user, password, topic) = (&app, &user, &password, &topic);
        async move {
            let response = app.produce(user, password, topic, &body).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    };
    for i in 0..5 {
        produce_one(i).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let between = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 5..10 {
        produce_one(i).await;
    }
    app.consume_ok(&user, &password, &topic, "group=billing&limit=4")
        .await;

    let who = (user.as_str(), password.as_str(), topic.as_str());
    let seek = |body: Value| seek_billing(&app, who, body);
    let show = || show_billing(&app, who);

    let moved = seek(json!({ "to": "latest" })).await;
    assert_eq!(offsets(&moved), [10, 0]);
    assert_eq!(offsets(&show().await), [10, 0]);
    assert_eq!(show().await["lag"], 0);

    seek(json!({ "to": "earliest" })).await;
    let shown = show().await;
    assert_eq!(offsets(&shown), [0, 0]);
    assert_eq!(shown["lag"], 10);

    // The first message at or after `between` is offset 5; partition 1
    // has none, so it moves to its end.
    seek(json!({ "to": "timestamp", "timestamp": between })).await;
    assert_eq!(offsets(&show().await), [5, 0]);
    let read = app
        .consume_ok(&user, &password, &topic, "group=billing&limit=1")
        .await;
    assert_eq!(read[0]["Offset"], 5);

    seek(json!({ "offsets": [{ "Partition": 0, "Offset": 2 }] })).await;
    let shown = show().await;
    assert_eq!(offsets(&shown), [2, 0]);
    assert_eq!(shown["lag"], 8);

    let audit: Vec<Value> = app
        .get_audit(&format!("action=group.reset&tenant={tenant}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit.len(), 4, "{audit:?}");
    for row in &audit {
        assert_eq!(row["actor"], format!("user:{user}"), "{row}");
        assert_eq!(row["target"], "billing");
        assert_eq!(row["details"]["topic"], topic.as_str());
    }
    // Newest first: the explicit offsets.
    assert_eq!(audit[0]["details"]["offsets"], json!([[0, 2]]));
}

#[tokio::test]
async fn bad_seek_bodies_get_400_with_a_stable_code_never_a_5xx() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    produce_stamped(&app, &user, &password, &topic, 3).await;
    for (body, code) in [
        (json!({}), "invalid_seek"),
        (json!({ "to": "yesterday" }), "invalid_seek"),
        (json!({ "to": "timestamp" }), "invalid_seek"),
        (
            json!({ "to": "timestamp", "timestamp": -5 }),
            "invalid_seek",
        ),
        (json!({ "to": "earliest", "timestamp": 5 }), "invalid_seek"),
        (
            json!({ "to": "latest", "offsets": [{ "Partition": 0, "Offset": 0 }] }),
            "invalid_seek",
        ),
        (json!({ "offsets": [] }), "invalid_seek"),
        (
            json!({ "offsets": [{ "Partition": 0, "Offset": 99 }] }),
            "invalid_seek",
        ),
        (
            json!({ "offsets": [{ "Partition": 0, "Offset": -1 }] }),
            "invalid_seek",
        ),
        (
            json!({ "offsets": [{ "Partition": 7, "Offset": 0 }] }),
            "invalid_partition",
        ),
        (
            json!({ "offsets": [{ "partition": 0, "offset": 0 }] }),
            "malformed_json",
        ),
        (json!({ "to": 5 }), "malformed_json"),
        (json!({ "to": "earliest", "extra": 1 }), "malformed_json"),
    ] {
        let response = app
            .post_seek(&user, &password, &topic, "billing", &body)
            .await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert!(
            text.contains(&format!("\"code\":\"{code}\"")),
            "{body}: {text}"
        );
    }
    let bad_group = app
        .post_seek(
            &user,
            &password,
            &topic,
            "a..b",
            &json!({ "to": "earliest" }),
        )
        .await;
    assert_error(bad_group, StatusCode::BAD_REQUEST, "invalid_group").await;
    // Nothing was created by the refused seeks.
    let groups = json_ok(app.get_topic_groups(&user, &password, &topic).await).await;
    assert_eq!(groups, json!([]));
}

#[tokio::test]
async fn a_put_sets_and_clears_the_dead_letter_policy_within_the_users_write_grant() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let dlq = format!("{tenant}.orders-dlq");
    app.create_topic(&tenant, &dlq, 1).await;
    let secret = format!("{tenant}.secret");
    app.create_topic(&tenant, &secret, 1).await;
    // A user who reads everything but writes only the dead-letter topic.
    let worker = format!("{tenant}.worker");
    let worker_password = app
        .create_user(
            &tenant,
            &worker,
            json!([
                { "prefix": format!("{tenant}."), "read": true, "write": false },
                { "prefix": dlq, "read": false, "write": true },
            ]),
        )
        .await;
    let policy = json!({ "max_deliveries": 5, "dead_letter_topic": dlq });
    let set = json_ok(
        app.put_group(&worker, &worker_password, &topic, "billing", &policy)
            .await,
    )
    .await;
    assert_eq!(set["dead_letters"], policy);
    let shown = json_ok(
        app.get_topic_group(&worker, &worker_password, &topic, "billing")
            .await,
    )
    .await;
    assert_eq!(shown["dead_letters"], policy);

    let outside = app
        .put_group(
            &worker,
            &worker_password,
            &topic,
            "billing",
            &json!({ "max_deliveries": 5, "dead_letter_topic": secret }),
        )
        .await;
    assert_error(outside, StatusCode::FORBIDDEN, "forbidden").await;
    let foreign = app
        .put_group(
            &worker,
            &worker_password,
            &topic,
            "billing",
            &json!({ "max_deliveries": 5, "dead_letter_topic": "othertenant.dlq" }),
        )
        .await;
    assert_error(foreign, StatusCode::FORBIDDEN, "forbidden").await;
    for bad in [
        json!({ "max_deliveries": 0, "dead_letter_topic": dlq }),
        json!({ "max_deliveries": 1001, "dead_letter_topic": dlq }),
        json!({ "max_deliveries": 5, "dead_letter_topic": null }),
        json!({ "max_deliveries": 5, "dead_letter_topic": topic }),
    ] {
        let response = app
            .put_group(&user, &password, &topic, "billing", &bad)
            .await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_dead_letters").await;
    }

    let cleared = json_ok(
        app.put_group(
            &worker,
            &worker_password,
            &topic,
            "billing",
            &json!({ "max_deliveries": null, "dead_letter_topic": null }),
        )
        .await,
    )
    .await;
    assert!(cleared["dead_letters"].is_null(), "{cleared}");
    let audit: Vec<Value> = app
        .get_audit(&format!("action=group.dead_letters&tenant={tenant}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert_eq!(audit[0]["actor"], format!("user:{worker}"));
    assert!(audit[0]["details"]["dead_letter_topic"].is_null());
    assert_eq!(audit[1]["details"]["max_deliveries"], 5);
}

#[tokio::test]
async fn the_lag_gauge_grows_for_a_group_that_stopped_consuming() {
    let app = TestApp::spawn_with(|f| f.merge(("consume.lag_interval_ms", 200))).await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    app.produce_numbered(&user, &password, &topic, 5).await;
    app.consume_ok(&user, &password, &topic, "group=stopped&limit=5")
        .await;
    // The consumer stops; messages keep coming.
    app.produce_numbered(&user, &password, &topic, 7).await;

    let labels = [
        ("tenant", tenant.as_str()),
        ("group", "stopped"),
        ("topic", topic.as_str()),
    ];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = app.get_metrics().await;
        if sample(&metrics, "sluice_consumer_lag", &labels) == Some(7.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no lag of 7 for the stopped group: {:?}",
            sample(&metrics, "sluice_consumer_lag", &labels)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_node_at_a_time_measures_lag_and_another_takes_over_when_it_goes() {
    let app = TestApp::spawn_with(|f| f.merge(("consume.lag_interval_ms", 0))).await;
    let options = tenancy::StoreOptions {
        url: app.database_url.clone().into(),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(5),
    };
    let (a, b) = (
        tenancy::Store::connect(&options).await.unwrap(),
        tenancy::Store::connect(&options).await.unwrap(),
    );
    let mut first = tenancy::store::LagLeadership::default();
    let mut second = tenancy::store::LagLeadership::default();
    assert!(a.lag_cursors(&mut first, 100).await.unwrap().is_some());
    assert!(b.lag_cursors(&mut second, 100).await.unwrap().is_none());
    // Still the first, tick after tick.
    assert!(a.lag_cursors(&mut first, 100).await.unwrap().is_some());
    assert!(b.lag_cursors(&mut second, 100).await.unwrap().is_none());
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    while b.lag_cursors(&mut second, 100).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "nobody took over");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
