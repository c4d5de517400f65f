//! The attacks of the isolation issues, each as background loads that run
//! while tenant B is measured: the front door (issue 12: floods of bad
//! logins, slow connections, from other loopback addresses) and a
//! neighbour or an operator (issue 13: tenant A within its own quota, an
//! operator re-creating A's topic).

use std::net::IpAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::FutureExt;

use super::requests;
use crate::background::Load;
use crate::client::{basic, Admin, Pool};
use crate::engine::{Op, Outcome, Status};
use crate::provision::Tenant;
use crate::report::Spec;
use crate::slow::SlowConnections;

/// One attack; `--attacks` picks some, all by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Attack {
    /// 12a: wrong passwords for B's own username, from 127.0.0.2.
    WrongPassword,
    /// 12b: logins of unknown users from 20 addresses, 127.0.0.10–29.
    UnknownUsers,
    /// 12c: 500 connections from 127.0.0.3 that declare a body and send
    /// nothing.
    SlowConnections,
    /// 13a: A's 64 concurrent `limit=1000` GETs on 64 partitions.
    WideReads,
    /// 13b: A's GETs, each with a new group.
    GroupChurn,
    /// 13c: A's 1,000 open long polls on an empty topic.
    LongPolls,
    /// 13d: an operator deleting and re-creating A's topic while A uses it.
    TopicRecreate,
}

/// B's run with nothing else going on.
pub const BASELINE: &str = "attack baseline: B alone";
/// The same, with B's cached login dropped once mid-run, as when it
/// expires: the baseline of the login floods, where B must log in again
/// during the attack.
pub const BASELINE_RELOGIN: &str = "attack baseline: B alone, login dropped once";
/// The scenario label of attacker loads, whose refusals are their point.
pub const ATTACKER_SCENARIO: &str = "isolation-attacker";

/// Tenant A's quota in the attacks of issue 13, requests/s: B's size.
pub const A_QUOTA: u64 = 200;
/// What A sends at most, so that it stays within its quota.
const A_RATE: f64 = 190.0;
/// `wait` of a long poll, ms: the server's default maximum.
const LONG_POLL_MS: u64 = 30_000;
/// Open long polls.
const LONG_POLLS: usize = 1000;
/// Slow connections.
const SLOW_CONNECTIONS: usize = 500;
/// Partitions of A's wide topic, one message each.
pub const WIDE_PARTITIONS: u32 = 64;

impl Attack {
    /// Every attack, in the order they run: the topic re-creation last,
    /// since it has been seen to crash a node.
    pub const ALL: [Attack; 7] = [
        Attack::WrongPassword,
        Attack::UnknownUsers,
        Attack::SlowConnections,
        Attack::WideReads,
        Attack::GroupChurn,
        Attack::LongPolls,
        Attack::TopicRecreate,
    ];

    /// The issue and item, e.g. `12a`.
    pub fn id(self) -> &'static str {
        match self {
            Attack::WrongPassword => "12a",
            Attack::UnknownUsers => "12b",
            Attack::SlowConnections => "12c",
            Attack::WideReads => "13a",
            Attack::GroupChurn => "13b",
            Attack::LongPolls => "13c",
            Attack::TopicRecreate => "13d",
        }
    }

    /// What the attack is, for goal rows.
    pub fn title(self) -> &'static str {
        match self {
            Attack::WrongPassword => "a wrong-password flood for B's own username (127.0.0.2, 32 in flight)",
            Attack::UnknownUsers => "an unknown-user login flood from 20 addresses (127.0.0.10–29, 80 in flight)",
            Attack::SlowConnections => "500 slow connections (127.0.0.3: headers with Content-Length 65536, then nothing)",
            Attack::WideReads => "A's 64 concurrent limit=1000 GETs on a 64-partition topic, one message per partition",
            Attack::GroupChurn => "A's group churn at its request rate (a new group on every GET)",
            Attack::LongPolls => "A's 1,000 open long polls (wait=30000 on an empty topic)",
            Attack::TopicRecreate => "an operator deleting and re-creating A's topic every 2 s while A uses it",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Attack::WrongPassword => "wrong-password flood",
            Attack::UnknownUsers => "unknown-user flood",
            Attack::SlowConnections => "500 slow connections",
            Attack::WideReads => "A's wide reads",
            Attack::GroupChurn => "A's group churn",
            Attack::LongPolls => "A's 1000 long polls",
            Attack::TopicRecreate => "topic re-creation",
        }
    }

    /// Whether B's cached login is dropped during its run: the login
    /// floods only matter when B has to log in.
    pub fn drops_login(self) -> bool {
        matches!(self, Attack::WrongPassword | Attack::UnknownUsers)
    }

    /// The run B's figures are compared with.
    pub fn baseline(self) -> &'static str {
        if self.drops_login() {
            BASELINE_RELOGIN
        } else {
            BASELINE
        }
    }

    /// Name of B's run during this attack.
    pub fn b_run(self) -> String {
        format!("attack {}: B during {}", self.id(), self.short())
    }

    /// Prefix of every run of this attack, B's and the attackers'.
    pub fn prefix(self) -> String {
        format!("attack {}: ", self.id())
    }

    /// Seconds the attack builds up before B is measured: long polls open
    /// at A's rate; everything else is at full strength within a second or
    /// two.
    pub fn ramp(self) -> f64 {
        match self {
            Attack::LongPolls => LONG_POLLS as f64 / A_RATE + 0.5,
            Attack::SlowConnections => 2.0,
            _ => 1.0,
        }
    }
}

/// Everything the attacks act on and from.
pub struct Arena {
    /// The victim.
    pub b: Tenant,
    /// The neighbour of issue 13.
    pub a: Tenant,
    /// A's 64-partition topic.
    pub wide: String,
    /// A's empty topic, for long polls.
    pub empty: String,
    /// A's topic that the operator re-creates.
    pub recreated: String,
    /// A's connections, from its own address.
    pub a_pool: Pool,
    /// The admin API.
    pub admin: Admin,
    /// Public base URL.
    pub base: String,
    /// The listener's CA, for the raw slow connections.
    pub ca: Option<std::path::PathBuf>,
    /// HTTP path label.
    pub path: String,
}

/// A's address: a tenant of its own, not the victim's network.
pub fn a_address() -> IpAddr {
    IpAddr::from([127, 0, 0, 4])
}

/// A produce body of one 100 B message for each of `partitions`.
pub fn one_per_partition(partitions: u32) -> Bytes {
    let value = "x".repeat(100);
    let messages: Vec<String> = (0..partitions)
        .map(|p| format!("{{\"Value\":\"{value}\",\"Partition\":{p}}}"))
        .collect();
    Bytes::from(format!("[{}]", messages.join(",")))
}

/// Requests with credentials made per request, spread over `pools` (one
/// per source address) by worker; only the status is kept.
fn flood(
    pools: Vec<Pool>,
    path: String,
    credentials: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Op {
    let pools = Arc::new(pools);
    let credentials = Arc::new(credentials);
    Arc::new(move |worker, seq| {
        let pool = &pools[worker % pools.len()];
        let request = pool
            .client(0)
            .get(format!("{}{path}", pool.base))
            .header("authorization", credentials(seq));
        requests::status_only(request).boxed()
    })
}

/// A's GETs on URLs made per request; only the status is kept.
fn get(pool: Pool, auth: String, url: impl Fn(u64) -> String + Send + Sync + 'static) -> Op {
    Arc::new(move |worker, seq| {
        let request = pool
            .client(worker)
            .get(url(seq))
            .header("authorization", &auth);
        requests::status_only(request).boxed()
    })
}

/// One cycle of the operator: delete the topic, create it again.
fn recreate(admin: Admin, tenant: String, topic: String) -> Op {
    Arc::new(move |_, _| {
        let (admin, tenant, topic) = (admin.clone(), tenant.clone(), topic.clone());
        async move {
            let deleted = admin.delete_topic(&tenant, &topic).await;
            match admin.create_topic(&tenant, &topic, 4).await {
                Ok(()) if deleted.is_ok() => Outcome::ok(0, 0),
                Ok(()) => Outcome::failed(Status::Error("delete failed")),
                Err(_) => Outcome::failed(Status::Error("create failed")),
            }
        }
        .boxed()
    })
}

impl Arena {
    fn spec(&self, attack: Attack, who: &str, settings: String) -> Spec {
        Spec {
            scenario: ATTACKER_SCENARIO.into(),
            name: format!("{}{who}", attack.prefix()),
            path: self.path.clone(),
            broker: "tansu".into(),
            settings,
            msg_bytes: None,
            batch: None,
            limit: None,
        }
    }

    fn a_auth(&self) -> Arc<Vec<String>> {
        let (user, password) = &self.a.users[0];
        Arc::new(vec![basic(user, password)])
    }

    /// The loads of `attack`.
    pub fn loads(&self, attack: Attack) -> Result<Vec<Load>> {
        let ca = self.ca.as_deref();
        let b_user = self.b.users[0].0.clone();
        let b_path = format!("/topic/{}?limit=1", self.b.topic);
        Ok(match attack {
            Attack::WrongPassword => {
                let pool = Pool::bound(&self.base, ca, IpAddr::from([127, 0, 0, 2]), 64)?;
                let op = flood(vec![pool], b_path, move |seq| {
                    basic(&b_user, &format!("wrong-{seq}"))
                });
                let spec = self.spec(
                    attack,
                    "wrong-password flood",
                    format!("GET /topic/<B's topic> as {} with a new wrong password each time, from 127.0.0.2, closed loop", self.b.users[0].0),
                );
                vec![Load {
                    spec,
                    op,
                    concurrency: 32,
                    rate: None,
                }]
            }
            Attack::UnknownUsers => {
                let pools = (10..30u8)
                    .map(|last| Pool::bound(&self.base, ca, IpAddr::from([127, 0, 0, last]), 8))
                    .collect::<Result<Vec<_>>>()?;
                let op = flood(pools, b_path, |seq| {
                    basic(&format!("ghost{seq}.app"), "guess")
                });
                let spec = self.spec(
                    attack,
                    "unknown-user flood",
                    "GET /topic/<B's topic> as a new unknown user each time (ghostN.app), from 127.0.0.10–29, 4 in flight per address, closed loop".into(),
                );
                vec![Load {
                    spec,
                    op,
                    concurrency: 80,
                    rate: None,
                }]
            }
            Attack::SlowConnections => {
                let ca = ca.context("slow connections need --ca")?;
                let slow = SlowConnections::new(
                    &self.base,
                    ca,
                    IpAddr::from([127, 0, 0, 3]),
                    "/healthz",
                    65_536,
                )?;
                let spec = self.spec(
                    attack,
                    "500 slow connections",
                    "TLS connections from 127.0.0.3: GET /healthz with Content-Length: 65536 and no body, each re-opened once the server closes it; latency = how long the server held it".into(),
                );
                vec![Load {
                    spec,
                    op: slow.op(),
                    concurrency: SLOW_CONNECTIONS,
                    rate: None,
                }]
            }
            Attack::WideReads => {
                let groups = Arc::new((0..64).map(|g| format!("wide{g}")).collect::<Vec<_>>());
                let reads = requests::consume(
                    self.a_pool.clone(),
                    self.a_auth()[0].clone(),
                    &self.wide,
                    1000,
                    groups,
                    100,
                );
                let refill = requests::produce(
                    self.a_pool.clone(),
                    self.a_auth(),
                    &self.wide,
                    one_per_partition(WIDE_PARTITIONS),
                    WIDE_PARTITIONS as usize,
                    100,
                );
                vec![
                        Load {
                            spec: self.spec(attack, "A's wide reads", format!("GET limit=1000 on A's {WIDE_PARTITIONS}-partition topic, 64 groups, from 127.0.0.4; A's quota {A_QUOTA} req/s")),
                            op: reads,
                            concurrency: 64,
                            rate: Some(A_RATE - 1.0),
                        },
                        Load {
                            spec: self.spec(attack, "A's refill", format!("POST one 100 B message to each of the {WIDE_PARTITIONS} partitions, once a second")),
                            op: refill,
                            concurrency: 1,
                            rate: Some(1.0),
                        },
                    ]
            }
            Attack::GroupChurn => {
                let base = format!(
                    "{}/topic/{}?limit=1&group=churn",
                    self.a_pool.base, self.a.topic
                );
                let op = get(self.a_pool.clone(), self.a_auth()[0].clone(), move |seq| {
                    format!("{base}{seq}")
                });
                let spec = self.spec(attack, "A's group churn", format!("GET limit=1 on A's topic with group=churnN, a new N every time, from 127.0.0.4, at {A_RATE:.0} req/s (A's quota {A_QUOTA})"));
                vec![Load {
                    spec,
                    op,
                    concurrency: 64,
                    rate: Some(A_RATE),
                }]
            }
            Attack::LongPolls => {
                let url = format!(
                    "{}/topic/{}?limit=1&group=poll&wait={LONG_POLL_MS}",
                    self.a_pool.base, self.empty
                );
                let op = get(self.a_pool.clone(), self.a_auth()[0].clone(), move |_| {
                    url.clone()
                });
                let spec = self.spec(attack, "A's 1000 long polls", format!("GET wait={LONG_POLL_MS} on A's empty topic, one group, from 127.0.0.4, opened at {A_RATE:.0}/s and re-opened as they end"));
                vec![Load {
                    spec,
                    op,
                    concurrency: LONG_POLLS,
                    rate: Some(A_RATE),
                }]
            }
            Attack::TopicRecreate => {
                let groups = Arc::new(vec!["reader".to_owned()]);
                let reads = requests::consume(
                    self.a_pool.clone(),
                    self.a_auth()[0].clone(),
                    &self.recreated,
                    10,
                    groups,
                    100,
                );
                let writes = requests::produce(
                    self.a_pool.clone(),
                    self.a_auth(),
                    &self.recreated,
                    requests::produce_body(100, 1),
                    1,
                    100,
                );
                vec![
                        Load {
                            spec: self.spec(attack, "operator re-creating A's topic", "admin API: DELETE the topic (which waits out the readers' release), then POST it again with 4 partitions, one cycle every 2 s".into()),
                            op: recreate(self.admin.clone(), self.a.name.clone(), self.recreated.clone()),
                            concurrency: 1,
                            rate: Some(0.5),
                        },
                        Load {
                            spec: self.spec(attack, "A reading the re-created topic", "GET limit=10, one group, from 127.0.0.4, 50 req/s".into()),
                            op: reads,
                            concurrency: 8,
                            rate: Some(50.0),
                        },
                        Load {
                            spec: self.spec(attack, "A writing the re-created topic", "POST 100 B × 1, from 127.0.0.4, 50 req/s".into()),
                            op: writes,
                            concurrency: 8,
                            rate: Some(50.0),
                        },
                    ]
            }
        })
    }
}
