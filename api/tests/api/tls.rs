use reqwest::StatusCode;

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
