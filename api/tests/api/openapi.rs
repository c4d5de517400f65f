use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, ADMIN_TOKEN};

/// Every route the server exposes, by listener. Adding a route without
/// documenting it (or the reverse) fails the test below.
const PUBLIC: &[(&str, &str)] = &[
    ("post", "/topic/{topic}"),
    ("get", "/topic/{topic}"),
    ("get", "/me"),
    ("get", "/healthz"),
    ("get", "/readyz"),
];
const ADMIN: &[(&str, &str)] = &[
    ("post", "/v1/tenants"),
    ("get", "/v1/tenants"),
    ("get", "/v1/tenants/{tenant}"),
    ("patch", "/v1/tenants/{tenant}"),
    ("delete", "/v1/tenants/{tenant}"),
    ("post", "/v1/tenants/{tenant}/users"),
    ("get", "/v1/tenants/{tenant}/users"),
    ("get", "/v1/tenants/{tenant}/users/{user}"),
    ("patch", "/v1/tenants/{tenant}/users/{user}"),
    ("delete", "/v1/tenants/{tenant}/users/{user}"),
    ("post", "/v1/tenants/{tenant}/users/{user}/password"),
    ("post", "/v1/tenants/{tenant}/users/{user}/grants"),
    ("get", "/v1/tenants/{tenant}/users/{user}/grants"),
    (
        "delete",
        "/v1/tenants/{tenant}/users/{user}/grants/{prefix}",
    ),
    ("post", "/v1/tenants/{tenant}/topics"),
    ("get", "/v1/tenants/{tenant}/topics"),
    ("get", "/v1/tenants/{tenant}/topics/{topic}"),
    ("delete", "/v1/tenants/{tenant}/topics/{topic}"),
    ("get", "/v1/tenants/{tenant}/groups"),
    ("post", "/v1/tenants/{tenant}/groups/{group}/reset"),
    ("delete", "/v1/tenants/{tenant}/groups/{group}"),
    ("get", "/v1/audit"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/readyz"),
];

fn operations(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn expected(routes: &[&[(&str, &str)]]) -> BTreeSet<(String, String)> {
    routes
        .iter()
        .flat_map(|list| list.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())))
        .collect()
}

/// Fills path parameters with names that exist in a fresh tenant.
fn concrete(path: &str, tenant: &str) -> String {
    path.replace("{topic}", &format!("{tenant}.orders"))
        .replace("{tenant}", tenant)
        .replace("{user}", &format!("{tenant}.app"))
        .replace("{prefix}", &format!("{tenant}."))
        .replace("{group}", "app")
}

#[tokio::test]
async fn the_openapi_documents_cover_exactly_the_routes_the_server_exposes() {
    let app = TestApp::spawn().await;
    let (tenant, _, user, password) = app.tenant_with_topic(1).await;

    let public: Value = app
        .data
        .get(format!("{}/openapi.json", app.public_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin: Value = app
        .http
        .get(format!("{}/openapi.json", app.admin_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(public["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(operations(&public), expected(&[PUBLIC]));
    assert_eq!(operations(&admin), expected(&[PUBLIC, ADMIN]));

    // Every documented public route exists on the public listener, and
    // every documented admin route on the admin listener.
    for (listener, routes, base) in [
        ("public", PUBLIC, &app.public_url),
        ("admin", ADMIN, &app.admin_url),
    ] {
        for (method, path) in routes {
            let url = format!("{base}{}", concrete(path, &tenant));
            let method: Method = method.to_uppercase().parse().unwrap();
            let response = app
                .data
                .request(method.clone(), &url)
                .basic_auth(&user, Some(&password))
                .send()
                .await
                .unwrap();
            let response = if listener == "admin" {
                app.data
                    .request(method.clone(), &url)
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await
                    .unwrap()
            } else {
                response
            };
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            assert!(
                status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("route_not_found"),
                "{method} {path} is documented but the {listener} listener does not serve it: {status} {body}"
            );
        }
    }

    // Every operation documents its errors with the shared error schema.
    for (_, item) in admin["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if method == "get" && operation["responses"].get("400").is_none() {
                continue; // health and metrics have no error bodies
            }
            if let Some(bad) = operation["responses"].get("400") {
                let schema = &bad["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(schema, "#/components/schemas/ErrorBody", "{method}: {bad}");
            }
        }
    }
}
