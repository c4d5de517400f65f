//! Nobody can turn the login path against a user: not a flood of wrong
//! passwords from another network, not a flood of first logins, not the
//! expiry of a busy client's cached login, and not a login racing a revoke.
//! Attackers connect from other loopback addresses (127.0.0.2, …), which
//! the server sees as other client networks.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::process::BinaryNode;
use crate::helpers::{assert_error, data_client_from, TestApp};

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// `GET /me` with Basic credentials through `client`.
async fn me(client: &reqwest::Client, url: &str, user: &str, password: &str) -> reqwest::Response {
    client
        .get(format!("{url}/me"))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
}

/// A tenant whose quota never gets in the way; returns (user, password).
async fn unthrottled_user(app: &TestApp) -> (String, String) {
    let (_, user, password) = app
        .tenant_with_quota(json!({ "requests_per_second": 100_000, "burst_seconds": 10 }))
        .await;
    (user, password)
}

#[tokio::test]
async fn a_hundred_wrong_passwords_from_one_network_never_lock_out_the_user_elsewhere() {
    let app = TestApp::spawn().await;
    let (user, password) = unthrottled_user(&app).await;
    let attacker = data_client_from(loopback(2));

    let mut throttled = 0;
    for i in 0..100 {
        let response = me(&attacker, &app.public_url, &user, &format!("guess-{i}")).await;
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => throttled += 1,
            other => panic!("a wrong password got {other}"),
        }
    }
    assert!(
        throttled >= 80,
        "the guessing network was throttled only {throttled} times"
    );

    // The guessing network stays refused, even with the right password.
    let response = me(&attacker, &app.public_url, &user, &password).await;
    assert_error(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_login_attempts",
    )
    .await;

    // The real client's first login, never cached, from its own network.
    let victim = data_client_from(loopback(1));
    let response = me(&victim, &app.public_url, &user, &password).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_busy_client_sees_no_refusal_and_no_new_argon2_run_across_three_login_lifetimes() {
    let app = TestApp::spawn().await;
    let (user, password) = unthrottled_user(&app).await;
    let ttl = Duration::from_secs(2);
    let node = BinaryNode::start_with_env(
        &app.database_url,
        &app.bootstrap,
        "warn",
        &[("SLUICE_AUTH__CACHE_TTL_SECONDS", "2")],
    )
    .await;
    // Logged in and settled: the node drops its logins once when its
    // change listener first connects, which may follow the first request.
    let client = data_client_from(loopback(1));
    for _ in 0..2 {
        let first = me(&client, &node.public_url, &user, &password).await;
        assert_eq!(first.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let verifications = node.metric("sluice_argon2_verifications_total").await;
    let misses = node.metric("sluice_auth_cache_misses_total").await;

    let refused = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let until = Instant::now() + ttl * 3;
    let clients = (0..16).map(|_| {
        let client = data_client_from(loopback(1));
        let (url, user, password) = (node.public_url.clone(), user.clone(), password.clone());
        let (refused, served) = (refused.clone(), served.clone());
        tokio::spawn(async move {
            while Instant::now() < until {
                let status = me(&client, &url, &user, &password).await.status();
                if status.is_success() {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    });
    futures::future::join_all(clients).await;

    assert_eq!(refused.load(Ordering::Relaxed), 0, "non-2xx answers");
    assert!(
        served.load(Ordering::Relaxed) > 16 * 3,
        "the clients barely ran"
    );
    assert_eq!(
        node.metric("sluice_argon2_verifications_total").await,
        verifications,
        "the login was verified again at its expiry"
    );
    assert_eq!(
        node.metric("sluice_auth_cache_misses_total").await,
        misses,
        "the cached login expired under a busy client"
    );
}

#[tokio::test]
async fn a_flood_of_first_logins_gets_quick_503s_and_never_delays_a_cached_client() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("auth.max_concurrent_verifications", 1))
            .merge(("auth.verification_queue_ms", 300))
    })
    .await;
    let (user, password) = unthrottled_user(&app).await;
    let victim = data_client_from(loopback(1));
    assert_eq!(
        me(&victim, &app.public_url, &user, &password)
            .await
            .status(),
        StatusCode::OK
    );

    // 20 networks, each at its cap of checks in progress, with new
    // usernames every time: far more argon2 work than one slot can do.
    let flood_until = Instant::now() + Duration::from_secs(4);
    let overloaded = Arc::new(AtomicUsize::new(0));
    let slowest = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let mut attackers = Vec::new();
    for network in 0..20u8 {
        for lane in 0..8 {
            let client = data_client_from(loopback(10 + network));
            let url = app.public_url.clone();
            let (overloaded, slowest) = (overloaded.clone(), slowest.clone());
            attackers.push(tokio::spawn(async move {
                let mut i = 0;
                while Instant::now() < flood_until {
                    i += 1;
                    let started = Instant::now();
                    let name = format!("nobody{network}x{lane}x{i}.app");
                    let response = me(&client, &url, &name, "guess").await;
                    let took = started.elapsed();
                    // The first request of a lane also pays its TLS handshake.
                    if i > 1 {
                        let mut worst = slowest.lock().unwrap();
                        *worst = (*worst).max(took);
                    }
                    match response.status() {
                        StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => {}
                        StatusCode::SERVICE_UNAVAILABLE => {
                            assert!(response.headers().contains_key("retry-after"));
                            let body: serde_json::Value = response.json().await.unwrap();
                            assert_eq!(body["code"], "overloaded");
                            overloaded.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("the flood got {other}"),
                    }
                }
            }));
        }
    }

    let mut latencies = Vec::new();
    while Instant::now() < flood_until {
        let started = Instant::now();
        let status = me(&victim, &app.public_url, &user, &password)
            .await
            .status();
        latencies.push(started.elapsed());
        assert_eq!(status, StatusCode::OK, "the cached client was refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for attacker in attackers {
        attacker.await.unwrap();
    }

    assert!(
        overloaded.load(Ordering::Relaxed) > 0,
        "the queue never filled"
    );
    let slowest = *slowest.lock().unwrap();
    assert!(
        slowest < Duration::from_secs(3),
        "a refused login waited {slowest:?}: the queue deadline is 300 ms"
    );
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    assert!(
        p99 < Duration::from_secs(1),
        "the cached client's p99 was {p99:?} during the flood"
    );
}

#[tokio::test]
async fn a_revoke_racing_a_slow_first_login_is_final_on_every_node() {
    let slow = |f: figment::Figment| {
        f.merge(("auth.max_concurrent_verifications", 1))
            .merge(("auth.verification_queue_ms", 20_000))
            .merge(("auth.max_verifications_per_address", 64))
    };
    let first = TestApp::spawn_with(slow).await;
    let second = TestApp::start_node_with(&first, slow).await;
    let (tenant, user, password) = first
        .tenant_with_quota(json!({ "requests_per_second": 100_000 }))
        .await;
    let nodes = [first.public_url.clone(), second.public_url.clone()];

    // Fill each node's one argon2 slot with a queue of unknown users, so
    // that the real user's first login reads its row and then waits.
    let mut queue = Vec::new();
    for url in &nodes {
        for i in 0..16 {
            let (url, client) = (url.clone(), data_client_from(loopback(2)));
            queue.push(tokio::spawn(async move {
                me(&client, &url, &format!("nobody{i}.app"), "guess")
                    .await
                    .status()
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logins: Vec<_> = nodes
        .iter()
        .map(|url| {
            let (url, user, password) = (url.clone(), user.clone(), password.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let status = me(&data_client_from(loopback(1)), &url, &user, &password)
                    .await
                    .status();
                (status, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let revoke_started = Instant::now();
    let disabled = first
        .patch_user(&tenant, &user, &json!({ "disabled": true }))
        .await;
    assert_eq!(disabled.status(), StatusCode::OK);
    let revoked_after = revoke_started.elapsed() + Duration::from_millis(200);

    for login in logins {
        let (status, took) = login.await.unwrap();
        assert!(
            took > revoked_after,
            "the login finished in {took:?}, before the revoke: no race was tested"
        );
        // It read the row before the revoke, and reads it again after.
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    for status in futures::future::join_all(queue).await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    for url in &nodes {
        let response = me(&data_client_from(loopback(1)), url, &user, &password).await;
        assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
}
