use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, unique_tenant, TestApp};

#[tokio::test]
async fn a_topic_is_created_in_kafka_listed_with_watermarks_and_deleted() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(3).await;
    app.produce(
        &user,
        &password,
        &topic,
        r#"[{"Value":"a","Partition":1},{"Value":"b","Partition":1}]"#,
    )
    .await;

    let topics: Vec<Value> = app.get_topics(&tenant).await.json().await.unwrap();
    assert_eq!(topics.len(), 1);
    assert_eq!(topics[0]["name"], topic.as_str());
    assert_eq!(topics[0]["partitions"], 3);
    let detail = topics[0]["partitions_detail"].as_array().unwrap();
    assert_eq!(detail.len(), 3);
    assert_eq!(detail[1]["high"], 2);
    assert_eq!(detail[0]["high"], 0);

    assert_eq!(
        app.delete_topic(&tenant, &topic).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_error(
        app.get_topic(&tenant, &topic).await,
        StatusCode::NOT_FOUND,
        "topic_not_found",
    )
    .await;
    let gone = app
        .produce(&user, &password, &topic, r#"[{"Value":"x"}]"#)
        .await;
    assert_error(gone, StatusCode::NOT_FOUND, "topic_not_found").await;
}

#[tokio::test]
async fn the_tenant_topic_and_partition_quotas_are_enforced() {
    let app = TestApp::spawn().await;
    let tenant = unique_tenant();
    let created = app
        .post_tenant(&json!({ "name": tenant, "quota": { "max_topics": 2, "max_partitions": 4 } }))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    app.create_topic(&tenant, &format!("{tenant}.a"), 3).await;

    let too_many_partitions = app
        .post_topic(
            &tenant,
            &json!({ "name": format!("{tenant}.b"), "partitions": 2 }),
        )
        .await;
    assert_error(too_many_partitions, StatusCode::CONFLICT, "quota_exceeded").await;
    app.create_topic(&tenant, &format!("{tenant}.b"), 1).await;
    let too_many_topics = app
        .post_topic(
            &tenant,
            &json!({ "name": format!("{tenant}.c"), "partitions": 1 }),
        )
        .await;
    assert_error(too_many_topics, StatusCode::CONFLICT, "quota_exceeded").await;

    let topics: Vec<Value> = app.get_topics(&tenant).await.json().await.unwrap();
    assert_eq!(topics.len(), 2, "refused topics left no record");
}

#[tokio::test]
async fn bad_topic_requests_get_4xx() {
    let app = TestApp::spawn().await;
    let tenant = unique_tenant();
    app.create_tenant(&tenant).await;
    let name = format!("{tenant}.orders");
    let cases = [
        (
            json!({ "name": "other.orders" }),
            StatusCode::BAD_REQUEST,
            "invalid_topic",
        ),
        (
            json!({ "name": format!("{tenant}.a/b") }),
            StatusCode::BAD_REQUEST,
            "invalid_topic",
        ),
        (
            json!({ "name": name, "partitions": 0 }),
            StatusCode::BAD_REQUEST,
            "invalid_partitions",
        ),
        (
            json!({ "name": name, "partitions": 100_000 }),
            StatusCode::BAD_REQUEST,
            "invalid_partitions",
        ),
        (
            json!({ "name": name, "replication_factor": 0 }),
            StatusCode::BAD_REQUEST,
            "invalid_replication_factor",
        ),
        (
            json!({ "name": name, "config": { "unclean.leader.election.enable": "true" } }),
            StatusCode::BAD_REQUEST,
            "invalid_config",
        ),
        (
            json!({ "name": name, "partitions": "three" }),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
    ];
    for (body, status, code) in cases {
        assert_error(app.post_topic(&tenant, &body).await, status, code).await;
    }
    app.create_topic(&tenant, &name, 1).await;
    let again = app.post_topic(&tenant, &json!({ "name": name })).await;
    assert_error(again, StatusCode::CONFLICT, "topic_exists").await;
}

#[tokio::test]
async fn a_tenant_with_topics_is_deleted_only_by_force_which_removes_them_from_kafka() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;

    let refused = app.delete_tenant(&tenant, false).await;
    assert_error(refused, StatusCode::CONFLICT, "tenant_in_use").await;

    assert_eq!(
        app.delete_tenant(&tenant, true).await.status(),
        StatusCode::NO_CONTENT
    );
    // The topic is gone from Kafka: re-creating the tenant and topic works.
    app.create_tenant(&tenant).await;
    app.create_topic(&tenant, &topic, 1).await;
    let old_user = app
        .produce(&user, &password, &topic, r#"[{"Value":"x"}]"#)
        .await;
    assert_eq!(
        old_user.status(),
        StatusCode::UNAUTHORIZED,
        "the old user went with the tenant"
    );
}

#[tokio::test]
async fn the_cli_creates_lists_and_deletes_topics() {
    let app = TestApp::spawn().await;
    let tenant = unique_tenant();
    app.create_tenant(&tenant).await;
    let topic = format!("{tenant}.events");

    let created = app
        .cli(&[
            "--json",
            "topic",
            "create",
            &topic,
            "--partitions",
            "2",
            "--set",
            "retention.ms=60000",
        ])
        .await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let listed = app.cli(&["topic", "list", &tenant]).await;
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains(&topic), "{text}");
    let deleted = app.cli(&["topic", "delete", &topic]).await;
    assert!(deleted.status.success());
    assert_eq!(
        app.cli(&["topic", "show", &topic]).await.status.code(),
        Some(3)
    );
}
