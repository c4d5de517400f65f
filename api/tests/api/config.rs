use std::process::Output;

use crate::helpers::ADMIN_TOKEN;

/// Runs `sluice serve` with a config that should not boot, and returns what
/// it printed. A valid config would keep serving; the timeout catches that.
async fn serve_with(env: &[(&str, &str)], file: Option<&str>) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"));
    let dir = std::env::temp_dir().join(format!("sluice-config-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(contents) = file {
        let path = dir.join("sluice.toml");
        std::fs::write(&path, contents).unwrap();
        command.arg("--config").arg(path);
    }
    command
        .arg("serve")
        .env("SLUICE_ADMIN__LISTEN", "127.0.0.1:0")
        .env("SLUICE_ADMIN__TOKEN", ADMIN_TOKEN)
        .env("SLUICE_LISTEN", "127.0.0.1:0")
        .env("SLUICE_TLS__ENABLED", "false")
        .env_remove("SLUICE_CONFIG")
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::time::timeout(std::time::Duration::from_secs(20), command.output())
        .await
        .expect("a bad config stops the process at boot")
        .unwrap()
}

fn assert_fails_naming(output: &Output, key: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "serve started despite a bad {key}"
    );
    assert!(
        stderr.contains(key),
        "the error does not name {key}: {stderr}"
    );
}

#[tokio::test]
async fn serve_refuses_an_unparseable_listen_address_and_names_the_key() {
    let output = serve_with(&[("SLUICE_ADMIN__LISTEN", "not-an-address")], None).await;
    assert_fails_naming(&output, "admin.listen");
}

#[tokio::test]
async fn serve_refuses_a_zero_quota_default_and_names_the_key() {
    let output = serve_with(&[("SLUICE_QUOTA__BURST_SECONDS", "0")], None).await;
    assert_fails_naming(&output, "quota.burst_seconds");
}

#[tokio::test]
async fn serve_refuses_a_lease_no_longer_than_the_read_timeout_and_names_the_key() {
    let output = serve_with(
        &[
            ("SLUICE_CONSUME__READ_TIMEOUT_MS", "2000"),
            ("SLUICE_CONSUME__LEASE_MS", "2000"),
        ],
        None,
    )
    .await;
    assert_fails_naming(&output, "consume.lease");
}

#[tokio::test]
async fn serve_refuses_to_start_without_an_admin_token() {
    let output = serve_with(&[("SLUICE_ADMIN__TOKEN", "short")], None).await;
    assert_fails_naming(&output, "admin.token");
}

#[tokio::test]
async fn serve_refuses_a_metrics_token_that_is_the_admin_token() {
    let output = serve_with(&[("SLUICE_ADMIN__METRICS_TOKEN", ADMIN_TOKEN)], None).await;
    assert_fails_naming(&output, "admin.metrics_token");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains(ADMIN_TOKEN),
        "a token was printed: {stderr}"
    );
}

#[tokio::test]
async fn serve_refuses_a_non_postgres_database_url() {
    let output = serve_with(&[("SLUICE_DATABASE__URL", "mysql://localhost/x")], None).await;
    assert_fails_naming(&output, "database.url");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("mysql://"),
        "the URL (a secret) was printed: {stderr}"
    );
}

#[tokio::test]
async fn serve_refuses_an_unknown_key_in_the_config_file() {
    let output = serve_with(
        &[],
        Some("[admin]\nlisten = \"127.0.0.1:0\"\ntokn = \"x\"\n"),
    )
    .await;
    assert_fails_naming(&output, "tokn");
}

#[tokio::test]
async fn serve_refuses_a_wrongly_typed_value_in_the_config_file() {
    let output = serve_with(&[], Some("[database]\nmax_connections = \"many\"\n")).await;
    assert_fails_naming(&output, "database.max_connections");
}

#[tokio::test]
async fn serve_refuses_a_zero_body_read_timeout_and_names_the_key() {
    let output = serve_with(&[("SLUICE_HTTP__BODY_READ_TIMEOUT_MS", "0")], None).await;
    assert_fails_naming(&output, "http.body_read_timeout");
}

#[tokio::test]
async fn serve_refuses_a_per_address_connection_cap_above_the_total() {
    let output = serve_with(
        &[
            ("SLUICE_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "300"),
            ("SLUICE_HTTP__MAX_CONNECTIONS", "200"),
        ],
        None,
    )
    .await;
    assert_fails_naming(&output, "http.max_connections_per_address");
}
