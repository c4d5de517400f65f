//! Topics and tenants deleted and created again under the same names while
//! they are read, on a node run as a child process with a broker of its
//! own: a crash fails the test instead of killing the runner.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use reqwest::StatusCode;

use crate::helpers::broker::own_broker;
use crate::helpers::process::BinaryNode;
use crate::helpers::TestApp;

const PARTITIONS: u32 = 2;

/// The user the traffic runs as; replaced when the tenant is recreated.
type Credentials = Arc<Mutex<(String, String)>>;

/// What the traffic saw, by kind of request and status ("error" when no
/// answer came at all).
type Tally = Arc<Mutex<BTreeMap<String, usize>>>;

/// GETs, long polls and produces on `topic` in a loop until `stop`.
fn spawn_traffic(
    app: &TestApp,
    topic: &str,
    credentials: &Credentials,
    stop: &Arc<AtomicBool>,
    tally: &Tally,
) -> Vec<tokio::task::JoinHandle<()>> {
    let kinds = [
        ("get", "limit=10&group=g1", 20),
        ("get", "limit=10&group=g2", 20),
        ("get", "limit=1&group=g3", 20),
        ("poll", "wait=1000&group=p1", 0),
        ("poll", "wait=1000&group=p2", 0),
        ("produce", "", 50),
    ];
    kinds
        .into_iter()
        .map(|(kind, query, pause_ms)| {
            let (http, stop, tally, credentials) = (
                app.data.clone(),
                stop.clone(),
                tally.clone(),
                credentials.clone(),
            );
            let url = if kind == "produce" {
                format!("{}/topic/{topic}", app.public_url)
            } else {
                format!("{}/topic/{topic}?{query}", app.public_url)
            };
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (user, password) = credentials.lock().unwrap().clone();
                    let request = if kind == "produce" {
                        n += 1;
                        http.post(&url)
                            .header("content-type", "application/json")
                            .body(format!(r#"[{{"Value":"m{n}"}}]"#))
                    } else {
                        http.get(&url)
                    };
                    let outcome = match request.basic_auth(&user, Some(&password)).send().await {
                        Ok(response) if response.status() == StatusCode::OK => "200".to_owned(),
                        Ok(response) => {
                            let status = response.status().as_u16();
                            let body: serde_json::Value = response.json().await.unwrap_or_default();
                            format!("{status} {}", body["code"].as_str().unwrap_or("?"))
                        }
                        Err(_) => "error".to_owned(),
                    };
                    // Refusals (the topic or tenant is gone) come at once.
                    let pause = match outcome.as_str() {
                        "200" => pause_ms,
                        o if o.starts_with("401") || o.starts_with("429") => 500,
                        _ => 100,
                    };
                    *tally
                        .lock()
                        .unwrap()
                        .entry(format!("{kind} {outcome}"))
                        .or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            })
        })
        .collect()
}

/// Fails with the node's exit status and last log lines if it is gone.
async fn assert_alive(node: &mut BinaryNode, during: &str) {
    if let Some(status) = node.child.try_wait().unwrap() {
        let log = (&mut node.log).await.unwrap_or_default();
        let tail = log[log.len().saturating_sub(30)..].join("\n");
        panic!("the node died during {during}: {status}\n{tail}");
    }
}

/// Runs one step of the test; if it fails, a dead node is the reason
/// given (an admin call cut off by a crash fails with a mere I/O error).
async fn step<T: Send + 'static>(
    node: &mut BinaryNode,
    what: &str,
    step: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    match tokio::spawn(step).await {
        Ok(value) => value,
        Err(err) => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_alive(node, what).await;
            std::panic::resume_unwind(err.into_panic())
        }
    }
}

/// Produces `marker` and reads it back with a group of its own; how long
/// that took, or what went wrong.
async fn round_trip(
    app: &TestApp,
    credentials: &Credentials,
    topic: &str,
    marker: &str,
) -> Result<Duration, String> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(20);
    let (user, password) = credentials.lock().unwrap().clone();
    let body = format!(r#"[{{"Value":"{marker}"}}]"#);
    loop {
        let produced = app.produce(&user, &password, topic, &body).await;
        if produced.status() == StatusCode::OK {
            break;
        }
        let text = produced.text().await.unwrap();
        if Instant::now() > deadline {
            return Err(format!("produce: {text}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut seen = 0;
    while Instant::now() < deadline {
        let response = app
            .consume(
                &user,
                &password,
                topic,
                &format!("group={marker}&limit=1000&wait=1000"),
            )
            .await;
        if response.status() != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(300)).await;
            continue;
        }
        let batch: Vec<serde_json::Value> = response.json().await.unwrap();
        seen += batch.len();
        if batch.iter().any(|m| m["Value"] == marker) {
            return Ok(started.elapsed());
        }
    }
    Err(format!(
        "{marker} not read back; {seen} other messages read"
    ))
}

/// Asserts that a message produced now is read back (a consumer stuck on
/// the topic's previous incarnation reads nothing), and notes how long it
/// took.
async fn read_back(
    app: &TestApp,
    credentials: &Credentials,
    topic: &str,
    what: &str,
    took: &mut Vec<Duration>,
) {
    let marker = format!("marker{}", took.len());
    match round_trip(app, credentials, topic, &marker).await {
        Ok(elapsed) => took.push(elapsed),
        Err(err) => panic!("after {what}: {err}"),
    }
}

fn native_admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap()
}

/// Retries a Kafka admin call until it succeeds: tansu may still be
/// finishing the previous delete or create.
async fn until_ok<F, Fut>(what: &str, mut call: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    loop {
        match call().await {
            Ok(()) => return,
            Err(err) if started.elapsed() < Duration::from_secs(20) => {
                eprintln!("{what}: {err}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("{what}: {err}"),
        }
    }
}

async fn delete_outside(admin: &AdminClient<DefaultClientContext>, topic: &str) {
    until_ok("delete outside sluice", || async {
        let results = admin
            .delete_topics(&[topic], &AdminOptions::new())
            .await
            .map_err(|e| e.to_string())?;
        results
            .into_iter()
            .try_for_each(|r| r.map(|_| ()).map_err(|(t, e)| format!("{t}: {e}")))
    })
    .await;
}

async fn create_outside(admin: &AdminClient<DefaultClientContext>, topic: &str) {
    until_ok("create outside sluice", || async {
        let new = NewTopic::new(topic, PARTITIONS as i32, TopicReplication::Fixed(1));
        let results = admin
            .create_topics(&[new], &AdminOptions::new())
            .await
            .map_err(|e| e.to_string())?;
        results
            .into_iter()
            .try_for_each(|r| r.map(|_| ()).map_err(|(t, e)| format!("{t}: {e}")))
    })
    .await;
}

#[tokio::test]
async fn deleting_and_recreating_topics_and_tenants_under_the_same_names_while_they_are_read_never_crashes_the_node(
) {
    let started = Instant::now();
    let bootstrap = own_broker();
    let database_url = TestApp::fresh_database().await;
    let mut node = BinaryNode::start(&database_url, &bootstrap, "warn").await;
    let app = Arc::new(node.test_app(&database_url, &bootstrap).await);
    let (tenant, topic, user, password) = app.tenant_with_topic(PARTITIONS).await;
    app.produce_numbered(&user, &password, &topic, 20).await;
    let credentials: Credentials = Arc::new(Mutex::new((user, password)));
    let stop = Arc::new(AtomicBool::new(false));
    let tally: Tally = Arc::default();
    let traffic = spawn_traffic(&app, &topic, &credentials, &stop, &tally);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_alive(&mut node, "reading").await;

    // How long a message produced after each re-creation took to be read.
    let mut read_backs = Vec::new();

    // Through sluice.
    for round in 0..3 {
        let (a, t, n) = (app.clone(), tenant.clone(), topic.clone());
        let what = format!("recreate through sluice, round {round}");
        step(&mut node, &what, async move {
            assert_eq!(
                a.delete_topic(&t, &n).await.status(),
                StatusCode::NO_CONTENT
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            a.create_topic(&t, &n, PARTITIONS).await;
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_alive(&mut node, &what).await;
        read_back(&app, &credentials, &topic, &what, &mut read_backs).await;
    }

    // Outside sluice: sluice is not told, and reads the deleted topic.
    let admin = native_admin(&bootstrap);
    for round in 0..3 {
        delete_outside(&admin, &topic).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_alive(&mut node, &format!("delete outside sluice, round {round}")).await;
        create_outside(&admin, &topic).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let what = format!("recreate outside sluice, round {round}");
        assert_alive(&mut node, &what).await;
        // sluice is not told: it notices that the topic vanished or that
        // its log went backwards, and forgets what it cached of the old
        // incarnation (watermarks, recently read messages), so a new
        // group reads the new log, not messages cached from the old one.
        read_back(&app, &credentials, &topic, &what, &mut read_backs).await;
    }

    // The tenant, by force, and again with its topic and a new password.
    for round in 0..2 {
        let (a, t, n) = (app.clone(), tenant.clone(), topic.clone());
        let what = format!("recreate the tenant, round {round}");
        let fresh = step(&mut node, &what, async move {
            assert_eq!(
                a.delete_tenant(&t, true).await.status(),
                StatusCode::NO_CONTENT
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            a.create_tenant(&t).await;
            let credentials = a.rw_user(&t).await;
            a.create_topic(&t, &n, PARTITIONS).await;
            credentials
        })
        .await;
        *credentials.lock().unwrap() = fresh;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_alive(&mut node, &what).await;
        read_back(&app, &credentials, &topic, &what, &mut read_backs).await;
    }

    stop.store(true, Ordering::Relaxed);
    for task in traffic {
        task.await.unwrap();
    }
    assert_alive(&mut node, "the end of the traffic").await;
    let tally = tally.lock().unwrap().clone();
    eprintln!("traffic: {tally:?}");
    assert!(
        tally.get("get 200").copied().unwrap_or(0) > 10
            && tally.get("poll 200").copied().unwrap_or(0) > 5
            && tally.get("produce 200").copied().unwrap_or(0) > 10,
        "the traffic did not run: {tally:?}"
    );
    assert!(
        !tally.keys().any(|k| k.ends_with(" error")),
        "requests went unanswered: {tally:?}"
    );

    // Still serving: health, and a round trip on the newest topic.
    let health = app
        .http
        .get(format!("{}/healthz", app.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let (user, password) = credentials.lock().unwrap().clone();
    let produce_started = Instant::now();
    let mut refusals = Vec::new();
    loop {
        let produced = app
            .produce(
                &user,
                &password,
                &topic,
                r#"[{"Value":"after"},{"Value":"all"}]"#,
            )
            .await;
        if produced.status() == StatusCode::OK {
            break;
        }
        refusals.push(produced.text().await.unwrap());
        if produce_started.elapsed() > Duration::from_secs(30) {
            node.child.kill().await.unwrap();
            let log = (&mut node.log).await.unwrap_or_default();
            let kafka: Vec<&String> = log.iter().filter(|l| l.contains("kafka")).collect();
            panic!("produce keeps failing: {refusals:#?}\n{kafka:#?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "produce worked after {:?} and {} refusals: {refusals:?}",
        produce_started.elapsed(),
        refusals.len()
    );
    let mut values = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while values.len() < 2 && Instant::now() < deadline {
        let batch = app
            .consume_ok(&user, &password, &topic, "group=after&limit=100&wait=1000")
            .await;
        values.extend(
            batch
                .iter()
                .filter_map(|m| m["Value"].as_str().map(str::to_owned))
                .filter(|v| v == "after" || v == "all"),
        );
    }
    values.sort();
    assert_eq!(values, ["after", "all"]);
    assert_alive(&mut node, "the final round trip").await;
    eprintln!(
        "topic lifecycle test took {:?}; read-backs after re-creation: {read_backs:?}",
        started.elapsed()
    );
}
