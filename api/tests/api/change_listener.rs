//! The connection on which a node LISTENs for tenancy changes is
//! supervised: killed or silently dead, it is replaced, and every cache fed
//! by notices is dropped, so that a change still reaches the node within
//! 5 s.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::proxy::Proxy;
use crate::helpers::TestApp;

/// How soon a change made anywhere must be in force on every node.
const WITHIN: Duration = Duration::from_secs(5);

const ONE: &str = r#"[{"Value":"x"}]"#;

/// The backend pid of the node's listening connection, once it is up.
async fn listener_pid(db: &PgPool) -> i32 {
    let started = Instant::now();
    loop {
        let pid: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity \
             WHERE datname = current_database() AND application_name = 'sluice-listener'",
        )
        .fetch_optional(db)
        .await
        .unwrap();
        if let Some(pid) = pid {
            return pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the node never listened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A user with a write grant on its own topic, whose login `app` has
/// cached; returns (tenant, topic, user, password).
async fn cached_writer(admin: &TestApp, app: &TestApp) -> (String, String, String, String) {
    let (tenant, topic, user, password) = admin.tenant_with_topic(1).await;
    assert_eq!(
        app.produce(&user, &password, &topic, ONE).await.status(),
        StatusCode::OK
    );
    (tenant, topic, user, password)
}

/// Produces until the answer is 403 and returns how long that took;
/// fails if it takes longer than `limit`.
async fn time_until_forbidden(
    app: &TestApp,
    user: &str,
    password: &str,
    topic: &str,
    limit: Duration,
) -> Duration {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let status = app.produce(user, password, topic, ONE).await.status();
        if status == StatusCode::FORBIDDEN {
            return started.elapsed();
        }
        seen.push(status.as_u16());
        assert!(
            started.elapsed() < limit,
            "the removed grant still worked after {:?}; answers: {seen:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_grant_removed_after_the_listener_connection_is_killed_takes_effect_within_5_s() {
    // A TTL far beyond the test, so only a notice can drop the login.
    let app = TestApp::spawn_with(|f| f.merge(("auth.cache_ttl_seconds", 600))).await;
    let before = listener_pid(&app.db).await;
    let (tenant, topic, user, password) = cached_writer(&app, &app).await;

    let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(before)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(killed);
    let removed = app
        .delete_grant(&tenant, &user, &format!("{tenant}."))
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);

    let took = time_until_forbidden(&app, &user, &password, &topic, WITHIN).await;
    eprintln!("the removal took effect after {took:?}");
    assert_ne!(
        listener_pid(&app.db).await,
        before,
        "a new listening connection"
    );
}

#[tokio::test]
async fn a_grant_removed_while_the_listener_connection_is_silently_dead_takes_effect_within_5_s() {
    let direct = TestApp::spawn().await;
    // A node whose only way to Postgres is a proxy that can make its
    // connections go silent without closing them.
    let (proxy, proxied) = Proxy::to_database(&direct.database_url).await;
    let app = TestApp::start_node_with(&direct, move |f| {
        f.merge(("database.url", proxied))
            .merge(("database.acquire_timeout_ms", 1000))
            .merge(("auth.cache_ttl_seconds", 600))
    })
    .await;
    listener_pid(&direct.db).await;
    let (tenant, topic, user, password) = cached_writer(&direct, &app).await;

    proxy.stall();
    let removed = direct
        .delete_grant(&tenant, &user, &format!("{tenant}."))
        .await;
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);

    let took = time_until_forbidden(&app, &user, &password, &topic, WITHIN).await;
    eprintln!("the removal took effect after {took:?}");
    // And it stays in force: the login is not served from a stale cache.
    for _ in 0..5 {
        assert_eq!(
            app.produce(&user, &password, &topic, ONE).await.status(),
            StatusCode::FORBIDDEN
        );
    }
}
