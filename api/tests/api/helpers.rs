//! `TestApp`: one real server per test, with its own database, and one
//! helper per admin endpoint.

use std::process::Output;
use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use sluice::config::Settings;
use sluice::startup::Application;
use sqlx::{Connection, PgConnection, PgPool};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// Where tests create their databases; ops/test sets it.
fn maintenance_url() -> String {
    std::env::var("SLUICE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://sluice:sluice@127.0.0.1:5432/sluice".to_owned())
}

fn database_url(name: &str) -> String {
    let base = maintenance_url();
    let (server, _) = base.rsplit_once('/').expect("a database URL has a path");
    format!("{server}/{name}")
}

pub struct TestApp {
    pub admin_url: String,
    pub http: reqwest::Client,
    pub db: PgPool,
}

impl TestApp {
    /// A fresh database, migrated, and a server on port 0.
    pub async fn spawn() -> TestApp {
        let name = format!("sluice_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(&maintenance_url())
            .await
            .expect("Postgres is reachable (run ops/postgres)");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        let database_url = database_url(&name);
        let db = PgPool::connect(&database_url)
            .await
            .expect("connect to the test database");
        tenancy::store::MIGRATOR.run(&db).await.expect("migrate");

        let settings = test_settings(&database_url);
        let app = Application::build(settings)
            .await
            .expect("the server builds");
        let admin_url = format!("http://{}", app.admin_addr());
        tokio::spawn(app.run_until_stopped());
        TestApp {
            admin_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            db,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.admin_url, path)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Response {
        let mut request = self
            .http
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("the admin API answers")
    }

    pub async fn post_tenant(&self, body: &Value) -> Response {
        self.send(reqwest::Method::POST, "/v1/tenants", Some(body))
            .await
    }

    pub async fn get_tenants(&self) -> Response {
        self.send(reqwest::Method::GET, "/v1/tenants", None).await
    }

    pub async fn get_tenant(&self, tenant: &str) -> Response {
        self.send(reqwest::Method::GET, &format!("/v1/tenants/{tenant}"), None)
            .await
    }

    pub async fn patch_tenant(&self, tenant: &str, body: &Value) -> Response {
        self.send(
            reqwest::Method::PATCH,
            &format!("/v1/tenants/{tenant}"),
            Some(body),
        )
        .await
    }

    pub async fn delete_tenant(&self, tenant: &str, force: bool) -> Response {
        let path = format!("/v1/tenants/{tenant}?force={force}");
        self.send(reqwest::Method::DELETE, &path, None).await
    }

    pub async fn post_user(&self, tenant: &str, body: &Value) -> Response {
        self.send(
            reqwest::Method::POST,
            &format!("/v1/tenants/{tenant}/users"),
            Some(body),
        )
        .await
    }

    pub async fn get_users(&self, tenant: &str) -> Response {
        self.send(
            reqwest::Method::GET,
            &format!("/v1/tenants/{tenant}/users"),
            None,
        )
        .await
    }

    pub async fn get_user(&self, tenant: &str, user: &str) -> Response {
        self.send(
            reqwest::Method::GET,
            &format!("/v1/tenants/{tenant}/users/{user}"),
            None,
        )
        .await
    }

    pub async fn patch_user(&self, tenant: &str, user: &str, body: &Value) -> Response {
        let path = format!("/v1/tenants/{tenant}/users/{user}");
        self.send(reqwest::Method::PATCH, &path, Some(body)).await
    }

    pub async fn post_password(&self, tenant: &str, user: &str) -> Response {
        let path = format!("/v1/tenants/{tenant}/users/{user}/password");
        self.send(reqwest::Method::POST, &path, None).await
    }

    pub async fn delete_user(&self, tenant: &str, user: &str) -> Response {
        let path = format!("/v1/tenants/{tenant}/users/{user}");
        self.send(reqwest::Method::DELETE, &path, None).await
    }

    pub async fn post_grant(&self, tenant: &str, user: &str, body: &Value) -> Response {
        let path = format!("/v1/tenants/{tenant}/users/{user}/grants");
        self.send(reqwest::Method::POST, &path, Some(body)).await
    }

    pub async fn get_grants(&self, tenant: &str, user: &str) -> Response {
        let path = format!("/v1/tenants/{tenant}/users/{user}/grants");
        self.send(reqwest::Method::GET, &path, None).await
    }

    pub async fn delete_grant(&self, tenant: &str, user: &str, prefix: &str) -> Response {
        let path = format!("/v1/tenants/{tenant}/users/{user}/grants/{prefix}");
        self.send(reqwest::Method::DELETE, &path, None).await
    }

    pub async fn get_audit(&self, query: &str) -> Response {
        self.send(reqwest::Method::GET, &format!("/v1/audit?{query}"), None)
            .await
    }

    pub async fn get_readyz(&self) -> Response {
        self.http
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("readyz answers")
    }

    /// Creates a tenant with default quotas and asserts it worked.
    pub async fn create_tenant(&self, name: &str) -> Value {
        let response = self.post_tenant(&json!({ "name": name })).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.expect("tenant JSON")
    }

    /// Creates a user and returns its password.
    pub async fn create_user(&self, tenant: &str, user: &str, grants: Value) -> String {
        let response = self
            .post_user(tenant, &json!({ "name": user, "grants": grants }))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("credentials JSON");
        body["password"].as_str().expect("a password").to_owned()
    }

    /// The stored password hash, read straight from the database.
    pub async fn stored_hash(&self, user: &str) -> String {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE name = $1")
            .bind(user)
            .fetch_one(&self.db)
            .await
            .expect("the user row exists")
    }

    /// Runs `sluice admin …` (the real binary) against this server.
    pub async fn cli(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("admin")
            .args(["--url", &self.admin_url, "--token", ADMIN_TOKEN])
            .args(args)
            .env_remove("SLUICE_CONFIG")
            .output()
            .await
            .expect("the sluice binary runs")
    }
}

/// Settings for a test server: its own database, port 0, the test token.
pub fn test_settings(database_url: &str) -> Settings {
    let figment = sluice::config::figment(None)
        .merge(("database.url", database_url))
        .merge(("admin.listen", "127.0.0.1:0"))
        .merge(("admin.token", ADMIN_TOKEN));
    let settings: Settings = figment.extract().expect("test settings are valid");
    settings.validate().expect("test settings validate");
    settings
}

/// Asserts an error response: status, JSON body, stable code.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "error is not JSON: {content_type}"
    );
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "unexpected error code in {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    body
}
