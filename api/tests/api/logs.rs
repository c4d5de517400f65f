//! Runs the real binary with every log level on and proves that no
//! password, credential header or admin token reaches its logs.

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{broker, data_client, tls, unique_tenant, TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn no_password_or_token_ever_reaches_the_logs() {
    let database_url = TestApp::fresh_database().await;
    let certs = tls::certs();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n\
             [tls]\nenabled = true\ncert = \"{}\"\nkey = \"{}\"\n\
             [database]\nurl = \"{database_url}\"\n\
             [admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{ADMIN_TOKEN}\"\n\
             [kafka]\nbootstrap_servers = \"{}\"\nreplication_factor = 1\n\
             [kafka.properties]\n\"batch.num.messages\" = \"1\"\n\
             [log]\nformat = \"json\"\n",
            certs.cert.display(),
            certs.key.display(),
            broker::bootstrap()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "trace")
        .env_remove("SLUICE_CONFIG")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let (admin, public) = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the server starts")
            .unwrap()
            .expect("the server is still running");
        log.push(line.clone());
        if let Ok(event) = serde_json::from_str::<Value>(&line) {
            if event["message"] == "sluice is serving" {
                break (
                    event["admin"].as_str().unwrap().to_owned(),
                    event["public"].as_str().unwrap().to_owned(),
                );
            }
        }
    };
    let collector = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            log.push(line);
        }
        log
    });

    let admin_url = format!("http://{admin}");
    let public_url = format!("https://localhost:{}", public.rsplit_once(':').unwrap().1);
    let http = reqwest::Client::new();
    let data = data_client();
    let tenant = unique_tenant();
    let admin_post = |path: String, body: Value| {
        http.post(format!("{admin_url}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    admin_post("/v1/tenants".into(), json!({ "name": tenant }))
        .await
        .unwrap();
    let user = format!("{tenant}.app");
    let created: Value = admin_post(
        format!("/v1/tenants/{tenant}/users"),
        json!({ "name": user, "grants": [{ "prefix": format!("{tenant}."), "write": true }] }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let first = created["password"].as_str().unwrap().to_owned();
    let topic = format!("{tenant}.orders");
    admin_post(
        format!("/v1/tenants/{tenant}/topics"),
        json!({ "name": topic }),
    )
    .await
    .unwrap();
    let rotated: Value = admin_post(
        format!("/v1/tenants/{tenant}/users/{user}/password"),
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let second = rotated["password"].as_str().unwrap().to_owned();
    let guessed = "hunter2-guessed-password";
    for password in [first.as_str(), second.as_str(), guessed] {
        data.post(format!("{public_url}/topic/{topic}"))
            .basic_auth(&user, Some(password))
            .body(r#"[{"Value":"x"}]"#)
            .send()
            .await
            .unwrap();
    }
    let bad_admin = http
        .get(format!("{admin_url}/v1/tenants"))
        .bearer_auth("a-wrong-admin-token-xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_admin.status(), reqwest::StatusCode::UNAUTHORIZED);

    let started = Instant::now();
    nix_terminate(&child);
    let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the server did not stop"
    );
    let log = collector.await.unwrap().join("\n");

    assert!(
        log.contains("/topic/"),
        "the log did not record the requests, so this test proves nothing"
    );
    let secrets = [
        first.clone(),
        second.clone(),
        guessed.to_owned(),
        ADMIN_TOKEN.to_owned(),
        "a-wrong-admin-token-xyz".to_owned(),
        BASE64.encode(format!("{user}:{first}")),
        BASE64.encode(format!("{user}:{second}")),
        BASE64.encode(format!("{user}:{guessed}")),
        "$argon2id$".to_owned(),
    ];
    for secret in secrets {
        assert!(!log.contains(&secret), "a secret reached the log: {secret}");
    }
}

/// Asks the child to stop the way an orchestrator would.
fn nix_terminate(child: &tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
    }
}
