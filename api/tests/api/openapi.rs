//! Each listener's OpenAPI document against what the listener serves. The
//! documents are the route lists: nothing here repeats them.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sluice::config::Settings;
use sluice::routes::{self, PublicOptions};

use crate::helpers::{route_tree, test_figment, TestApp, ADMIN_TOKEN};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Routes that describe the API rather than belong to it.
const ABOUT_THE_API: [&str; 3] = ["/openapi.json", "/docs", "/docs/{_:.*}"];

/// (method, path) of every operation of a document.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    document["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .map(|method| (method.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn paths(document: &Value) -> BTreeSet<String> {
    document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// Every `$ref` of `value` names a schema of `document`.
fn assert_refs_resolve(document: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                let name = target.strip_prefix("#/components/schemas/").unwrap();
                assert!(
                    document["components"]["schemas"].get(name).is_some(),
                    "{target} is not in the document"
                );
            }
            map.values().for_each(|v| assert_refs_resolve(document, v));
        }
        Value::Array(items) => items.iter().for_each(|v| assert_refs_resolve(document, v)),
        _ => {}
    }
}

/// Test settings, for building the route lists without a server.
fn settings() -> Settings {
    test_figment("postgres://nobody@127.0.0.1:1/none", "127.0.0.1:1")
        .extract()
        .unwrap()
}

fn public_options(noop_routes: bool) -> PublicOptions {
    let settings = settings();
    PublicOptions {
        noop_routes,
        consume: settings.consume,
        produce: settings.produce,
    }
}

/// Fills path parameters with names that exist in the tenant.
fn concrete(path: &str, tenant: &str, topic: &str) -> String {
    path.replace("{topic}", topic)
        .replace("{tenant}", tenant)
        .replace("{user}", &format!("{tenant}.app"))
        .replace("{prefix}", &format!("{tenant}."))
        .replace("{group}", "app")
}

struct Listener<'a> {
    name: &'static str,
    base: &'a str,
    document: Value,
}

impl TestApp {
    async fn document(&self, base: &str) -> Value {
        let response = self
            .data
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

#[tokio::test]
async fn each_listener_documents_exactly_the_routes_it_serves() {
    let app = TestApp::spawn().await;
    let (tenant, topic, user, password) = app.tenant_with_topic(1).await;
    let listeners = [
        Listener {
            name: "public",
            base: &app.public_url,
            document: app.document(&app.public_url).await,
        },
        Listener {
            name: "admin",
            base: &app.admin_url,
            document: app.document(&app.admin_url).await,
        },
    ];

    for listener in &listeners {
        let document = &listener.document;
        assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
        assert_refs_resolve(document, document);
        let documented = operations(document);
        assert!(
            !documented.is_empty(),
            "{} documents nothing",
            listener.name
        );
        let other = listeners.iter().find(|l| l.name != listener.name).unwrap();
        for path in paths(document) {
            let url = format!("{}{}", listener.base, concrete(&path, &tenant, &topic));
            for method in METHODS {
                let request = app
                    .data
                    .request(method.to_uppercase().parse::<Method>().unwrap(), &url);
                let request = match listener.name {
                    "admin" => request.bearer_auth(ADMIN_TOKEN),
                    _ => request.basic_auth(&user, Some(&password)),
                };
                let response = request.send().await.unwrap();
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                let op = (method.to_owned(), path.clone());
                if documented.contains(&op) {
                    assert!(
                        status != StatusCode::METHOD_NOT_ALLOWED && !body.contains("route_not_found"),
                        "{method} {path} is documented but the {} listener does not serve it: {status} {body}",
                        listener.name
                    );
                } else {
                    assert!(
                        status == StatusCode::METHOD_NOT_ALLOWED && body.contains("method_not_allowed"),
                        "{method} {path} is served by the {} listener but not documented: {status} {body}",
                        listener.name
                    );
                }
            }
            // A path only the other listener documents is not served here.
            if !paths(&other.document).contains(&path) {
                let url = format!("{}{}", other.base, concrete(&path, &tenant, &topic));
                let response = app
                    .data
                    .get(&url)
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await
                    .unwrap();
                let body = response.text().await.unwrap();
                assert!(
                    body.contains("route_not_found"),
                    "{path} is served on the {} listener too: {body}",
                    other.name
                );
            }
        }
    }

    // Every admin operation needs the token, and documents its errors with
    // the shared error body.
    for (path, item) in listeners[1].document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            if !path.starts_with("/v1/") {
                continue;
            }
            assert_eq!(
                operation["security"],
                serde_json::json!([{ "admin_token": [] }]),
                "{method} {path}"
            );
            for status in ["400", "401", "404", "409", "503"] {
                let schema = &operation["responses"][status]["content"]["application/json"]
                    ["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
}

/// actix's own route tree against the documents: a route registered
/// without its `#[utoipa::path]` (say, with a plain `.route(…)`) fails
/// here even though no request would find it.
#[test]
fn the_route_tree_holds_the_documented_paths_and_nothing_else() {
    let (public, public_document) = documented(routes::public(
        actix_web::App::new(),
        &public_options(false),
    ));
    let about: BTreeSet<String> = ABOUT_THE_API.iter().map(|p| (*p).to_owned()).collect();
    assert_eq!(public, &public_document | &about);

    let (admin, admin_document) = documented(routes::admin(actix_web::App::new()));
    assert_eq!(admin, &admin_document | &about);

    // The benchmark routes exist only when switched on, and stay out of
    // the document.
    let (with_noop, document) =
        documented(routes::public(actix_web::App::new(), &public_options(true)));
    assert_eq!(document, public_document);
    let noop: BTreeSet<String> = with_noop.difference(&public).cloned().collect();
    assert_eq!(
        noop,
        BTreeSet::from(["/_noop".to_owned(), "/_noop/authenticated".to_owned()])
    );
}

/// What an app serves (from its route tree) and what it documents (from
/// the document it serves at `/openapi.json`).
fn documented<T, B>(app: actix_web::App<T>) -> (BTreeSet<String>, BTreeSet<String>)
where
    T: actix_web::dev::ServiceFactory<
            actix_web::dev::ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: actix_web::body::MessageBody + 'static,
{
    let (served, document) = route_tree::served_with_document(app);
    (served, paths(&document))
}

#[tokio::test]
async fn the_documents_carry_the_constraints_the_server_enforces() {
    let app = TestApp::spawn_with(|f| {
        f.merge(("consume.max_limit", 50))
            .merge(("consume.max_wait_ms", 2_000))
            .merge(("produce.max_batch_messages", 7))
    })
    .await;
    let public = app.document(&app.public_url).await;
    let consume = &public["paths"]["/topic/{topic}"]["get"]["parameters"];
    let param = |name: &str| {
        consume
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no {name} parameter"))
            .clone()
    };
    assert_eq!(param("limit")["schema"]["minimum"], 1);
    assert_eq!(param("limit")["schema"]["maximum"], 50);
    assert_eq!(param("wait")["schema"]["minimum"], 0);
    assert_eq!(param("wait")["schema"]["maximum"], 2_000);
    assert_eq!(
        param("topic")["schema"]["$ref"],
        "#/components/schemas/TopicName"
    );
    assert_eq!(
        param("group")["schema"]["$ref"],
        "#/components/schemas/GroupName"
    );

    let schemas = &public["components"]["schemas"];
    assert_eq!(
        schemas["Format"]["enum"],
        serde_json::json!(["json", "raw"])
    );
    assert_eq!(
        schemas["Encoding"]["enum"],
        serde_json::json!(["none", "base64"])
    );
    let topic = &schemas["TopicName"];
    assert_eq!(topic["maxLength"], 249);
    let pattern = regex::Regex::new(topic["pattern"].as_str().unwrap()).unwrap();
    assert!(pattern.is_match("acme.orders"));
    assert!(!pattern.is_match("acme"));
    assert!(!pattern.is_match("Acme.orders"));

    // And the server holds to them: the bounds are accepted, one past is not.
    let (_, topic, user, password) = app.tenant_with_topic(1).await;
    for (query, status) in [
        ("limit=50&wait=0", StatusCode::OK),
        ("limit=51", StatusCode::BAD_REQUEST),
        ("limit=0", StatusCode::BAD_REQUEST),
        ("wait=2001", StatusCode::BAD_REQUEST),
        ("format=raw", StatusCode::BAD_REQUEST), // not a consume parameter
    ] {
        let response = app.consume(&user, &password, &topic, query).await;
        assert_eq!(response.status(), status, "{query}");
    }
    let batch =
        |n: usize| serde_json::to_string(&vec![serde_json::json!({ "Value": "v" }); n]).unwrap();
    for (n, status) in [
        (7, StatusCode::OK),
        (8, StatusCode::PAYLOAD_TOO_LARGE),
        (0, StatusCode::BAD_REQUEST),
    ] {
        let response = app.produce(&user, &password, &topic, &batch(n)).await;
        assert_eq!(response.status(), status, "{n} messages");
    }
}

#[tokio::test]
async fn docs_are_served_on_both_listeners_from_their_own_document() {
    let app = TestApp::spawn().await;
    for base in [&app.public_url, &app.admin_url] {
        let page = app.data.get(format!("{base}/docs")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{base}/docs");
        assert_eq!(
            page.url().path(),
            "/docs/",
            "{base}/docs redirects to /docs/"
        );
        let html = page.text().await.unwrap();
        assert!(html.contains("swagger-ui"), "{html}");

        // The page's script points at this listener's own document.
        let init = app
            .data
            .get(format!("{base}/docs/swagger-initializer.js"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(init.contains("/openapi.json"), "{init}");
        let bundle = app
            .data
            .get(format!("{base}/docs/swagger-ui-bundle.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            bundle.status(),
            StatusCode::OK,
            "the assets are compiled in"
        );
    }
}
