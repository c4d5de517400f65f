//! SIGTERM on the real binary, with requests in flight.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::kafka::read_back;
use crate::helpers::process::BinaryNode;
use crate::helpers::TestApp;

/// What a client saw for one produce.
enum Outcome {
    /// 2xx: (value, partition, offset) of each message.
    Stored(Vec<(String, i64, i64)>),
    /// A JSON error, or a connection refused or closed before any answer.
    Refused,
    /// An answer that started but could not be read to the end.
    CutOff,
}

#[tokio::test]
async fn sigterm_with_produces_in_flight_loses_no_acknowledged_message_and_cuts_none_off() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(2).await;
    let mut node = BinaryNode::start(&app.database_url, &app.bootstrap, "warn").await;
    let url = Arc::new(format!("{}/topic/{topic}", node.public_url));

    let mut clients = Vec::new();
    for client in 0..6usize {
        let (http, url, user, password) = (
            app.data.clone(),
            url.clone(),
            user.clone(),
            password.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let started = Instant::now();
            for round in 0.. {
                if started.elapsed() > Duration::from_secs(8) {
                    break;
                }
                let values: Vec<String> = (0..20)
                    .map(|i| format!("c{client}-r{round}-m{i}"))
                    .collect();
                let body: Vec<Value> = values.iter().map(|v| json!({ "Value": v })).collect();
                let sent = http
                    .post(url.as_str())
                    .basic_auth(&user, Some(&password))
                    .json(&body)
                    .send()
                    .await;
                let outcome = match sent {
                    Err(_) => Outcome::Refused,
                    Ok(response) => {
                        let status = response.status();
                        match response.json::<Value>().await {
                            Err(_) => Outcome::CutOff,
                            Ok(answer) if status == StatusCode::OK => Outcome::Stored(
                                values
                                    .iter()
                                    .zip(answer["offsets"].as_array().unwrap())
                                    .map(|(v, o)| {
                                        (
                                            v.clone(),
                                            o["Partition"].as_i64().unwrap(),
                                            o["Offset"].as_i64().unwrap(),
                                        )
                                    })
                                    .collect(),
                            ),
                            Ok(answer) => {
                                assert!(
                                    answer["code"].is_string(),
                                    "an error without a code: {answer}"
                                );
                                Outcome::Refused
                            }
                        }
                    }
                };
                let refused = matches!(outcome, Outcome::Refused);
                outcomes.push(outcome);
                if refused {
                    break;
                }
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    node.signal("TERM");
    let stopped = tokio::time::timeout(Duration::from_secs(20), node.child.wait()).await;
    assert!(
        stopped.is_ok(),
        "the node did not stop within its grace period"
    );

    let mut stored = Vec::new();
    let mut cut_off = 0;
    for client in clients {
        for outcome in client.await.unwrap() {
            match outcome {
                Outcome::Stored(messages) => stored.extend(messages),
                Outcome::CutOff => cut_off += 1,
                Outcome::Refused => {}
            }
        }
    }
    assert_eq!(cut_off, 0, "responses were cut off mid-way");
    assert!(!stored.is_empty(), "nothing was produced before the signal");

    let in_kafka: HashMap<(i64, i64), String> = read_back(&app.bootstrap, &topic, 2, stored.len())
        .into_iter()
        .map(|m| {
            (
                (i64::from(m.partition), m.offset),
                String::from_utf8(m.value.unwrap()).unwrap(),
            )
        })
        .collect();
    for (value, partition, offset) in stored {
        assert_eq!(
            in_kafka.get(&(partition, offset)),
            Some(&value),
            "an acknowledged message is missing"
        );
    }
}

#[tokio::test]
async fn a_draining_node_reports_not_ready_and_answers_its_long_polls_at_once() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    let mut node = BinaryNode::start(&app.database_url, &app.bootstrap, "warn").await;
    let poll = {
        let request = app
            .data
            .get(format!("{}/topic/{topic}?wait=20000", node.public_url))
            .basic_auth(&user, Some(&password));
        tokio::spawn(async move {
            let started = Instant::now();
            let response = request.send().await.unwrap();
            (
                started.elapsed(),
                response.status(),
                response.text().await.unwrap(),
            )
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    node.signal("TERM");
    let (waited, status, body) = poll.await.unwrap();

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "[]");
    assert!(
        waited < Duration::from_secs(5),
        "the long poll held the shutdown for {waited:?}"
    );
    let stopped = tokio::time::timeout(Duration::from_secs(20), node.child.wait()).await;
    assert!(stopped.is_ok());
}
