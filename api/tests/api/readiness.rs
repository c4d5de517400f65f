//! `/readyz` answers from a state one task per node refreshes in the
//! background, so anonymous callers never make the node query Postgres or
//! Kafka; and `/metrics` can be put behind a token of its own.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reqwest::StatusCode;

use crate::helpers::proxy::Proxy;
use crate::helpers::{assert_error, TestApp, ADMIN_TOKEN};

const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

/// Transactions committed in the test database so far, as Postgres'
/// statistics have them (backends report them within about a second).
async fn commits(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn three_hundred_readiness_calls_cost_almost_no_postgres_transactions() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get_readyz().await.status(), StatusCode::OK);
    let urls = [
        format!("{}/readyz", app.public_url),
        format!("{}/readyz", app.admin_url),
    ];
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    let before = commits(&app).await;

    let statuses: Vec<StatusCode> = futures::stream::iter(0..300)
        .map(|i| {
            let url = urls[i % 2].clone();
            let client = if i % 2 == 0 {
                app.data.clone()
            } else {
                app.http.clone()
            };
            async move { client.get(url).send().await.unwrap().status() }
        })
        .buffer_unordered(30)
        .collect()
        .await;
    // Let the backends report their counts.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = commits(&app).await;
    let elapsed = started.elapsed().as_secs_f64();

    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    // In the background a node commits a few transactions a second
    // (readiness, the listener's heartbeat, the live-node count), and more
    // on a loaded CI machine where its timers bunch up; so the bound is not
    // "nothing" but a third of the calls: a readiness that touched Postgres
    // on even every third call fails it, and background noise never does.
    let spent = after - before;
    eprintln!("{spent} transactions in {elapsed:.1} s");
    assert!(
        spent < 100,
        "{spent} transactions in {elapsed:.1} s for 300 readiness calls"
    );
}

#[tokio::test]
async fn readiness_turns_503_when_postgres_goes_away_and_200_when_it_is_back() {
    let direct = TestApp::spawn().await;
    let (proxy, proxied) = Proxy::to_database(&direct.database_url).await;
    let app = TestApp::start_node_with(&direct, move |f| {
        f.merge(("database.url", proxied))
            .merge(("database.acquire_timeout_ms", 1000))
    })
    .await;
    let urls = [
        (app.data.clone(), format!("{}/readyz", app.public_url)),
        (app.http.clone(), format!("{}/readyz", app.admin_url)),
    ];
    let wait_for = |wanted: StatusCode, postgres: &'static str| {
        let urls = urls.clone();
        async move {
            let started = Instant::now();
            for (client, url) in &urls {
                loop {
                    let response = client.get(url).send().await.unwrap();
                    let status = response.status();
                    let body: serde_json::Value = response.json().await.unwrap();
                    if status == wanted {
                        assert_eq!(body["checks"]["postgres"], postgres, "{body}");
                        break;
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(5),
                        "{url} still answers {status} {body}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            started.elapsed()
        }
    };
    wait_for(StatusCode::OK, "ok").await;

    proxy.cut().await;
    let took = wait_for(StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    eprintln!("not ready {took:?} after Postgres went away");

    proxy.restore();
    let took = wait_for(StatusCode::OK, "ok").await;
    eprintln!("ready {took:?} after Postgres came back");
}

#[tokio::test]
async fn without_a_metrics_token_metrics_need_no_token() {
    let app = TestApp::spawn().await;

    let response = app
        .http
        .get(format!("{}/metrics", app.admin_url))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("sluice_"));
}

#[tokio::test]
async fn with_a_metrics_token_metrics_need_it_or_the_admin_token() {
    let app = TestApp::spawn_with(|f| f.merge(("admin.metrics_token", METRICS_TOKEN))).await;
    let metrics = |token: Option<&'static str>| {
        let mut request = app.http.get(format!("{}/metrics", app.admin_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };

    assert_error(
        metrics(None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_error(
        metrics(Some("not-the-metrics-token-0123")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let scraped = metrics(Some(METRICS_TOKEN)).await;
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped.text().await.unwrap().contains("sluice_"));
    assert_eq!(metrics(Some(ADMIN_TOKEN)).await.status(), StatusCode::OK);

    // The metrics token opens nothing else.
    let admin = app
        .http
        .get(format!("{}/v1/tenants", app.admin_url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_error(admin, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Probes stay anonymous.
    assert_eq!(app.get_readyz().await.status(), StatusCode::OK);
}
