//! `GET /topic/{topic}?value=json`: values that parse as JSON go out as
//! JSON, the others as strings marked `"ValueEncoding":"string"`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

/// Produces `values` (as strings) in order to a fresh one-partition topic.
async fn topic_with(app: &TestApp, values: &[&str]) -> (String, String, String) {
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let body: Vec<Value> = values.iter().map(|v| json!({ "Value": v })).collect();
    let produced = app
        .produce(&user, &password, &topic, &Value::Array(body).to_string())
        .await;
    assert_eq!(produced.status(), StatusCode::OK);
    (topic, user, password)
}

#[tokio::test]
async fn json_values_come_back_parsed_and_the_others_as_marked_strings() {
    let app = TestApp::spawn().await;
    let values = [
        r#"{"id": 7, "tags": ["a", "b"]}"#,
        "42",
        r#""quoted""#,
        "not json {",
        "",
    ];
    let (topic, user, password) = topic_with(&app, &values).await;
    let out = app
        .consume_ok(&user, &password, &topic, "value=json&limit=10")
        .await;
    assert_eq!(out.len(), 5);
    assert_eq!(out[0]["Value"], json!({"id": 7, "tags": ["a", "b"]}));
    assert!(out[0].get("ValueEncoding").is_none());
    assert_eq!(out[1]["Value"], json!(42));
    assert_eq!(out[2]["Value"], json!("quoted"), "a JSON string is JSON");
    assert!(out[2].get("ValueEncoding").is_none());
    assert_eq!(out[3]["Value"], json!("not json {"));
    assert_eq!(out[3]["ValueEncoding"], "string");
    assert_eq!(out[4]["Value"], json!(""));
    assert_eq!(out[4]["ValueEncoding"], "string");
}

#[tokio::test]
async fn a_binary_value_stays_base64_with_value_json() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let bytes = [0xff_u8, 0x00, 0x7b];
    let body = json!([{ "Value": BASE64.encode(bytes) }]).to_string();
    let produced = app
        .produce_with(
            &user,
            &password,
            &topic,
            "encoding=base64",
            body.into_bytes(),
        )
        .await;
    assert_eq!(produced.status(), StatusCode::OK);
    let out = app.consume_ok(&user, &password, &topic, "value=json").await;
    assert_eq!(out[0]["Value"], BASE64.encode(bytes));
    assert_eq!(out[0]["ValueEncoding"], "base64");
}

#[tokio::test]
async fn without_value_json_a_json_value_is_still_an_unmarked_string() {
    let app = TestApp::spawn().await;
    let (topic, user, password) = topic_with(&app, &[r#"{"id":7}"#, "plain"]).await;
    let out = app
        .consume_ok(&user, &password, &topic, "value=string&limit=1")
        .await;
    assert_eq!(out[0]["Value"], r#"{"id":7}"#);
    assert!(out[0].get("ValueEncoding").is_none());
    let out = app.consume_ok(&user, &password, &topic, "").await;
    assert_eq!(out[0]["Value"], "plain");
    assert!(out[0].get("ValueEncoding").is_none());
}

#[tokio::test]
async fn an_unknown_value_mode_or_json_with_base64_is_a_400() {
    let app = TestApp::spawn().await;
    let (topic, user, password) = topic_with(&app, &["1"]).await;
    for query in ["value=yaml", "value=", "value=json&encoding=base64"] {
        let response = app.consume(&user, &password, &topic, query).await;
        assert_error(response, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    // Nothing was consumed by the refused requests.
    let out = app.consume_ok(&user, &password, &topic, "value=json").await;
    assert_eq!(out[0]["Value"], json!(1));
}
