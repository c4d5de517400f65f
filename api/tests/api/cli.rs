use serde_json::Value;
use tenancy::Password;

use crate::helpers::TestApp;

fn stdout_json(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--json prints JSON")
}

fn code(output: &std::process::Output) -> i32 {
    output.status.code().expect("exited normally")
}

#[tokio::test]
async fn the_cli_drives_the_whole_tenant_user_grant_lifecycle() {
    let app = TestApp::spawn().await;

    let tenant = stdout_json(
        &app.cli(&["--json", "tenant", "create", "acme", "--max-topics", "4"])
            .await,
    );
    assert_eq!(tenant["quota"]["max_topics"], 4);

    let credentials = stdout_json(
        &app.cli(&[
            "--json",
            "user",
            "create",
            "acme.app",
            "--grant",
            "acme.orders=rw",
        ])
        .await,
    );
    assert_eq!(credentials["username"], "acme.app");
    let first = credentials["password"].as_str().unwrap().to_owned();
    assert!(Password::new(first.clone()).verify(&app.stored_hash("acme.app").await));

    let grant = stdout_json(
        &app.cli(&[
            "--json",
            "grant",
            "add",
            "acme.app",
            "acme.audit.",
            "--read",
        ])
        .await,
    );
    assert_eq!(grant["prefix"], "acme.audit.");

    let grants = stdout_json(&app.cli(&["--json", "grant", "list", "acme.app"]).await);
    assert_eq!(grants.as_array().unwrap().len(), 2);

    let rotated = stdout_json(&app.cli(&["--json", "user", "rotate", "acme.app"]).await);
    let second = rotated["password"].as_str().unwrap();
    let hash = app.stored_hash("acme.app").await;
    assert!(Password::new(second).verify(&hash));
    assert!(!Password::new(first).verify(&hash));

    let disabled = stdout_json(&app.cli(&["--json", "user", "disable", "acme.app"]).await);
    assert_eq!(disabled["disabled"], true);

    assert_eq!(
        code(
            &app.cli(&["grant", "remove", "acme.app", "acme.orders"])
                .await
        ),
        0
    );
    let grants = stdout_json(&app.cli(&["--json", "grant", "list", "acme.app"]).await);
    assert_eq!(grants.as_array().unwrap().len(), 1);

    let audit = stdout_json(
        &app.cli(&["--json", "audit", "--tenant", "acme", "--by", "tester"])
            .await,
    );
    assert!(
        audit.as_array().unwrap().is_empty(),
        "no change was made as 'tester'"
    );
    let audit = stdout_json(&app.cli(&["--json", "audit", "--tenant", "acme"]).await);
    assert_eq!(audit.as_array().unwrap().len(), 6);

    assert_eq!(
        code(&app.cli(&["tenant", "delete", "acme"]).await),
        4,
        "in use: conflict"
    );
    assert_eq!(code(&app.cli(&["user", "delete", "acme.app"]).await), 0);
    assert_eq!(code(&app.cli(&["tenant", "delete", "acme"]).await), 0);
    assert_eq!(
        code(&app.cli(&["tenant", "show", "acme"]).await),
        3,
        "gone: not found"
    );
}

#[tokio::test]
async fn the_cli_prints_tables_by_default() {
    let app = TestApp::spawn().await;
    app.cli(&["tenant", "create", "acme"]).await;
    app.cli(&["user", "create", "acme.app", "--grant", "acme.=r"])
        .await;

    let tenants = app.cli(&["tenant", "list"]).await;
    let text = String::from_utf8_lossy(&tenants.stdout);
    assert!(text.contains("TENANT") && text.contains("acme"), "{text}");

    let users = app.cli(&["user", "list", "acme"]).await;
    let text = String::from_utf8_lossy(&users.stdout);
    assert!(
        text.contains("acme.app") && text.contains("acme.=r"),
        "{text}"
    );
}

#[tokio::test]
async fn the_cli_exit_codes_say_what_went_wrong() {
    let app = TestApp::spawn().await;
    app.cli(&["tenant", "create", "acme"]).await;

    assert_eq!(
        code(&app.cli(&["tenant", "create", "acme"]).await),
        4,
        "conflict"
    );
    assert_eq!(
        code(&app.cli(&["tenant", "show", "ghost"]).await),
        3,
        "not found"
    );
    assert_eq!(
        code(&app.cli(&["tenant", "create", "Bad.Name"]).await),
        6,
        "invalid"
    );
    assert_eq!(
        code(&app.cli(&["user", "create", "nodot"]).await),
        2,
        "usage"
    );
    assert_eq!(
        code(
            &app.cli(&["user", "create", "acme.x", "--grant", "acme.=z"])
                .await
        ),
        2,
        "usage"
    );

    let bad_token = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "admin",
            "--url",
            &app.admin_url,
            "--token",
            "wrong-token-wrong-token",
            "tenant",
            "list",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&bad_token), 5, "unauthorized");

    let unreachable = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "admin",
            "--url",
            "http://127.0.0.1:1",
            "--token",
            "whatever-whatever",
            "tenant",
            "list",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(code(&unreachable), 7, "unavailable");
}

#[tokio::test]
async fn the_cli_reads_its_token_from_the_config_environment() {
    let app = TestApp::spawn().await;

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["admin", "--json", "tenant", "list"])
        .env("SLUICE_ADMIN_URL", &app.admin_url)
        .env("SLUICE_ADMIN__TOKEN", crate::helpers::ADMIN_TOKEN)
        .env_remove("SLUICE_CONFIG")
        .output()
        .await
        .unwrap();

    assert_eq!(stdout_json(&output), serde_json::json!([]));
}
