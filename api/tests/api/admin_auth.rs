use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_error, TestApp};

/// Every operation of the admin document that names the admin token, with
/// its path filled in for tenant `acme`, and a route nothing serves.
async fn admin_routes(app: &TestApp) -> Vec<(Method, String)> {
    let document: Value = app
        .http
        .get(format!("{}/openapi.json", app.admin_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let needs_token = operation["security"] == json!([{ "admin_token": [] }]);
            if !needs_token {
                continue;
            }
            let path = path
                .replace("{tenant}", "acme")
                .replace("{user}", "acme.app")
                .replace("{topic}", "acme.orders")
                .replace("{prefix}", "acme.")
                .replace("{group}", "app");
            routes.push((method.to_uppercase().parse().unwrap(), path));
        }
    }
    for family in ["/users", "/grants", "/topics", "/groups", "/audit"] {
        assert!(
            routes.iter().any(|(_, path)| path.contains(family)),
            "no {family} route in the admin document"
        );
    }
    routes.push((Method::GET, "/v1/unknown-route".to_owned()));
    routes
}

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_wrong_token() {
    let app = TestApp::spawn().await;
    app.create_tenant("acme").await;
    app.create_user(
        "acme",
        "acme.app",
        json!([{ "prefix": "acme.", "read": true }]),
    )
    .await;
    let bad_headers = [
        None,
        Some("Bearer wrong-token-wrong-token".to_owned()),
        Some(format!("Bearer {}x", crate::helpers::ADMIN_TOKEN)),
        Some(format!("Basic {}", crate::helpers::ADMIN_TOKEN)),
        Some("Bearer ".to_owned()),
    ];

    for (method, path) in admin_routes(&app).await {
        for header in &bad_headers {
            let mut request = app
                .http
                .request(method.clone(), format!("{}{path}", app.admin_url))
                .json(
                    &json!({ "name": "acme.x", "prefix": "acme.", "read": true, "disabled": true }),
                );
            if let Some(value) = header {
                request = request.header("Authorization", value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.headers()["www-authenticate"],
                "Bearer",
                "{method} {path}"
            );
            assert_error(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        }
    }

    // Nothing above changed anything.
    let users = app.get_users("acme").await.text().await.unwrap();
    assert!(users.contains("acme.app"));
    assert!(!users.contains("acme.x"));
}

#[tokio::test]
async fn health_endpoints_need_no_token() {
    let app = TestApp::spawn().await;

    let healthz = app
        .http
        .get(format!("{}/healthz", app.admin_url))
        .send()
        .await
        .unwrap();

    assert_eq!(healthz.status(), StatusCode::OK);
    assert_eq!(app.get_readyz().await.status(), StatusCode::OK);
}
