use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::process::BinaryNode;
use crate::helpers::TestApp;

async fn curl(app: &TestApp, args: &[&str], user: &str, password: &str, topic: &str) -> String {
    let url = format!("{}/topic/{topic}", app.public_url);
    let credentials = format!("{user}:{password}");
    let mut all = vec!["-o", "/dev/null", "-w", "%{http_code} %{http_version}"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "-u",
        &credentials,
        "-XPOST",
        "-d",
        r#"[{"Value":"v"}]"#,
        &url,
    ]);
    String::from_utf8(app.curl(&all).await.stdout).unwrap()
}

#[tokio::test]
async fn curl_negotiates_http2_over_tls_and_produces() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;

    assert_eq!(
        curl(&app, &["--http2"], &user, &password, &topic).await,
        "200 2"
    );
    assert_eq!(
        curl(&app, &["--http1.1"], &user, &password, &topic).await,
        "200 1.1"
    );
}

#[tokio::test]
async fn both_tls_1_2_and_tls_1_3_are_accepted() {
    let app = TestApp::spawn().await;
    let (_, topic, user, password) = app.tenant_with_topic(1).await;

    assert_eq!(
        curl(
            &app,
            &["--tlsv1.2", "--tls-max", "1.2"],
            &user,
            &password,
            &topic
        )
        .await,
        "200 2"
    );
    assert_eq!(
        curl(&app, &["--tlsv1.3"], &user, &password, &topic).await,
        "200 2"
    );
}

#[tokio::test]
async fn plain_http_is_not_served_on_the_tls_listener() {
    let app = TestApp::spawn().await;
    let plain = app.public_url.replace("https://", "http://");

    let result = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .send()
        .await;

    assert!(result.is_err() || result.is_ok_and(|r| r.status() != StatusCode::OK));
}

#[tokio::test]
async fn plain_http_is_served_only_when_tls_is_switched_off() {
    let app = TestApp::spawn_with(|f| f.merge(("tls.enabled", false))).await;
    let plain = app.public_url.replace("https://", "http://");

    let response = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn sighup_swaps_in_a_renewed_certificate_without_a_restart() {
    let app = TestApp::spawn().await;
    let node = BinaryNode::start(&app.database_url, &app.bootstrap, "warn").await;
    let healthz = format!("{}/healthz", node.public_url);
    let trusts = |ca: PathBuf| {
        let url = healthz.clone();
        async move {
            tokio::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", "--cacert"])
                .arg(ca)
                .arg(url)
                .status()
                .await
                .unwrap()
                .success()
        }
    };
    let old_ca = crate::helpers::tls::certs().ca.clone();
    assert!(trusts(old_ca.clone()).await);

    // A renewal from another CA, written over the node's files.
    let renewed_dir = tempfile::tempdir().unwrap();
    let renewed = crate::helpers::tls::issue(renewed_dir.path(), "renewed CA");
    let (cert, key) = node.tls_files();
    std::fs::copy(&renewed.cert, cert).unwrap();
    std::fs::copy(&renewed.key, key).unwrap();
    assert!(
        trusts(old_ca.clone()).await,
        "nothing changes before the signal"
    );
    node.signal("HUP");

    let deadline = Instant::now() + Duration::from_secs(10);
    while !trusts(renewed.ca.clone()).await {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!trusts(old_ca).await, "the old certificate is still served");
}
