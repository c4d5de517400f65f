//! The fault case of streaming: a node killed mid-stream in manual mode.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::process::BinaryNode;
use crate::helpers::streams::WsClient;
use crate::helpers::TestApp;

const SECOND: Duration = Duration::from_secs(1);

/// The values of one frame and its receipt, if it carried messages.
fn batch(frame: &serde_json::Value) -> Option<(String, Vec<String>)> {
    let messages = frame["messages"].as_array()?;
    Some((
        frame["receipt"].as_str().unwrap().to_owned(),
        messages
            .iter()
            .map(|m| m["Value"].as_str().unwrap().to_owned())
            .collect(),
    ))
}

#[tokio::test]
async fn a_node_killed_while_streaming_loses_nothing_its_unacked_messages_reach_the_other_node() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(2).await;
    let node_a = BinaryNode::start(&app.database_url, &app.bootstrap, "warn").await;
    let node_b = BinaryNode::start(&app.database_url, &app.bootstrap, "warn").await;
    let on_a = node_a.test_app(&app.database_url, &app.bootstrap).await;
    let on_b = node_b.test_app(&app.database_url, &app.bootstrap).await;
    let total = 200;
    app.produce_numbered(&user, &password, &topic, total).await;

    // A takes a first share and never acks it: it is "processing" when
    // its node dies.
    let query = "group=fault&ack=manual&visibility=3000&limit=25";
    let mut a: WsClient = on_a
        .open_ws(&user, &password, &topic, &format!("{query}&credit=50"))
        .await
        .expect("upgraded on node A");
    let mut held_by_a = BTreeSet::new();
    while held_by_a.len() < 25 {
        let frame = a.next(10 * SECOND).await.expect("open").expect("a frame");
        if let Some((_, values)) = batch(&frame) {
            held_by_a.extend(values);
        }
    }
    let mut b = on_b
        .open_ws(&user, &password, &topic, &format!("{query}&credit=1000"))
        .await
        .expect("upgraded on node B");
    let mut node_a = node_a;
    node_a.child.start_kill().expect("SIGKILL");
    node_a.child.wait().await.unwrap();
    drop(a);

    // B gets everything, A's unacked share once its visibility ends, and
    // acks it all.
    let mut acked = BTreeSet::new();
    let deadline = Instant::now() + 60 * SECOND;
    while acked.len() < total && Instant::now() < deadline {
        let Some(frame) = b.next(10 * SECOND).await.expect("B stays open") else {
            continue;
        };
        if let Some((receipt, values)) = batch(&frame) {
            b.send(&json!({ "ack": receipt })).await;
            acked.extend(values);
        }
    }
    let expected: BTreeSet<String> = (0..total).map(|i| i.to_string()).collect();
    let lost: Vec<_> = expected.difference(&acked).collect();
    assert!(lost.is_empty(), "lost {} messages: {lost:?}", lost.len());
    assert!(
        held_by_a.is_subset(&acked),
        "A's unacked messages came back through B"
    );
    // Nothing is left for the group.
    tokio::time::sleep(SECOND).await;
    let left = on_b
        .consume_ok(&user, &password, &topic, "group=fault&limit=100")
        .await;
    assert!(left.is_empty(), "all acked: {left:?}");
}
