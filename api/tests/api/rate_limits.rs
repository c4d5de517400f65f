use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::process::BinaryNode;
use crate::helpers::{assert_error, TestApp};

/// [`TestApp::tenant_with_quota`] with a one-partition topic; returns (topic, user,
/// password).
async fn topic_with_quota(app: &TestApp, quota: Value) -> (String, String, String) {
    let (tenant, user, password) = app.tenant_with_quota(quota).await;
    let topic = format!("{tenant}.t");
    app.create_topic(&tenant, &topic, 1).await;
    (topic, user, password)
}

/// `sluice_argon2_verifications_total` of a node, from its `/metrics`.
async fn argon2_verifications(node: &BinaryNode) -> f64 {
    node.metric("sluice_argon2_verifications_total").await
}

async fn get_me(app: &TestApp, user: &str, password: &str) -> reqwest::Response {
    app.data
        .get(format!("{}/me", app.public_url))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
}

/// Hammers `GET /me` on the nodes in turn from `clients` tasks for
/// `duration`; returns (admitted, refused). Every refusal must be a 429
/// with `Retry-After`.
async fn hammer(
    nodes: Vec<Arc<TestApp>>,
    user: &str,
    password: &str,
    duration: Duration,
    clients: usize,
) -> (usize, usize) {
    let admitted = Arc::new(AtomicUsize::new(0));
    let refused = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (nodes, user, password) = (nodes.clone(), user.to_owned(), password.to_owned());
        let (admitted, refused) = (admitted.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut round = client;
            while Instant::now() < until {
                let node = &nodes[round % nodes.len()];
                round += 1;
                let response = get_me(node, &user, &password).await;
                match response.status() {
                    StatusCode::OK => {
                        admitted.fetch_add(1, Ordering::Relaxed);
                    }
                    StatusCode::TOO_MANY_REQUESTS => {
                        assert!(
                            response.headers().contains_key("retry-after"),
                            "a 429 without Retry-After"
                        );
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    other => panic!("unexpected {other}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (
        admitted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    )
}

#[tokio::test]
async fn one_node_admits_the_quota_and_every_refusal_says_when_to_retry() {
    let app = Arc::new(TestApp::spawn().await);
    let (_, user, password) = app
        .tenant_with_quota(json!({ "requests_per_second": 10, "burst_seconds": 1 }))
        .await;

    let (admitted, refused) = hammer(
        vec![app.clone()],
        &user,
        &password,
        Duration::from_secs(10),
        4,
    )
    .await;

    // A burst of 10, then 10 per second for 10 seconds.
    let expected = 10.0 + 10.0 * 10.0;
    let error = (admitted as f64 - expected).abs() / expected;
    assert!(
        error <= 0.10,
        "admitted {admitted}, expected about {expected}"
    );
    assert!(refused > 0, "the hammer never hit the limit");

    let mut refusal = get_me(&app, &user, &password).await;
    while refusal.status() == StatusCode::OK {
        refusal = get_me(&app, &user, &password).await;
    }
    assert_eq!(refusal.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = refusal.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = assert_error(refusal, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(body["message"].as_str().unwrap().contains("quota"));
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let retried = get_me(&app, &user, &password).await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert!(retried.headers().contains_key("ratelimit-limit"));
    assert!(retried.headers().contains_key("ratelimit-remaining"));
    assert!(retried.headers().contains_key("ratelimit-reset"));
}

#[tokio::test]
async fn two_nodes_together_admit_the_quota_not_twice_it() {
    let first = Arc::new(TestApp::spawn().await);
    let second = Arc::new(TestApp::spawn_node(&first).await);
    let (_, user, password) = first
        .tenant_with_quota(json!({ "requests_per_second": 10, "burst_seconds": 1 }))
        .await;
    // Both nodes must know of each other before the count starts.
    let started = Instant::now();
    for node in [&first, &second] {
        loop {
            let me: Value = get_me(node, &user, &password)
                .await
                .json()
                .await
                .unwrap_or_default();
            if me["usage"]["live_nodes"] == 2 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the nodes never saw each other"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // let the buckets refill

    let (admitted, _) = hammer(
        vec![first, second],
        &user,
        &password,
        Duration::from_secs(10),
        4,
    )
    .await;

    let expected = 10.0 + 10.0 * 10.0;
    let error = (admitted as f64 - expected).abs() / expected;
    assert!(
        error <= 0.15,
        "admitted {admitted}, expected about {expected}"
    );
}

#[tokio::test]
async fn a_tenant_over_its_quota_leaves_others_untouched() {
    let app = Arc::new(TestApp::spawn().await);
    let (_, noisy, noisy_password) = app
        .tenant_with_quota(json!({ "requests_per_second": 5, "burst_seconds": 1 }))
        .await;
    let (_, quiet, quiet_password) = app
        .tenant_with_quota(json!({ "requests_per_second": 50, "burst_seconds": 1 }))
        .await;

    let flood = {
        let app = app.clone();
        tokio::spawn(async move {
            hammer(
                vec![app],
                &noisy,
                &noisy_password,
                Duration::from_secs(4),
                3,
            )
            .await
        })
    };
    let mut quiet_refusals = 0;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        if get_me(&app, &quiet, &quiet_password).await.status() != StatusCode::OK {
            quiet_refusals += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, noisy_refused) = flood.await.unwrap();
    assert!(noisy_refused > 0, "the noisy tenant was never limited");
    assert_eq!(quiet_refusals, 0);
}

#[tokio::test]
async fn quota_changes_show_in_me_and_are_enforced_within_seconds() {
    let app = TestApp::spawn().await;
    let (tenant, user, password) = app
        .tenant_with_quota(json!({ "requests_per_second": 100 }))
        .await;
    let me: Value = get_me(&app, &user, &password).await.json().await.unwrap();
    assert_eq!(me["username"], user.as_str());
    assert_eq!(me["tenant"], tenant.as_str());
    assert_eq!(me["quota"]["requests_per_second"], 100);
    assert_eq!(me["grants"][0]["prefix"], format!("{tenant}."));

    app.patch_tenant(
        &tenant,
        &json!({ "quota": { "requests_per_second": 1, "burst_seconds": 2 } }),
    )
    .await;

    let started = Instant::now();
    loop {
        let me: Value = get_me(&app, &user, &password)
            .await
            .json()
            .await
            .unwrap_or_default();
        if me["quota"]["requests_per_second"] == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the new quota did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut limited = false;
    for _ in 0..5 {
        if get_me(&app, &user, &password).await.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "1 request/s with a burst of 2 was not enforced");
}

#[tokio::test]
async fn a_request_larger_than_the_byte_burst_is_413_not_429() {
    let app = TestApp::spawn().await;
    let (topic, user, password) = topic_with_quota(
        &app,
        json!({ "bytes_per_second": 1_000_000, "burst_seconds": 1 }),
    )
    .await;
    let chunk = "x".repeat(600_000);
    let body = json!([{ "Value": chunk }, { "Value": chunk }]).to_string();

    let response = app.produce(&user, &password, &topic, &body).await;

    assert_error(
        response,
        StatusCode::PAYLOAD_TOO_LARGE,
        "exceeds_quota_burst",
    )
    .await;
}

#[tokio::test]
async fn consumed_bytes_are_charged_after_the_fact() {
    let app = TestApp::spawn().await;
    let (topic, user, password) = topic_with_quota(
        &app,
        json!({ "bytes_per_second": 1_000_000, "burst_seconds": 1 }),
    )
    .await;
    let chunk = "x".repeat(600_000);
    for _ in 0..3 {
        let response = app
            .produce(
                &user,
                &password,
                &topic,
                &json!([{ "Value": chunk }]).to_string(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }

    let read = app.consume_ok(&user, &password, &topic, "limit=3").await;
    assert_eq!(
        read.len(),
        3,
        "consume itself is never refused for its size"
    );

    let next = get_me(&app, &user, &password).await;
    assert_error(next, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

/// A thousand wrong passwords for one user from one network, a hundred in
/// flight: argon2 runs only for the failure budget (in flight or not, once
/// the user has failed there its checks go one at a time), and the user's
/// cached client is never refused.
#[tokio::test]
async fn a_thousand_wrong_passwords_are_throttled_before_argon2_and_spare_the_cached_client() {
    let app = TestApp::spawn().await;
    let (_, user, password) = app
        .tenant_with_quota(json!({ "requests_per_second": 1000 }))
        .await;
    let node = BinaryNode::start(&app.database_url, &app.bootstrap, "warn").await;
    let me = |pw: String| {
        app.data
            .get(format!("{}/me", node.public_url))
            .basic_auth(&user, Some(pw))
            .send()
    };
    assert_eq!(me(password.clone()).await.unwrap().status(), StatusCode::OK);

    let cached = {
        let (client, url, user, password) = (
            app.data.clone(),
            node.public_url.clone(),
            user.clone(),
            password.clone(),
        );
        tokio::spawn(async move {
            let mut failures = 0;
            for _ in 0..50 {
                let status = client
                    .get(format!("{url}/me"))
                    .basic_auth(&user, Some(&password))
                    .send()
                    .await
                    .unwrap()
                    .status();
                if status != StatusCode::OK {
                    failures += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            failures
        })
    };
    // A hundred in flight: a throttled login's 429 is held for a second.
    let started = Instant::now();
    let answers: Vec<(StatusCode, bool)> = futures::stream::iter(0..1000)
        .map(|i| {
            let me = &me;
            async move {
                let response = me(format!("wrong-{i}")).await.unwrap();
                let retry_after = response.headers().contains_key("retry-after");
                (response.status(), retry_after)
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut throttled = 0;
    for (status, retry_after) in answers {
        match status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                assert!(retry_after);
                throttled += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(cached.await.unwrap(), 0, "the cached client was locked out");
    assert!(throttled >= 980, "only {throttled} of 1000 were throttled");

    let verifications = argon2_verifications(&node).await;
    // The first correct login, the burst of 10, and what refills in the meantime.
    let allowed = 1.0 + 10.0 + (elapsed.as_secs_f64() / 6.0).ceil();
    assert!(
        verifications <= allowed,
        "argon2 ran {verifications} times, at most {allowed} allowed"
    );
}

#[tokio::test]
async fn concurrent_first_requests_with_the_same_credentials_share_one_argon2_run() {
    let app = TestApp::spawn().await;
    let (_, user, password) = app
        .tenant_with_quota(json!({ "requests_per_second": 1000 }))
        .await;
    let node = BinaryNode::start(&app.database_url, &app.bootstrap, "warn").await;
    let before = argon2_verifications(&node).await;

    // Eight at once, none cached yet: within the login throttle's burst.
    let requests = (0..8).map(|_| {
        app.data
            .get(format!("{}/me", node.public_url))
            .basic_auth(&user, Some(&password))
            .send()
    });
    for response in futures::future::join_all(requests).await {
        assert_eq!(response.unwrap().status(), StatusCode::OK);
    }

    assert_eq!(argon2_verifications(&node).await - before, 1.0);
}

#[tokio::test]
async fn a_produce_refused_before_its_body_is_read_keeps_the_connection_open() {
    let app = TestApp::spawn().await;
    let (topic, user, password) = topic_with_quota(
        &app,
        json!({ "requests_per_second": 1, "burst_seconds": 1 }),
    )
    .await;
    let url = format!("{}/topic/{topic}", app.public_url);
    let ca = crate::helpers::tls::certs().ca.display().to_string();
    let mut args: Vec<String> = Vec::new();
    for (i, secret) in [&password, &password, &"wrong".to_owned(), &password]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            // A new transfer, on the same connection if the server kept it.
            args.extend(["--next".to_owned(), "--cacert".to_owned(), ca.clone()]);
        }
        args.extend(
            [
                "--http1.1",
                "-u",
                &format!("{user}:{secret}"),
                "-XPOST",
                "-d",
                r#"[{"Value":"v"}]"#,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{num_connects}\n",
                &url,
            ]
            .map(str::to_owned),
        );
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let out = app.curl(&args).await;

    // One connection for all four: the 429 and the 401 left it open.
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, ["200 1", "429 0", "401 0", "429 0"]);
}
