//! Self-service topics (OVH's admin role): a grant's `manage` right lets
//! its user create and delete topics under it on the data plane, within
//! the tenant's `max_topics` and `max_partitions`, audited with the user as
//! actor; `GET /topics` lists what a user's grants cover. Nothing reaches
//! past the grant, let alone into another tenant.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_error, unique_tenant, TestApp};

/// A fresh tenant (with `quota`) and its user `<tenant>.app` holding
/// `grants`; returns (tenant, user, password).
async fn tenant_with_user(app: &TestApp, quota: Value, grants: Value) -> (String, String, String) {
    let tenant = unique_tenant();
    let created = app
        .post_tenant(&json!({ "name": tenant, "quota": quota }))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let grants = Value::from(
        grants
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let mut g = g.clone();
                let prefix = format!("{tenant}.{}", g["prefix"].as_str().unwrap());
                g["prefix"] = Value::from(prefix);
                g
            })
            .collect::<Vec<_>>(),
    );
    let user = format!("{tenant}.app");
    let password = app.create_user(&tenant, &user, grants).await;
    (tenant, user, password)
}

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    let actual = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(actual, status, "{text}");
    serde_json::from_str(&text).expect("a JSON body")
}

/// The names listed by `GET /topics`.
async fn own_topic_names(app: &TestApp, user: &str, password: &str) -> Vec<String> {
    let listed = json_of(app.get_own_topics(user, password).await, StatusCode::OK).await;
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The names of the tenant's topics, as the operator sees them.
async fn admin_topic_names(app: &TestApp, tenant: &str) -> Vec<String> {
    let listed = json_of(app.get_topics(tenant).await, StatusCode::OK).await;
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_user_with_manage_creates_lists_and_deletes_its_topics_and_each_change_is_audited_as_the_user(
) {
    let app = TestApp::spawn().await;
    let (tenant, user, password) = tenant_with_user(
        &app,
        json!({}),
        json!([{ "prefix": "self", "read": true, "write": true, "manage": true }]),
    )
    .await;
    let topic = format!("{tenant}.self.orders");

    let created = app
        .post_own_topic(&user, &password, &json!({ "name": topic, "partitions": 3 }))
        .await;
    let created = json_of(created, StatusCode::CREATED).await;
    assert_eq!(created["name"], topic.as_str());
    assert_eq!(created["partitions"], 3);

    // A real Kafka topic: the user produces to it over TLS.
    let produced = app
        .produce(&user, &password, &topic, r#"[{"Value":"self-served"}]"#)
        .await;
    assert_eq!(produced.status(), StatusCode::OK);
    let listed = json_of(app.get_own_topics(&user, &password).await, StatusCode::OK).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["name"], topic.as_str());
    assert_eq!(listed[0]["partitions"], 3);
    assert_eq!(listed[0]["partitions_detail"].as_array().unwrap().len(), 3);

    let deleted = app.delete_own_topic(&user, &password, &topic).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(own_topic_names(&app, &user, &password).await.is_empty());
    assert!(admin_topic_names(&app, &tenant).await.is_empty());
    assert_error(
        app.delete_own_topic(&user, &password, &topic).await,
        StatusCode::NOT_FOUND,
        "topic_not_found",
    )
    .await;

    let audit = json_of(
        app.get_audit(&format!("tenant={tenant}&target={topic}"))
            .await,
        StatusCode::OK,
    )
    .await;
    let rows: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["actor"].as_str().unwrap()))
        .collect();
    let actor = format!("user:{user}");
    assert_eq!(
        rows,
        [
            ("topic.delete", actor.as_str()),
            ("topic.create", actor.as_str())
        ]
    );
    assert_eq!(audit[1]["details"]["partitions"], 3);
}

#[tokio::test]
async fn manage_outside_the_grant_is_forbidden_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, user, password) = tenant_with_user(
        &app,
        json!({}),
        json!([
            { "prefix": "self", "manage": true },
            { "prefix": "", "read": true, "write": true }
        ]),
    )
    .await;
    let operators = format!("{tenant}.orders");
    app.create_topic(&tenant, &operators, 1).await;

    // Read and write on the whole tenant give no manage right.
    for name in [
        operators.clone(),
        format!("{tenant}.selfish"),
        format!("{tenant}.other"),
    ] {
        assert_error(
            app.post_own_topic(&user, &password, &json!({ "name": name }))
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert_error(
        app.delete_own_topic(&user, &password, &operators).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_eq!(
        admin_topic_names(&app, &tenant).await,
        std::slice::from_ref(&operators)
    );
    // Every topic a grant covers is listed, whatever the right.
    assert_eq!(own_topic_names(&app, &user, &password).await, [operators]);
}

#[tokio::test]
async fn a_user_without_manage_lists_only_the_topics_its_grants_cover() {
    let app = TestApp::spawn().await;
    let (tenant, user, password) = tenant_with_user(
        &app,
        json!({}),
        json!([{ "prefix": "orders", "read": true }]),
    )
    .await;
    for (name, partitions) in [
        ("orders", 2),
        ("orders.eu", 1),
        ("audit", 1),
        ("orders2", 1),
    ] {
        app.create_topic(&tenant, &format!("{tenant}.{name}"), partitions)
            .await;
    }
    let listed = json_of(app.get_own_topics(&user, &password).await, StatusCode::OK).await;
    let seen: Vec<(&str, i64)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap(),
                t["partitions"].as_i64().unwrap(),
            )
        })
        .collect();
    let (orders, eu) = (format!("{tenant}.orders"), format!("{tenant}.orders.eu"));
    assert_eq!(seen, [(orders.as_str(), 2), (eu.as_str(), 1)]);
    assert_error(
        app.post_own_topic(
            &user,
            &password,
            &json!({ "name": format!("{tenant}.orders.new") }),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn self_service_topics_stay_within_max_topics_and_max_partitions() {
    let app = TestApp::spawn().await;
    let (tenant, user, password) = tenant_with_user(
        &app,
        json!({ "max_topics": 2, "max_partitions": 4 }),
        json!([{ "prefix": "", "manage": true }]),
    )
    .await;
    let body = |name: &str, partitions: u32| json!({ "name": format!("{tenant}.{name}"), "partitions": partitions });

    assert_error(
        app.post_own_topic(&user, &password, &body("wide", 5)).await,
        StatusCode::CONFLICT,
        "quota_exceeded",
    )
    .await;
    json_of(
        app.post_own_topic(&user, &password, &body("a", 3)).await,
        StatusCode::CREATED,
    )
    .await;
    assert_error(
        app.post_own_topic(&user, &password, &body("a", 1)).await,
        StatusCode::CONFLICT,
        "topic_exists",
    )
    .await;
    assert_error(
        app.post_own_topic(&user, &password, &body("b", 2)).await,
        StatusCode::CONFLICT,
        "quota_exceeded",
    )
    .await;
    json_of(
        app.post_own_topic(&user, &password, &body("b", 1)).await,
        StatusCode::CREATED,
    )
    .await;
    assert_error(
        app.post_own_topic(&user, &password, &body("c", 1)).await,
        StatusCode::CONFLICT,
        "quota_exceeded",
    )
    .await;
    let mut names = admin_topic_names(&app, &tenant).await;
    names.sort();
    assert_eq!(names, [format!("{tenant}.a"), format!("{tenant}.b")]);
}

#[tokio::test]
async fn bad_names_and_partition_counts_are_bad_requests() {
    let app = TestApp::spawn().await;
    let (tenant, user, password) =
        tenant_with_user(&app, json!({}), json!([{ "prefix": "", "manage": true }])).await;
    for (body, code) in [
        (
            json!({ "name": format!("{tenant}.bad name") }),
            "invalid_topic",
        ),
        (
            json!({ "name": format!("{tenant}.x"), "partitions": 0 }),
            "invalid_partitions",
        ),
        (
            json!({ "name": format!("{tenant}.x"), "partitions": 1001 }),
            "invalid_partitions",
        ),
        (
            json!({ "name": format!("{tenant}.x"), "partitions": -1 }),
            "malformed_json",
        ),
        (
            json!({ "name": format!("{tenant}.x"), "replication_factor": 3 }),
            "malformed_json",
        ),
        (json!({ "partitions": 1 }), "malformed_json"),
    ] {
        assert_error(
            app.post_own_topic(&user, &password, &body).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
    }
    assert!(admin_topic_names(&app, &tenant).await.is_empty());
}

#[tokio::test]
async fn a_manager_cannot_create_delete_or_list_another_tenants_topics() {
    let app = TestApp::spawn().await;
    let (attacker, user, password) = tenant_with_user(
        &app,
        json!({}),
        json!([{ "prefix": "", "read": true, "write": true, "manage": true }]),
    )
    .await;
    let victim = unique_tenant();
    app.create_tenant(&victim).await;
    let theirs = format!("{victim}.orders");
    app.create_topic(&victim, &theirs, 1).await;
    // A tenant whose name extends the attacker's: a prefix match on the
    // bare name would cover it.
    let lookalike = format!("{attacker}2");
    app.create_tenant(&lookalike).await;
    let lookalike_topic = format!("{lookalike}.orders");
    app.create_topic(&lookalike, &lookalike_topic, 1).await;

    for topic in [&theirs, &lookalike_topic] {
        assert_error(
            app.delete_own_topic(&user, &password, topic).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    for name in [
        format!("{victim}.new"),
        format!("{lookalike}.new"),
        theirs.clone(),
    ] {
        assert_error(
            app.post_own_topic(&user, &password, &json!({ "name": name }))
                .await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert!(own_topic_names(&app, &user, &password).await.is_empty());
    assert_eq!(
        admin_topic_names(&app, &victim).await,
        std::slice::from_ref(&theirs)
    );
    assert_eq!(admin_topic_names(&app, &lookalike).await, [lookalike_topic]);
    // The victim's topic still takes messages: it was never touched.
    let (victim_user, victim_password) = app.rw_user(&victim).await;
    let produced = app
        .produce(
            &victim_user,
            &victim_password,
            &theirs,
            r#"[{"Value":"still here"}]"#,
        )
        .await;
    assert_eq!(produced.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_admin_api_and_the_cli_give_and_show_the_manage_right() {
    let app = TestApp::spawn().await;
    let tenant = unique_tenant();
    app.create_tenant(&tenant).await;
    let user = format!("{tenant}.app");
    app.create_user(&tenant, &user, json!([])).await;

    let added = app
        .post_grant(
            &tenant,
            &user,
            &json!({ "prefix": format!("{tenant}.self"), "manage": true }),
        )
        .await;
    let added = json_of(added, StatusCode::CREATED).await;
    assert_eq!(
        added,
        json!({ "prefix": format!("{tenant}.self"), "read": false, "write": false, "manage": true })
    );
    assert_error(
        app.post_grant(
            &tenant,
            &user,
            &json!({ "prefix": format!("{tenant}.none") }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    let cli = app
        .cli(&[
            "grant",
            "add",
            &user,
            &format!("{tenant}.ops"),
            "--read",
            "--manage",
        ])
        .await;
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    let other = format!("{tenant}.cli");
    let cli = app
        .cli(&[
            "user",
            "create",
            &other,
            "--grant",
            &format!("{tenant}.=rwm"),
        ])
        .await;
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );

    let grants = json_of(app.get_grants(&tenant, &user).await, StatusCode::OK).await;
    let manage: Vec<(&str, bool, bool)> = grants
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["prefix"].as_str().unwrap(),
                g["read"].as_bool().unwrap(),
                g["manage"].as_bool().unwrap(),
            )
        })
        .collect();
    let (ops, own) = (format!("{tenant}.ops"), format!("{tenant}.self"));
    assert_eq!(
        manage,
        [(ops.as_str(), true, true), (own.as_str(), false, true)]
    );
    let shown = app.cli(&["user", "show", &other]).await;
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains(&format!("{tenant}.=rwm")), "{shown}");
}
