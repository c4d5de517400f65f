//! `sluice admin …`: the operator CLI. It drives the admin API over HTTP,
//! so it works against any node and needs no database access. Tables by
//! default, `--json` for scripts; exit codes say what went wrong.

mod client;
mod render;

use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};

pub use client::{AdminClient, CliError};

/// Exit codes of `sluice admin`, documented in docs/operations.md.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const CONFLICT: u8 = 4;
    pub const UNAUTHORIZED: u8 = 5;
    pub const INVALID: u8 = 6;
    pub const UNAVAILABLE: u8 = 7;
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// Admin API base URL [default: from admin.listen in the config]
    #[arg(long, env = "SLUICE_ADMIN_URL", global = true)]
    pub url: Option<String>,
    /// Admin bearer token [default: admin.token from the config, e.g. SLUICE_ADMIN__TOKEN]
    #[arg(long, global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// Print the API's JSON instead of tables
    #[arg(long, global = true)]
    pub json: bool,
    /// Name recorded as the actor in the audit log [default: $USER]
    #[arg(long, global = true)]
    pub actor: Option<String>,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Tenants and their quotas
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Users (named <tenant>.<user>) and their passwords
    #[command(subcommand)]
    User(UserCommand),
    /// Read/write grants on topic prefixes
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Topics in Kafka, within the tenant's quota
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Consumer groups: lag, resets and deletion
    #[command(subcommand)]
    Group(GroupCommand),
    /// The audit log, newest first
    Audit(AuditArgs),
}

#[derive(Debug, Args, Default)]
pub struct QuotaArgs {
    #[arg(long)]
    pub requests_per_second: Option<u32>,
    #[arg(long)]
    pub bytes_per_second: Option<u64>,
    #[arg(long)]
    pub burst_seconds: Option<u32>,
    #[arg(long)]
    pub max_topics: Option<u32>,
    #[arg(long)]
    pub max_partitions: Option<u32>,
    /// Consumer groups the tenant may have
    #[arg(long)]
    pub max_groups: Option<u32>,
    /// Consumes the tenant may run at once, over all nodes
    #[arg(long)]
    pub max_concurrent_consumes: Option<u32>,
    /// SSE and WebSocket streams the tenant may hold open, over all nodes
    #[arg(long)]
    pub max_streams: Option<u32>,
}

impl QuotaArgs {
    fn to_json(&self) -> Option<Value> {
        let mut map = Map::new();
        let mut put = |key: &str, value: Option<u64>| {
            if let Some(v) = value {
                map.insert(key.to_owned(), json!(v));
            }
        };
        put(
            "requests_per_second",
            self.requests_per_second.map(u64::from),
        );
        put("bytes_per_second", self.bytes_per_second);
        put("burst_seconds", self.burst_seconds.map(u64::from));
        put("max_topics", self.max_topics.map(u64::from));
        put("max_partitions", self.max_partitions.map(u64::from));
        put("max_groups", self.max_groups.map(u64::from));
        put(
            "max_concurrent_consumes",
            self.max_concurrent_consumes.map(u64::from),
        );
        put("max_streams", self.max_streams.map(u64::from));
        (!map.is_empty()).then_some(Value::Object(map))
    }
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; unset quota fields take the configured defaults
    Create {
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
    },
    /// List tenants
    List,
    /// Show one tenant
    Show { name: String },
    /// Change quotas, or disable / enable
    Update {
        name: String,
        #[command(flatten)]
        quota: QuotaArgs,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
    },
    /// Delete a tenant; --force also deletes its users and topics
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user and print its password (shown this once only)
    Create {
        /// Full name, <tenant>.<user>
        name: String,
        /// A grant as PREFIX=RIGHTS, RIGHTS some of r (read), w (write)
        /// and m (manage: create and delete topics), e.g. acme.=rwm;
        /// repeatable
        #[arg(long = "grant", value_name = "PREFIX=rwm")]
        grants: Vec<String>,
    },
    /// List a tenant's users
    List { tenant: String },
    /// Show one user
    Show { name: String },
    /// Replace the password with a new one, printed once
    Rotate { name: String },
    /// Disable a user; its credentials stop working
    Disable { name: String },
    /// Re-enable a disabled user
    Enable { name: String },
    /// Delete a user and its grants
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Give a user read, write and/or manage on a topic prefix
    Add {
        user: String,
        prefix: String,
        #[arg(long)]
        read: bool,
        #[arg(long)]
        write: bool,
        /// Create and delete topics under the prefix on the data plane
        #[arg(long)]
        manage: bool,
    },
    /// Remove the grant on exactly this prefix
    Remove { user: String, prefix: String },
    /// List a user's grants
    List { user: String },
}

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic in Kafka
    Create {
        /// Full name, <tenant>.<topic>
        name: String,
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// [default: kafka.replication_factor of the server]
        #[arg(long)]
        replication_factor: Option<i32>,
        /// A topic setting such as retention.ms=86400000; repeatable
        #[arg(long = "set", value_name = "KEY=VALUE")]
        settings: Vec<String>,
    },
    /// List a tenant's topics with partitions and watermarks
    List { tenant: String },
    /// Show one topic
    Show { name: String },
    /// Delete a topic from Kafka
    Delete { name: String },
}

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// List a tenant's groups with their lag per topic
    List { tenant: String },
    /// Move a group's cursors on a topic
    Reset {
        tenant: String,
        group: String,
        #[arg(long)]
        topic: String,
        /// earliest, latest, an RFC 3339 time, or milliseconds since the epoch
        #[arg(long)]
        to: String,
    },
    /// Delete a group: its cursors and its mirrored Kafka group
    Delete { tenant: String, group: String },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long)]
    pub action: Option<String>,
    /// Only changes made by this actor
    #[arg(long = "by", value_name = "ACTOR")]
    pub by: Option<String>,
    #[arg(long)]
    pub target: Option<String>,
    /// RFC 3339 timestamp
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub limit: Option<u32>,
}

/// The tenant of a user name: everything before the first dot.
fn tenant_of(user: &str) -> Result<&str, CliError> {
    user.split_once('.')
        .map(|(tenant, _)| tenant)
        .ok_or_else(|| CliError::Usage(format!("'{user}' is not a full user name like acme.app")))
}

fn parse_grant(spec: &str) -> Result<Value, CliError> {
    let (prefix, rights) = spec
        .rsplit_once('=')
        .ok_or_else(|| CliError::Usage(format!("grant '{spec}' must look like PREFIX=rw")))?;
    let read = rights.contains('r');
    let write = rights.contains('w');
    let manage = rights.contains('m');
    if rights.is_empty() || rights.chars().any(|c| !matches!(c, 'r' | 'w' | 'm')) {
        return Err(CliError::Usage(format!(
            "grant rights '{rights}' must be some of r, w and m (e.g. rw, rwm)"
        )));
    }
    Ok(json!({ "prefix": prefix, "read": read, "write": write, "manage": manage }))
}

/// Resolves the URL and token (flags first, then the config file and its
/// environment), runs the command, prints, and maps failures to exit codes.
pub async fn run(args: AdminArgs, config: Option<&Path>) -> ExitCode {
    let json = args.json;
    match execute(args, config).await {
        Ok(output) => {
            render::print(&output, json);
            ExitCode::from(exit::OK)
        }
        Err(err) => {
            render::print_error(&err, json);
            ExitCode::from(err.exit_code())
        }
    }
}

/// What a command printed: the API's JSON plus how to show it as a table.
#[derive(Debug)]
pub struct Output {
    pub kind: render::Kind,
    pub body: Value,
}

async fn execute(args: AdminArgs, config: Option<&Path>) -> Result<Output, CliError> {
    let admin: Option<crate::config::AdminSettings> =
        crate::config::figment(config).extract_inner("admin").ok();
    let url = match (&args.url, &admin) {
        (Some(url), _) => url.trim_end_matches('/').to_owned(),
        (None, Some(admin)) => format!("http://{}", admin.listen),
        (None, None) => {
            return Err(CliError::Usage(
                "no admin URL: pass --url or set SLUICE_ADMIN_URL".into(),
            ))
        }
    };
    let token: SecretString = match (&args.token, admin.and_then(|a| a.token)) {
        (Some(token), _) => token.clone().into(),
        (None, Some(token)) => token,
        (None, None) => {
            return Err(CliError::Usage(
                "no admin token: pass --token or set SLUICE_ADMIN__TOKEN".into(),
            ))
        }
    };
    let actor = args
        .actor
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "cli".to_owned());
    let client = AdminClient::new(url, token.expose_secret(), &actor)?;
    use render::Kind;
    let (kind, body) = match args.command {
        AdminCommand::Tenant(cmd) => match cmd {
            TenantCommand::Create { name, quota } => {
                let mut body = json!({ "name": name });
                if let Some(q) = quota.to_json() {
                    body["quota"] = q;
                }
                (Kind::Tenant, client.post(&["v1", "tenants"], &body).await?)
            }
            TenantCommand::List => (Kind::Tenants, client.get(&["v1", "tenants"]).await?),
            TenantCommand::Show { name } => {
                (Kind::Tenant, client.get(&["v1", "tenants", &name]).await?)
            }
            TenantCommand::Update {
                name,
                quota,
                disable,
                enable,
            } => {
                let mut body = json!({});
                if let Some(q) = quota.to_json() {
                    body["quota"] = q;
                }
                if disable || enable {
                    body["disabled"] = json!(disable);
                }
                (
                    Kind::Tenant,
                    client.patch(&["v1", "tenants", &name], &body).await?,
                )
            }
            TenantCommand::Delete { name, force } => {
                let force = force.to_string();
                client
                    .delete_query(&["v1", "tenants", &name], &[("force", force)])
                    .await?;
                (Kind::Done(format!("tenant {name} deleted")), Value::Null)
            }
        },
        AdminCommand::User(cmd) => match cmd {
            UserCommand::Create { name, grants } => {
                let tenant = tenant_of(&name)?;
                let grants = grants
                    .iter()
                    .map(|g| parse_grant(g))
                    .collect::<Result<Vec<_>, _>>()?;
                let body = json!({ "name": name, "grants": grants });
                (
                    Kind::Credentials,
                    client
                        .post(&["v1", "tenants", tenant, "users"], &body)
                        .await?,
                )
            }
            UserCommand::List { tenant } => (
                Kind::Users,
                client.get(&["v1", "tenants", &tenant, "users"]).await?,
            ),
            UserCommand::Show { name } => {
                let tenant = tenant_of(&name)?;
                (
                    Kind::User,
                    client
                        .get(&["v1", "tenants", tenant, "users", &name])
                        .await?,
                )
            }
            UserCommand::Rotate { name } => {
                let tenant = tenant_of(&name)?;
                let path: &[&str] = &["v1", "tenants", tenant, "users", &name, "password"];
                (Kind::Credentials, client.post(path, &json!({})).await?)
            }
            UserCommand::Disable { name } => {
                let tenant = tenant_of(&name)?;
                let path: &[&str] = &["v1", "tenants", tenant, "users", &name];
                (
                    Kind::User,
                    client.patch(path, &json!({ "disabled": true })).await?,
                )
            }
            UserCommand::Enable { name } => {
                let tenant = tenant_of(&name)?;
                let path: &[&str] = &["v1", "tenants", tenant, "users", &name];
                (
                    Kind::User,
                    client.patch(path, &json!({ "disabled": false })).await?,
                )
            }
            UserCommand::Delete { name } => {
                let tenant = tenant_of(&name)?;
                client
                    .delete(&["v1", "tenants", tenant, "users", &name])
                    .await?;
                (Kind::Done(format!("user {name} deleted")), Value::Null)
            }
        },
        AdminCommand::Grant(cmd) => match cmd {
            GrantCommand::Add {
                user,
                prefix,
                read,
                write,
                manage,
            } => {
                let tenant = tenant_of(&user)?;
                let body =
                    json!({ "prefix": prefix, "read": read, "write": write, "manage": manage });
                let path: &[&str] = &["v1", "tenants", tenant, "users", &user, "grants"];
                (Kind::Grant, client.post(path, &body).await?)
            }
            GrantCommand::Remove { user, prefix } => {
                let tenant = tenant_of(&user)?;
                client
                    .delete(&["v1", "tenants", tenant, "users", &user, "grants", &prefix])
                    .await?;
                (
                    Kind::Done(format!("grant on {prefix} removed from {user}")),
                    Value::Null,
                )
            }
            GrantCommand::List { user } => {
                let tenant = tenant_of(&user)?;
                (
                    Kind::Grants,
                    client
                        .get(&["v1", "tenants", tenant, "users", &user, "grants"])
                        .await?,
                )
            }
        },
        AdminCommand::Topic(cmd) => match cmd {
            TopicCommand::Create {
                name,
                partitions,
                replication_factor,
                settings: pairs,
            } => {
                let tenant = tenant_of(&name)?;
                let mut settings = Map::new();
                for pair in &pairs {
                    let (key, value) = pair.split_once('=').ok_or_else(|| {
                        CliError::Usage(format!("--set '{pair}' must look like KEY=VALUE"))
                    })?;
                    settings.insert(key.to_owned(), json!(value));
                }
                let mut body =
                    json!({ "name": name, "partitions": partitions, "config": settings });
                if let Some(rf) = replication_factor {
                    body["replication_factor"] = json!(rf);
                }
                (
                    Kind::Topic,
                    client
                        .post(&["v1", "tenants", tenant, "topics"], &body)
                        .await?,
                )
            }
            TopicCommand::List { tenant } => (
                Kind::Topics,
                client.get(&["v1", "tenants", &tenant, "topics"]).await?,
            ),
            TopicCommand::Show { name } => {
                let tenant = tenant_of(&name)?;
                (
                    Kind::Topic,
                    client
                        .get(&["v1", "tenants", tenant, "topics", &name])
                        .await?,
                )
            }
            TopicCommand::Delete { name } => {
                let tenant = tenant_of(&name)?;
                client
                    .delete(&["v1", "tenants", tenant, "topics", &name])
                    .await?;
                (Kind::Done(format!("topic {name} deleted")), Value::Null)
            }
        },
        AdminCommand::Group(cmd) => match cmd {
            GroupCommand::List { tenant } => (
                Kind::Groups,
                client.get(&["v1", "tenants", &tenant, "groups"]).await?,
            ),
            GroupCommand::Reset {
                tenant,
                group,
                topic,
                to,
            } => {
                let to = to.parse::<i64>().map_or_else(|_| json!(to), |ms| json!(ms));
                let body = json!({ "topic": topic, "to": to });
                let path: &[&str] = &["v1", "tenants", &tenant, "groups", &group, "reset"];
                (Kind::Reset, client.post(path, &body).await?)
            }
            GroupCommand::Delete { tenant, group } => {
                client
                    .delete(&["v1", "tenants", &tenant, "groups", &group])
                    .await?;
                (
                    Kind::Done(format!("group {group} of tenant {tenant} deleted")),
                    Value::Null,
                )
            }
        },
        AdminCommand::Audit(filter) => {
            let mut query: Vec<(&str, String)> = Vec::new();
            let pairs = [
                ("tenant", filter.tenant),
                ("action", filter.action),
                ("actor", filter.by),
                ("target", filter.target),
                ("since", filter.since),
                ("limit", filter.limit.map(|l| l.to_string())),
            ];
            for (key, value) in pairs {
                if let Some(v) = value {
                    query.push((key, v));
                }
            }
            (
                Kind::Audit,
                client.get_query(&["v1", "audit"], &query).await?,
            )
        }
    };
    Ok(Output { kind, body })
}
