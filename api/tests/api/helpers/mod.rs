//! `TestApp`: one real server per test (both listeners, TLS on the public
//! one), with its own database, the shared test broker, and one helper per
//! endpoint.

pub mod broker;
pub mod kafka;
pub mod process;
pub mod proxy;
pub mod route_tree;
pub mod streams;
pub mod tls;
pub mod victim;

use std::process::Output;
use std::time::Duration;

use figment::providers::Serialized;
use figment::Figment;
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
    /// `https://localhost:<port>`: the data plane, over TLS.
    pub public_url: String,
    /// Plain client for the admin API.
    pub http: reqwest::Client,
    /// TLS client that trusts the test CA, for the data plane.
    pub data: reqwest::Client,
    pub db: PgPool,
    pub database_url: String,
    pub bootstrap: String,
}

/// A tenant name no other test uses: topics live in the one shared broker.
pub fn unique_tenant() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

impl TestApp {
    /// A fresh database, migrated, and a server on port 0.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|f| f).await
    }

    /// Like [`TestApp::spawn`], with configuration changes.
    pub async fn spawn_with(customize: impl FnOnce(Figment) -> Figment) -> TestApp {
        let database_url = Self::fresh_database().await;
        let bootstrap = broker::bootstrap();
        Self::start(database_url, bootstrap, customize).await
    }

    /// A second node of the same cluster: same database, same broker.
    pub async fn spawn_node(other: &TestApp) -> TestApp {
        Self::start(other.database_url.clone(), other.bootstrap.clone(), |f| f).await
    }

    /// A second node of the same cluster, with configuration changes.
    pub async fn start_node_with(
        other: &TestApp,
        customize: impl FnOnce(Figment) -> Figment,
    ) -> TestApp {
        Self::start(
            other.database_url.clone(),
            other.bootstrap.clone(),
            customize,
        )
        .await
    }

    async fn start(
        database_url: String,
        bootstrap: String,
        customize: impl FnOnce(Figment) -> Figment,
    ) -> TestApp {
        let figment = customize(test_figment(&database_url, &bootstrap));
        let settings: Settings = figment.extract().expect("test settings are valid");
        settings.validate().expect("test settings validate");
        let app = Application::build(settings)
            .await
            .expect("the server builds");
        let admin_url = format!("http://{}", app.admin_addr());
        let public_url = format!("https://localhost:{}", app.public_addr().port());
        tokio::spawn(app.run_until_stopped());
        let db = PgPool::connect(&database_url)
            .await
            .expect("connect to the test database");
        TestApp {
            admin_url,
            public_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            data: data_client(),
            db,
            database_url,
            bootstrap,
        }
    }

    /// Creates and migrates a database of its own; returns its URL.
    pub async fn fresh_database() -> String {
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
        db.close().await;
        database_url
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

    /// `GET /metrics` on the admin listener, as text.
    pub async fn get_metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics are text")
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

    pub async fn post_topic(&self, tenant: &str, body: &Value) -> Response {
        self.send(
            reqwest::Method::POST,
            &format!("/v1/tenants/{tenant}/topics"),
            Some(body),
        )
        .await
    }

    pub async fn get_topics(&self, tenant: &str) -> Response {
        self.send(
            reqwest::Method::GET,
            &format!("/v1/tenants/{tenant}/topics"),
            None,
        )
        .await
    }

    pub async fn get_topic(&self, tenant: &str, topic: &str) -> Response {
        self.send(
            reqwest::Method::GET,
            &format!("/v1/tenants/{tenant}/topics/{topic}"),
            None,
        )
        .await
    }

    pub async fn delete_topic(&self, tenant: &str, topic: &str) -> Response {
        self.send(
            reqwest::Method::DELETE,
            &format!("/v1/tenants/{tenant}/topics/{topic}"),
            None,
        )
        .await
    }

    /// `POST /topic/{topic}` with a JSON body, over TLS.
    pub async fn produce(&self, user: &str, password: &str, topic: &str, body: &str) -> Response {
        self.produce_with(user, password, topic, "", body.as_bytes().to_vec())
            .await
    }

    /// `POST /topic/{topic}?{query}` with any body, over TLS.
    pub async fn produce_with(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        query: &str,
        body: Vec<u8>,
    ) -> Response {
        let url = if query.is_empty() {
            format!("{}/topic/{topic}", self.public_url)
        } else {
            format!("{}/topic/{topic}?{query}", self.public_url)
        };
        self.data
            .post(url)
            .basic_auth(user, Some(password))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("the data plane answers")
    }

    /// `POST /topic/{topic}` with a JSON body and `Idempotency-Key: key`.
    pub async fn produce_with_key(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        key: &str,
        body: &str,
    ) -> Response {
        self.data
            .post(format!("{}/topic/{topic}", self.public_url))
            .basic_auth(user, Some(password))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(body.to_owned())
            .send()
            .await
            .expect("the data plane answers")
    }

    /// Runs the `curl` binary with the test CA and `args`: real users' own
    /// client, for what reqwest hides (HTTP versions, connection reuse).
    pub async fn curl(&self, args: &[&str]) -> Output {
        let out = tokio::process::Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&tls::certs().ca)
            .args(args)
            .output()
            .await
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `GET /topic/{topic}?{query}`, over TLS.
    pub async fn consume(&self, user: &str, password: &str, topic: &str, query: &str) -> Response {
        self.data
            .get(format!("{}/topic/{topic}?{query}", self.public_url))
            .basic_auth(user, Some(password))
            .send()
            .await
            .expect("the data plane answers")
    }

    /// Consumes and returns the messages, asserting a 200.
    pub async fn consume_ok(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        query: &str,
    ) -> Vec<Value> {
        let response = self.consume(user, password, topic, query).await;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, StatusCode::OK, "{text}");
        serde_json::from_str(&text).expect("a JSON array of messages")
    }

    pub async fn get_groups(&self, tenant: &str) -> Response {
        self.send(
            reqwest::Method::GET,
            &format!("/v1/tenants/{tenant}/groups"),
            None,
        )
        .await
    }

    pub async fn delete_group(&self, tenant: &str, group: &str) -> Response {
        let path = format!("/v1/tenants/{tenant}/groups/{group}");
        self.send(reqwest::Method::DELETE, &path, None).await
    }

    pub async fn post_group_reset(&self, tenant: &str, group: &str, body: &Value) -> Response {
        let path = format!("/v1/tenants/{tenant}/groups/{group}/reset");
        self.send(reqwest::Method::POST, &path, Some(body)).await
    }

    /// Produces `count` messages valued `0..count` as strings, in batches.
    pub async fn produce_numbered(&self, user: &str, password: &str, topic: &str, count: usize) {
        for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
            let body: Vec<Value> = chunk
                .iter()
                .map(|i| json!({ "Value": i.to_string() }))
                .collect();
            let response = self
                .produce(user, password, topic, &Value::from(body).to_string())
                .await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    }

    /// Creates a topic through the admin API and asserts it worked.
    pub async fn create_topic(&self, tenant: &str, topic: &str, partitions: u32) {
        let response = self
            .post_topic(tenant, &json!({ "name": topic, "partitions": partitions }))
            .await;
        let status = response.status();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    /// A user `<tenant>.app` with read and write on the whole tenant;
    /// returns (user, password).
    pub async fn rw_user(&self, tenant: &str) -> (String, String) {
        let user = format!("{tenant}.app");
        let grants = json!([{ "prefix": format!("{tenant}."), "read": true, "write": true }]);
        let password = self.create_user(tenant, &user, grants).await;
        (user, password)
    }

    /// A fresh tenant with the given quota and a read-write user on all of
    /// it; returns (tenant, user, password).
    pub async fn tenant_with_quota(&self, quota: Value) -> (String, String, String) {
        let tenant = unique_tenant();
        let created = self
            .post_tenant(&json!({ "name": tenant, "quota": quota }))
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let (user, password) = self.rw_user(&tenant).await;
        (tenant, user, password)
    }

    /// A fresh tenant with a read-write user on all of it and one topic;
    /// returns (tenant, topic, user, password).
    pub async fn tenant_with_topic(&self, partitions: u32) -> (String, String, String, String) {
        let tenant = unique_tenant();
        self.create_tenant(&tenant).await;
        let (user, password) = self.rw_user(&tenant).await;
        let topic = format!("{tenant}.orders");
        self.create_topic(&tenant, &topic, partitions).await;
        (tenant, topic, user, password)
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

    /// `POST /topic/{topic}/{action}` with a JSON body, over TLS: the
    /// receipt endpoints of manual-ack mode.
    async fn post_receipt(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        action: &str,
        body: &Value,
    ) -> Response {
        self.data
            .post(format!("{}/topic/{topic}/{action}", self.public_url))
            .basic_auth(user, Some(password))
            .json(body)
            .send()
            .await
            .expect("the data plane answers")
    }

    /// `POST /topic/{topic}/ack` with `body` (`{"receipt": …}`, optionally
    /// `"offsets"`).
    pub async fn post_ack(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        body: &Value,
    ) -> Response {
        self.post_receipt(user, password, topic, "ack", body).await
    }

    /// `POST /topic/{topic}/nack` with `body` (`{"receipt": …}`, optionally
    /// `"offsets"` and `"delay"`).
    pub async fn post_nack(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        body: &Value,
    ) -> Response {
        self.post_receipt(user, password, topic, "nack", body).await
    }

    /// `POST /topic/{topic}/extend` with `body` (`{"receipt": …,
    /// "visibility": MS}`).
    pub async fn post_extend(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        body: &Value,
    ) -> Response {
        self.post_receipt(user, password, topic, "extend", body)
            .await
    }

    /// `{method} /topic/{topic}/groups{rest}` on the data plane, over TLS.
    async fn topic_groups(
        &self,
        method: reqwest::Method,
        (user, password): (&str, &str),
        topic: &str,
        rest: &str,
        body: Option<&Value>,
    ) -> Response {
        let url = format!("{}/topic/{topic}/groups{rest}", self.public_url);
        let mut request = self
            .data
            .request(method, url)
            .basic_auth(user, Some(password));
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("the data plane answers")
    }

    /// `GET /topic/{topic}/groups`: the tenant's groups on the topic.
    pub async fn get_topic_groups(&self, user: &str, password: &str, topic: &str) -> Response {
        self.topic_groups(reqwest::Method::GET, (user, password), topic, "", None)
            .await
    }

    /// `GET /topic/{topic}/groups/{group}`.
    pub async fn get_topic_group(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        group: &str,
    ) -> Response {
        let rest = format!("/{group}");
        self.topic_groups(reqwest::Method::GET, (user, password), topic, &rest, None)
            .await
    }

    /// `POST /topic/{topic}/groups/{group}/seek`.
    pub async fn post_seek(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        group: &str,
        body: &Value,
    ) -> Response {
        let rest = format!("/{group}/seek");
        self.topic_groups(
            reqwest::Method::POST,
            (user, password),
            topic,
            &rest,
            Some(body),
        )
        .await
    }

    /// `PUT /topic/{topic}/groups/{group}`: the dead-letter policy.
    pub async fn put_group(
        &self,
        user: &str,
        password: &str,
        topic: &str,
        group: &str,
        body: &Value,
    ) -> Response {
        let rest = format!("/{group}");
        self.topic_groups(
            reqwest::Method::PUT,
            (user, password),
            topic,
            &rest,
            Some(body),
        )
        .await
    }
}

impl TestApp {
    /// `{method} /topics{rest}` on the data plane, over TLS: the
    /// self-service topic routes.
    async fn self_service_topics(
        &self,
        method: reqwest::Method,
        (user, password): (&str, &str),
        rest: &str,
        body: Option<&Value>,
    ) -> Response {
        let url = format!("{}/topics{rest}", self.public_url);
        let mut request = self
            .data
            .request(method, url)
            .basic_auth(user, Some(password));
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("the data plane answers")
    }

    /// `GET /topics`: the topics the user's grants cover.
    pub async fn get_own_topics(&self, user: &str, password: &str) -> Response {
        self.self_service_topics(reqwest::Method::GET, (user, password), "", None)
            .await
    }

    /// `POST /topics` with `body` (`{"name": …, "partitions": …}`), under a
    /// `manage` grant.
    pub async fn post_own_topic(&self, user: &str, password: &str, body: &Value) -> Response {
        self.self_service_topics(reqwest::Method::POST, (user, password), "", Some(body))
            .await
    }

    /// `DELETE /topics/{topic}`, under a `manage` grant.
    pub async fn delete_own_topic(&self, user: &str, password: &str, topic: &str) -> Response {
        let rest = format!("/{topic}");
        self.self_service_topics(reqwest::Method::DELETE, (user, password), &rest, None)
            .await
    }
}

/// Configuration of a test node: its database, ports 0, the test token,
/// TLS with the test CA, the shared broker with tansu's settings.
pub fn test_figment(database_url: &str, bootstrap: &str) -> Figment {
    let certs = tls::certs();
    sluice::config::figment(None)
        .merge(("database.url", database_url))
        .merge(("admin.listen", "127.0.0.1:0"))
        .merge(("admin.token", ADMIN_TOKEN))
        .merge(("listen", "127.0.0.1:0"))
        .merge(("tls.enabled", true))
        .merge(("tls.cert", certs.cert.display().to_string()))
        .merge(("tls.key", certs.key.display().to_string()))
        .merge(("kafka.bootstrap_servers", bootstrap))
        .merge(("kafka.replication_factor", 1))
        .merge(Serialized::default(
            "kafka.properties",
            json!({ "batch.num.messages": "1" }),
        ))
}

/// A reqwest client that trusts only the test CA.
pub fn data_client() -> reqwest::Client {
    let ca =
        reqwest::Certificate::from_pem(tls::certs().ca_pem.as_bytes()).expect("the test CA parses");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("TLS client")
}

/// [`data_client`] whose connections come from `local`, a loopback
/// address such as 127.0.0.2: how tests stand for another client network.
/// `localhost` is pinned to 127.0.0.1, where the test servers listen.
pub fn data_client_from(local: std::net::IpAddr) -> reqwest::Client {
    let ca =
        reqwest::Certificate::from_pem(tls::certs().ca_pem.as_bytes()).expect("the test CA parses");
    reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .local_address(local)
        .resolve("localhost", std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("TLS client")
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
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("every response carries X-Request-Id")
        .to_owned();
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "unexpected error code in {body}");
    assert_eq!(
        body["request_id"],
        request_id.as_str(),
        "the error body names the request"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message in {body}"
    );
    body
}

/// The value of the series of `name` whose labels include all of `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}
