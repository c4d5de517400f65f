//! Human-readable tables for the CLI, and the `--json` pass-through.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::Table;
use serde_json::Value;

use super::{CliError, Output};

/// How to draw a response.
#[derive(Debug)]
pub enum Kind {
    Tenant,
    Tenants,
    User,
    Users,
    Credentials,
    Grant,
    Grants,
    Topic,
    Topics,
    Groups,
    Reset,
    Audit,
    /// A command with no body to show, only a confirmation.
    Done(String),
}

fn text(value: &Value, key: &str) -> String {
    match value.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_BORDERS_ONLY)
        .set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    table
}

fn items(body: &Value) -> Vec<Value> {
    match body {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn grants_text(user: &Value) -> String {
    items(user.get("grants").unwrap_or(&Value::Null))
        .iter()
        .map(grant_text)
        .collect::<Vec<_>>()
        .join(", ")
}

fn grant_text(grant: &Value) -> String {
    fn flag(grant: &Value, key: &str, c: &'static str) -> &'static str {
        if grant.get(key) == Some(&Value::Bool(true)) {
            c
        } else {
            ""
        }
    }
    format!(
        "{}={}{}{}",
        text(grant, "prefix"),
        flag(grant, "read", "r"),
        flag(grant, "write", "w"),
        flag(grant, "manage", "m")
    )
}

/// Prints a successful result to stdout.
pub fn print(output: &Output, json: bool) {
    if json {
        if !output.body.is_null() {
            println!(
                "{}",
                serde_json::to_string_pretty(&output.body).unwrap_or_default()
            );
        }
        return;
    }
    let body = &output.body;
    let quota = |t: &Value, key: &str| text(t.get("quota").unwrap_or(&Value::Null), key);
    let rendered = match &output.kind {
        Kind::Done(message) => message.clone(),
        Kind::Tenant | Kind::Tenants => table(
            &[
                "TENANT",
                "DISABLED",
                "USERS",
                "TOPICS",
                "GROUPS",
                "REQ/S",
                "BYTES/S",
                "BURST S",
                "MAX TOPICS",
                "MAX PARTITIONS",
                "MAX GROUPS",
                "MAX CONSUMES",
                "MAX STREAMS",
            ],
            items(body).iter().map(|t| {
                vec![
                    text(t, "name"),
                    text(t, "disabled"),
                    text(t, "users"),
                    text(t, "topics"),
                    text(t, "groups"),
                    quota(t, "requests_per_second"),
                    quota(t, "bytes_per_second"),
                    quota(t, "burst_seconds"),
                    quota(t, "max_topics"),
                    quota(t, "max_partitions"),
                    quota(t, "max_groups"),
                    quota(t, "max_concurrent_consumes"),
                    quota(t, "max_streams"),
                ]
            }),
        )
        .to_string(),
        Kind::User | Kind::Users => table(
            &["USER", "DISABLED", "GRANTS", "PASSWORD CHANGED"],
            items(body).iter().map(|u| {
                vec![
                    text(u, "name"),
                    text(u, "disabled"),
                    grants_text(u),
                    text(u, "password_changed_at"),
                ]
            }),
        )
        .to_string(),
        Kind::Credentials => format!(
            "username: {}\npassword: {}\n\nThe password is shown this once only; store it now.",
            text(body, "username"),
            text(body, "password")
        ),
        Kind::Grant | Kind::Grants => table(
            &["PREFIX", "READ", "WRITE"],
            items(body)
                .iter()
                .map(|g| vec![text(g, "prefix"), text(g, "read"), text(g, "write")]),
        )
        .to_string(),
        Kind::Topic | Kind::Topics => table(
            &["TOPIC", "PARTITIONS", "MESSAGES", "CREATED"],
            items(body).iter().map(|t| {
                let messages = t
                    .get("partitions_detail")
                    .and_then(Value::as_array)
                    .map(|ps| {
                        ps.iter()
                            .map(|p| {
                                p.get("high").and_then(Value::as_i64).unwrap_or(0)
                                    - p.get("low").and_then(Value::as_i64).unwrap_or(0)
                            })
                            .sum::<i64>()
                            .to_string()
                    })
                    .unwrap_or_else(|| "?".to_owned());
                vec![
                    text(t, "name"),
                    text(t, "partitions"),
                    messages,
                    text(t, "created_at"),
                ]
            }),
        )
        .to_string(),
        Kind::Groups => table(
            &[
                "GROUP",
                "KAFKA GROUP",
                "TOPIC",
                "LAG",
                "PARTITIONS (offset/high)",
                "LAST USED",
            ],
            items(body).iter().map(|g| {
                let partitions = items(g.get("partitions").unwrap_or(&Value::Null))
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}/{}",
                            text(p, "partition"),
                            text(p, "offset"),
                            text(p, "high")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                vec![
                    text(g, "group"),
                    text(g, "kafka_group"),
                    text(g, "topic"),
                    text(g, "lag"),
                    partitions,
                    text(g, "last_used_at"),
                ]
            }),
        )
        .to_string(),
        Kind::Reset => table(
            &["PARTITION", "OFFSET"],
            items(body.get("partitions").unwrap_or(&Value::Null))
                .iter()
                .map(|p| vec![text(p, "partition"), text(p, "offset")]),
        )
        .to_string(),
        Kind::Audit => table(
            &["ID", "AT", "ACTOR", "ACTION", "TENANT", "TARGET", "DETAILS"],
            items(body).iter().map(|e| {
                vec![
                    text(e, "id"),
                    text(e, "at"),
                    text(e, "actor"),
                    text(e, "action"),
                    text(e, "tenant"),
                    text(e, "target"),
                    text(e, "details"),
                ]
            }),
        )
        .to_string(),
    };
    println!("{rendered}");
}

/// Prints a failure to stderr: the API's JSON error with `--json`, a
/// sentence otherwise.
pub fn print_error(err: &CliError, json: bool) {
    match err {
        CliError::Api { body, .. } if json => {
            eprintln!("{}", serde_json::to_string_pretty(body).unwrap_or_default());
        }
        other => eprintln!("error: {other}"),
    }
}
