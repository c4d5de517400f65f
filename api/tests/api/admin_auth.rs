use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_error, TestApp};

/// Every admin route, with a body where it takes one.
fn admin_routes() -> Vec<(Method, &'static str)> {
    vec![
        (Method::POST, "/v1/tenants"),
        (Method::GET, "/v1/tenants"),
        (Method::GET, "/v1/tenants/acme"),
        (Method::PATCH, "/v1/tenants/acme"),
        (Method::DELETE, "/v1/tenants/acme"),
        (Method::POST, "/v1/tenants/acme/users"),
        (Method::GET, "/v1/tenants/acme/users"),
        (Method::GET, "/v1/tenants/acme/users/acme.app"),
        (Method::PATCH, "/v1/tenants/acme/users/acme.app"),
        (Method::DELETE, "/v1/tenants/acme/users/acme.app"),
        (Method::POST, "/v1/tenants/acme/users/acme.app/password"),
        (Method::POST, "/v1/tenants/acme/users/acme.app/grants"),
        (Method::GET, "/v1/tenants/acme/users/acme.app/grants"),
        (
            Method::DELETE,
            "/v1/tenants/acme/users/acme.app/grants/acme.",
        ),
        (Method::GET, "/v1/audit"),
        (Method::GET, "/v1/unknown-route"),
    ]
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

    for (method, path) in admin_routes() {
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
