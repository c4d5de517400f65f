//! A Jepsen-style check of manual-ack mode (issue 14): three real nodes,
//! one real broker, eight clients reading one group with `ack=manual`
//! round-robin over the nodes, one client that drops a tenth of its
//! answers unacked, and one node SIGKILLed mid-run. Every delivery and
//! every ack is recorded with its time, then the history is checked
//! against the contract:
//!
//! - every message is acked at least once, and none is lost or altered;
//! - every delivery after the first traces back to a cause: the previous
//!   delivery was dropped, its ack came too late (409 `receipt_expired`),
//!   or its ack or its GET was lost with the killed node;
//! - nothing comes back before its visibility ended, and a partition is
//!   never delivered again while a range of it is leased;
//! - order within a partition: a message is first delivered, and first
//!   acked, no later than every message after it;
//! - `Deliveries` counts every delivery, seen or lost.
//!
//! Times are the client's (one monotonic clock): the server's moment of
//! each request lies between its send and its answer, so a check only
//! fails on an order that no interleaving allows.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::process::BinaryNode;
use crate::helpers::{data_client, TestApp};

const MESSAGES: usize = 20_000;
const PARTITIONS: usize = 6;
const CLIENTS: usize = 8;
const NODES: usize = 3;
/// The node that is SIGKILLed.
const VICTIM: usize = 2;
/// The client that drops a tenth of its answers.
const DROPPER: usize = 0;
/// Visibility of every manual GET, ms.
const VISIBILITY_MS: u64 = 2000;
/// Slack for the clock of Postgres against the test's.
const SLACK_MS: f64 = 100.0;
/// The consume phase ends by then at the latest.
const CONSUME_BUDGET: Duration = Duration::from_secs(80);
const GROUP: &str = "checker";

/// One message of an answer.
#[derive(Debug, Clone, Copy)]
struct Message {
    partition: usize,
    offset: i64,
    value: usize,
    deliveries: i64,
}

/// How the acks of one receipt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AckResult {
    /// 204.
    Acked,
    /// 409 `receipt_expired`.
    Expired,
    /// 404 `receipt_not_found`: never right for a receipt the server gave.
    NotFound,
    /// Another status.
    Other(u16),
    /// No node gave a definite answer.
    Unknown,
}

#[derive(Debug, Clone)]
struct Ack {
    /// When the first attempt was sent, ms since the start.
    sent: f64,
    /// When the definite answer came back (or the last attempt failed).
    received: f64,
    result: AckResult,
    /// An attempt before the final answer failed without an answer or
    /// with a 5xx: it may have been applied.
    ambiguous: bool,
    /// (node, outcome) of every attempt.
    attempts: Vec<(usize, String)>,
}

/// One GET and what became of its answer.
#[derive(Debug, Clone)]
struct Get {
    client: usize,
    node: usize,
    limit: usize,
    sent: f64,
    received: f64,
    /// `Err` when no answer was read: a transport error or a non-200.
    outcome: Result<Vec<Message>, String>,
    receipt: Option<String>,
    dropped: bool,
    ack: Option<Ack>,
}

/// What every client shares.
struct Shared {
    nodes: Vec<String>,
    topic: String,
    user: String,
    password: String,
    start: Instant,
    stop: AtomicBool,
    /// Values acked with a 204.
    acked: Mutex<Vec<bool>>,
    acked_count: AtomicUsize,
    /// Values whose only acks were ambiguous (the killed node).
    maybe: Mutex<HashSet<usize>>,
}

impl Shared {
    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }
}

fn parse_messages(topic: &str, body: &Value) -> Result<Vec<Message>, String> {
    let array = body
        .as_array()
        .ok_or_else(|| format!("not an array: {body}"))?;
    array
        .iter()
        .map(|m| {
            if m["Topic"] != topic {
                return Err(format!("a message of another topic: {m}"));
            }
            let field = |name: &str| {
                m[name]
                    .as_i64()
                    .ok_or_else(|| format!("no integer {name} in {m}"))
            };
            let value = m["Value"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("a value that was never produced: {m}"))?;
            Ok(Message {
                partition: usize::try_from(field("Partition")?).map_err(|e| e.to_string())?,
                offset: field("Offset")?,
                value,
                deliveries: field("Deliveries")?,
            })
        })
        .collect()
}

/// Acks `receipt`, first on `first_node`, then on the others while no node
/// gives a definite answer.
async fn ack(
    shared: &Shared,
    http: &reqwest::Client,
    first_node: usize,
    dead: &mut HashSet<usize>,
    receipt: &str,
) -> Ack {
    let sent = shared.now();
    let mut attempts = Vec::new();
    let mut ambiguous = false;
    for attempt in 0..8 {
        let node = (first_node + attempt) % NODES;
        if dead.contains(&node) && dead.len() < NODES {
            continue;
        }
        let url = format!("{}/topic/{}/ack", shared.nodes[node], shared.topic);
        let answer = http
            .post(url)
            .basic_auth(&shared.user, Some(&shared.password))
            .json(&json!({ "receipt": receipt }))
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(e) => {
                attempts.push((node, format!("transport: {e}")));
                ambiguous = true;
                dead.insert(node);
                continue;
            }
        };
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        attempts.push((node, format!("{status} {body}")));
        let result = match status {
            StatusCode::NO_CONTENT => AckResult::Acked,
            StatusCode::CONFLICT if body.contains("receipt_expired") => AckResult::Expired,
            StatusCode::NOT_FOUND if body.contains("receipt_not_found") => AckResult::NotFound,
            s if s.is_server_error() => {
                ambiguous = true;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            s => AckResult::Other(s.as_u16()),
        };
        return Ack {
            sent,
            received: shared.now(),
            result,
            ambiguous,
            attempts,
        };
    }
    Ack {
        sent,
        received: shared.now(),
        result: AckResult::Unknown,
        ambiguous,
        attempts,
    }
}

/// One client: GET, record, ack (or drop), until every message is acked.
async fn client(shared: Arc<Shared>, me: usize) -> Vec<Get> {
    let http = data_client();
    let mut history = Vec::new();
    let mut dead: HashSet<usize> = HashSet::new();
    let mut answers = 0usize;
    let mut round = 0usize;
    while !shared.stop.load(Ordering::SeqCst) {
        round += 1;
        if dead.len() == NODES {
            dead.clear();
        }
        let mut node = (me + round) % NODES;
        while dead.contains(&node) {
            node = (node + 1) % NODES;
        }
        let limit = 50 + (me * 13 + round * 7) % 51;
        let url = format!(
            "{}/topic/{}?limit={limit}&group={GROUP}&ack=manual&visibility={VISIBILITY_MS}",
            shared.nodes[node], shared.topic
        );
        let sent = shared.now();
        let answer = http
            .get(url)
            .basic_auth(&shared.user, Some(&shared.password))
            .send()
            .await;
        let (outcome, receipt) = match answer {
            Err(e) => {
                dead.insert(node);
                (Err(format!("transport: {e}")), None)
            }
            Ok(response) => {
                let status = response.status();
                let receipt = response
                    .headers()
                    .get("sluice-receipt")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match response.text().await {
                    Err(e) => {
                        dead.insert(node);
                        (Err(format!("cut off: {e}")), receipt)
                    }
                    Ok(text) if status == StatusCode::OK => {
                        let parsed = serde_json::from_str::<Value>(&text)
                            .map_err(|e| format!("not JSON ({e}): {text}"))
                            .and_then(|body| parse_messages(&shared.topic, &body));
                        (parsed, receipt)
                    }
                    Ok(text) => (Err(format!("{status} {text}")), receipt),
                }
            }
        };
        let received = shared.now();
        let mut get = Get {
            client: me,
            node,
            limit,
            sent,
            received,
            outcome,
            receipt,
            dropped: false,
            ack: None,
        };
        match &get.outcome {
            Ok(messages) if !messages.is_empty() => {
                answers += 1;
                if me == DROPPER && answers % 10 == 5 {
                    get.dropped = true;
                } else if let Some(receipt) = get.receipt.clone() {
                    let done = ack(&shared, &http, node + 1, &mut dead, &receipt).await;
                    let values = messages.iter().map(|m| m.value);
                    if done.result == AckResult::Acked {
                        let mut acked = shared.acked.lock().unwrap();
                        for v in values {
                            if !acked[v] {
                                acked[v] = true;
                                shared.acked_count.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    } else if done.result == AckResult::Unknown {
                        shared.maybe.lock().unwrap().extend(values);
                    }
                    get.ack = Some(done);
                }
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
        history.push(get);
    }
    history
}

/// Why a message was delivered again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cause {
    Dropped,
    Expired,
    /// Its ack got no definite answer on a first attempt (the killed
    /// node, or a 5xx) and was then refused or never answered.
    AckLost,
    /// Earlier deliveries no client saw: answers lost with a failed GET.
    LostAnswer,
}

#[tokio::test]
async fn manual_ack_consumers_across_three_nodes_with_drops_and_a_killed_node_lose_nothing_and_duplicate_only_for_a_cause(
) {
    let app = TestApp::spawn().await;
    let (tenant, user, password) = app
        .tenant_with_quota(json!({
            "requests_per_second": 100_000,
            "bytes_per_second": 1_000_000_000u64,
            "max_concurrent_consumes": 1000,
        }))
        .await;
    let topic = format!("{tenant}.jobs");
    app.create_topic(&tenant, &topic, PARTITIONS as u32).await;
    let (db, bootstrap) = (app.database_url.clone(), app.bootstrap.clone());
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(BinaryNode::start(&db, &bootstrap, "warn").await);
    }

    // Produce every value once, spread over the partitions by hand, and
    // keep where each one was stored.
    let produced_at = Instant::now();
    let mut stored: Vec<Option<(usize, i64)>> = vec![None; MESSAGES];
    let chunks: Vec<Vec<usize>> = (0..MESSAGES)
        .collect::<Vec<_>>()
        .chunks(500)
        .map(<[usize]>::to_vec)
        .collect();
    for wave in chunks.chunks(4) {
        let requests = wave.iter().map(|chunk| {
            let body: Vec<Value> = chunk
                .iter()
                .map(|i| json!({ "Value": i.to_string(), "Partition": i % PARTITIONS }))
                .collect();
            let app = &app;
            let (user, password, topic) = (&user, &password, &topic);
            async move {
                let response = app
                    .produce(user, password, topic, &Value::from(body).to_string())
                    .await;
                assert_eq!(response.status(), StatusCode::OK);
                let answer: Value = response.json().await.unwrap();
                answer["offsets"].as_array().unwrap().clone()
            }
        });
        let answers = futures::future::join_all(requests).await;
        for (chunk, offsets) in wave.iter().zip(answers) {
            assert_eq!(chunk.len(), offsets.len());
            for (value, at) in chunk.iter().zip(offsets) {
                let partition = at["Partition"].as_u64().unwrap() as usize;
                assert_eq!(partition, value % PARTITIONS);
                stored[*value] = Some((partition, at["Offset"].as_i64().unwrap()));
            }
        }
    }
    let stored: Vec<(usize, i64)> = stored.into_iter().map(Option::unwrap).collect();
    println!(
        "produced {MESSAGES} messages over {PARTITIONS} partitions in {:.1} s",
        produced_at.elapsed().as_secs_f64()
    );

    let shared = Arc::new(Shared {
        nodes: nodes.iter().map(|n| n.public_url.clone()).collect(),
        topic: topic.clone(),
        user: user.clone(),
        password: password.clone(),
        start: Instant::now(),
        stop: AtomicBool::new(false),
        acked: Mutex::new(vec![false; MESSAGES]),
        acked_count: AtomicUsize::new(0),
        maybe: Mutex::new(HashSet::new()),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|me| tokio::spawn(client(shared.clone(), me)))
        .collect();

    // The nemesis: SIGKILL one node once 30 % are acked. Then wait until
    // every message is acked (or its only ack was lost with the node and
    // nothing came back for a while), or the budget is spent.
    let mut killed_at = None;
    let mut settled_since: Option<Instant> = None;
    let deadline = Instant::now() + CONSUME_BUDGET;
    while Instant::now() < deadline {
        let acked = shared.acked_count.load(Ordering::SeqCst);
        if killed_at.is_none() && acked >= MESSAGES * 3 / 10 {
            nodes[VICTIM].signal("KILL");
            let _ = nodes[VICTIM].child.wait().await;
            killed_at = Some(shared.now());
            println!(
                "node {VICTIM} SIGKILLed at {:.0} ms with {acked} messages acked",
                shared.now()
            );
        }
        if acked == MESSAGES {
            break;
        }
        let covered = {
            let flags = shared.acked.lock().unwrap();
            let maybe = shared.maybe.lock().unwrap();
            (0..MESSAGES).all(|v| flags[v] || maybe.contains(&v))
        };
        match (covered, settled_since) {
            (true, None) => settled_since = Some(Instant::now()),
            (true, Some(since)) if since.elapsed() > Duration::from_millis(3 * VISIBILITY_MS) => {
                break
            }
            (false, _) => settled_since = None,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    let mut gets: Vec<Get> = Vec::new();
    for c in clients {
        gets.extend(c.await.unwrap());
    }
    let consumed_in = shared.now();

    // Once every visibility has ended, nothing may come back any more.
    tokio::time::sleep(Duration::from_millis(VISIBILITY_MS + 500)).await;
    let mut leftovers = Vec::new();
    for node in (0..NODES).filter(|n| *n != VICTIM) {
        let response = data_client()
            .get(format!(
                "{}/topic/{topic}?limit=1000&group={GROUP}&ack=manual",
                shared.nodes[node]
            ))
            .basic_auth(&user, Some(&password))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        leftovers.extend(parse_messages(&topic, &body).unwrap());
    }

    let report = check(&gets, &stored, killed_at, &leftovers);
    println!(
        "consumed in {:.1} s; {}",
        consumed_in / 1000.0,
        report.summary
    );
    assert!(killed_at.is_some(), "the node was never killed");
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for v in &report.violations {
        let kind: String = v
            .chars()
            .take(60)
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        *kinds.entry(kind).or_default() += 1;
    }
    assert!(
        report.violations.is_empty(),
        "{} violations of the contract, by kind {kinds:#?}; the first ones:\n{}",
        report.violations.len(),
        report
            .violations
            .iter()
            .take(25)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        report.dropped_answers > 0,
        "the dropping client never dropped an answer: the check proved little"
    );
}

/// One GET for a violation's message: who, where, when, what it held of
/// each partition, and what became of it.
fn describe(i: usize, get: &Get) -> String {
    let ranges = match &get.outcome {
        Ok(messages) => {
            let mut by_partition: BTreeMap<usize, (i64, i64, i64, usize)> = BTreeMap::new();
            for m in messages {
                let e = by_partition.entry(m.partition).or_insert((
                    m.offset,
                    m.offset,
                    m.deliveries,
                    0,
                ));
                e.0 = e.0.min(m.offset);
                e.1 = e.1.max(m.offset);
                e.3 += 1;
            }
            by_partition
                .iter()
                .map(|(p, (lo, hi, d, n))| format!("p{p} {lo}..={hi} ({n} msgs, Deliveries {d})"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        Err(e) => e.clone(),
    };
    let fate = if get.dropped {
        "dropped".to_owned()
    } else {
        match &get.ack {
            Some(a) => format!("ack {:?} {:.0}–{:.0} ms", a.result, a.sent, a.received),
            None => "no ack".to_owned(),
        }
    };
    format!(
        "GET {i} (client {}, node {}, limit {}, {:.0}–{:.0} ms: {ranges}; {fate})",
        get.client, get.node, get.limit, get.sent, get.received
    )
}

struct Report {
    violations: Vec<String>,
    summary: String,
    dropped_answers: usize,
}

/// A delivery of one message: (index of its GET, the message).
type Delivery = (usize, Message);

fn check(
    gets: &[Get],
    stored: &[(usize, i64)],
    killed_at: Option<f64>,
    leftovers: &[Message],
) -> Report {
    let mut violations = Vec::new();
    let visibility = VISIBILITY_MS as f64;
    let mut by_value: Vec<Vec<Delivery>> = vec![Vec::new(); stored.len()];
    let mut failed_gets: BTreeMap<String, usize> = BTreeMap::new();
    let mut lost_capacity = 0usize;
    let mut gets_per_node = [0usize; NODES];
    let mut acks: BTreeMap<String, usize> = BTreeMap::new();
    for (i, get) in gets.iter().enumerate() {
        gets_per_node[get.node] += 1;
        let messages = match &get.outcome {
            Ok(messages) => messages,
            Err(e) => {
                let kind = e.split(':').next().unwrap_or_default().to_owned();
                let kind = if get.node == VICTIM {
                    format!("node {VICTIM} (killed): {kind}")
                } else {
                    kind
                };
                *failed_gets.entry(kind).or_default() += 1;
                lost_capacity += get.limit;
                continue;
            }
        };
        if !messages.is_empty() && get.receipt.is_none() {
            violations.push(format!(
                "GET {i} answered {} messages without a receipt",
                messages.len()
            ));
        }
        if messages.is_empty() && get.receipt.is_some() {
            violations.push(format!("GET {i} answered nothing with a receipt"));
        }
        if messages.len() > get.limit {
            violations.push(format!(
                "GET {i} answered {} messages for limit {}",
                messages.len(),
                get.limit
            ));
        }
        let mut last: HashMap<usize, i64> = HashMap::new();
        let mut seen: HashSet<usize> = HashSet::new();
        for m in messages {
            if m.value >= stored.len() {
                violations.push(format!("GET {i}: value {} was never produced", m.value));
                continue;
            }
            if stored[m.value] != (m.partition, m.offset) {
                violations.push(format!(
                    "GET {i}: value {} at {}:{} was stored at {:?}",
                    m.value, m.partition, m.offset, stored[m.value]
                ));
            }
            if !seen.insert(m.value) {
                violations.push(format!("GET {i} holds value {} twice", m.value));
            }
            if let Some(prev) = last.insert(m.partition, m.offset) {
                if m.offset <= prev {
                    violations.push(format!(
                        "GET {i}: partition {} goes from offset {prev} to {}",
                        m.partition, m.offset
                    ));
                }
            }
            if m.deliveries < 1 {
                violations.push(format!(
                    "GET {i}: value {} with Deliveries {}",
                    m.value, m.deliveries
                ));
            }
            by_value[m.value].push((i, *m));
        }
        if let Some(ack) = &get.ack {
            let key = format!(
                "{:?}{}",
                ack.result,
                if ack.ambiguous {
                    " (after a lost attempt)"
                } else {
                    ""
                }
            );
            *acks.entry(key).or_default() += 1;
            match ack.result {
                AckResult::NotFound | AckResult::Other(_) => violations.push(format!(
                    "GET {i}'s receipt: ack answered {:?}: {:?}",
                    ack.result, ack.attempts
                )),
                // The lease started after the GET was sent: an ack whose
                // answer came back before then + visibility was in time.
                AckResult::Expired if ack.received < get.sent + visibility - SLACK_MS => {
                    violations.push(format!(
                        "GET {i}'s receipt expired early: GET sent at {:.0} ms, 409 back at {:.0} ms ({:?})",
                        get.sent, ack.received, ack.attempts
                    ))
                }
                _ => {}
            }
        }
    }

    // Per message: completeness, causes, Deliveries, visibility.
    let mut causes: BTreeMap<Cause, usize> = BTreeMap::new();
    let mut deliveries_total = 0usize;
    let mut unseen_deliveries = 0i64;
    let mut acked_by: Vec<Option<&Ack>> = vec![None; stored.len()];
    let mut lost = Vec::new();
    let mut ambiguous_only = 0usize;
    for (value, deliveries) in by_value.iter_mut().enumerate() {
        deliveries.sort_by(|a, b| gets[a.0].received.total_cmp(&gets[b.0].received));
        deliveries_total += deliveries.len();
        let acked: Vec<&Ack> = deliveries
            .iter()
            .filter_map(|(g, _)| gets[*g].ack.as_ref())
            .filter(|a| a.result == AckResult::Acked)
            .collect();
        acked_by[value] = acked
            .iter()
            .copied()
            .min_by(|a, b| a.sent.total_cmp(&b.sent));
        if acked.is_empty() {
            // Its last ack may have been applied by the node that died. If
            // a node answered that ack, it was a repeat of an applied ack
            // (which answers 204) or came after the expiry (and then the
            // message would have come back): only an ack no node answered
            // can have settled it unseen.
            let last_ack = deliveries.last().and_then(|(g, _)| gets[*g].ack.as_ref());
            match last_ack {
                Some(a) if a.result == AckResult::Unknown => ambiguous_only += 1,
                Some(a) if a.ambiguous => violations.push(format!(
                    "value {value}: an ack lost with a node was retried and refused ({:?}), yet the message never came back",
                    a.attempts
                )),
                _ => lost.push(value),
            }
        }
        let Some(first) = deliveries.first() else {
            continue;
        };
        if first.1.deliveries > 1 {
            *causes.entry(Cause::LostAnswer).or_default() += 1;
        }
        let max = deliveries.iter().map(|d| d.1.deliveries).max().unwrap_or(0);
        if (max as usize) < deliveries.len() {
            violations.push(format!(
                "value {value}: delivered {} times, Deliveries at most {max}",
                deliveries.len()
            ));
        }
        unseen_deliveries += max - deliveries.len() as i64;
        for pair in deliveries.windows(2) {
            let ((pg, prev), (ng, next)) = (pair[0], pair[1]);
            let (p, n) = (&gets[pg], &gets[ng]);
            if next.deliveries <= prev.deliveries {
                violations.push(format!(
                    "value {value} (partition {} offset {}): Deliveries {} then {}; first {}; then {}",
                    prev.partition,
                    prev.offset,
                    prev.deliveries,
                    next.deliveries,
                    describe(pg, p),
                    describe(ng, n)
                ));
            }
            if n.received < p.sent + visibility - SLACK_MS {
                violations.push(format!(
                    "value {value} came back before its visibility ended: GET {pg} sent at {:.0} ms, GET {ng} answered at {:.0} ms",
                    p.sent, n.received
                ));
            }
            let cause = if p.dropped {
                Some(Cause::Dropped)
            } else {
                match &p.ack {
                    Some(a) if a.result == AckResult::Unknown => Some(Cause::AckLost),
                    Some(a) if a.result == AckResult::Expired && a.ambiguous => {
                        Some(Cause::AckLost)
                    }
                    Some(a) if a.result == AckResult::Expired => Some(Cause::Expired),
                    _ => None,
                }
            };
            match cause {
                Some(cause) => *causes.entry(cause).or_default() += 1,
                None => violations.push(format!(
                    "value {value} delivered again without a cause: GET {pg} (client {}, node {}, {:.0}–{:.0} ms, ack {:?}) then GET {ng} (client {}, node {}, {:.0}–{:.0} ms)",
                    p.client, p.node, p.sent, p.received, p.ack, n.client, n.node, n.sent, n.received
                )),
            }
        }
    }
    if unseen_deliveries > lost_capacity as i64 {
        violations.push(format!(
            "Deliveries counts {unseen_deliveries} deliveries no client saw, but failed GETs could hold at most {lost_capacity}"
        ));
    }
    if !lost.is_empty() {
        let never: Vec<usize> = lost
            .iter()
            .copied()
            .filter(|v| by_value[*v].is_empty())
            .collect();
        violations.push(format!(
            "{} messages never acked ({} never delivered), e.g. {:?}",
            lost.len(),
            never.len(),
            &lost[..lost.len().min(10)]
        ));
    }
    for m in leftovers {
        violations.push(format!(
            "after every message was acked, value {} ({}:{}) came back with Deliveries {}",
            m.value, m.partition, m.offset, m.deliveries
        ));
    }

    // Order within a partition. A message can only be delivered once every
    // message before it is settled, or in the same answer as them; so for
    // o1 < o2, some delivery of o1 was sent no later than the first
    // delivery of o2 came back, and the same for their first acks.
    let mut per_partition: Vec<Vec<(i64, usize)>> = vec![Vec::new(); PARTITIONS];
    for (value, (partition, offset)) in stored.iter().enumerate() {
        per_partition[*partition].push((*offset, value));
    }
    for (partition, offsets) in per_partition.iter_mut().enumerate() {
        offsets.sort_unstable();
        let mut latest_delivery_sent: Option<(f64, usize)> = None;
        let mut latest_ack_sent: Option<(f64, usize)> = None;
        for &(offset, value) in offsets.iter() {
            let deliveries = &by_value[value];
            if let Some(first) = deliveries.first() {
                let first_back = gets[first.0].received;
                if let Some((sent, before)) = latest_delivery_sent {
                    if first_back < sent {
                        violations.push(format!(
                            "partition {partition}: offset {offset} (value {value}) was delivered at {first_back:.0} ms, before the first delivery of the earlier value {before} was even asked for ({sent:.0} ms)"
                        ));
                    }
                }
                let earliest_sent = deliveries
                    .iter()
                    .map(|d| gets[d.0].sent)
                    .fold(f64::INFINITY, f64::min);
                if latest_delivery_sent.is_none_or(|(s, _)| earliest_sent > s) {
                    latest_delivery_sent = Some((earliest_sent, value));
                }
            }
            if let Some(ack) = acked_by[value] {
                let back = deliveries
                    .iter()
                    .filter_map(|d| gets[d.0].ack.as_ref())
                    .filter(|a| a.result == AckResult::Acked)
                    .map(|a| a.received)
                    .fold(f64::INFINITY, f64::min);
                if let Some((sent, before)) = latest_ack_sent {
                    if back < sent {
                        violations.push(format!(
                            "partition {partition}: offset {offset} (value {value}) was acked by {back:.0} ms, before any ack of the earlier value {before} was sent ({sent:.0} ms)"
                        ));
                    }
                }
                if latest_ack_sent.is_none_or(|(s, _)| ack.sent > s) {
                    latest_ack_sent = Some((ack.sent, value));
                }
            }
        }
    }

    // A partition is never delivered again while a range of it is leased.
    // A receipt's lease starts no later than its GET came back and ends no
    // earlier than its ack was sent (204) or the GET was sent plus the
    // visibility (anything else).
    let mut leases: Vec<Vec<(f64, f64, f64, usize)>> = vec![Vec::new(); PARTITIONS];
    for (i, get) in gets.iter().enumerate() {
        let Ok(messages) = &get.outcome else { continue };
        let parts: HashSet<usize> = messages.iter().map(|m| m.partition).collect();
        let ends_after = match &get.ack {
            Some(a) if a.result == AckResult::Acked => a.sent.min(get.sent + visibility - SLACK_MS),
            _ => get.sent + visibility - SLACK_MS,
        };
        for p in parts {
            if p < PARTITIONS {
                leases[p].push((get.sent, get.received, ends_after, i));
            }
        }
    }
    for (partition, list) in leases.iter_mut().enumerate() {
        list.sort_by(|a, b| a.1.total_cmp(&b.1));
        for (k, a) in list.iter().enumerate() {
            for b in &list[k + 1..] {
                // b was asked for after a came back, and answered before
                // a's lease could have ended.
                if b.0 > a.1 && b.1 < a.2 {
                    violations.push(format!(
                        "partition {partition} delivered by GET {} ({:.0}–{:.0} ms) while GET {}'s range was leased (answered {:.0} ms, leased until at least {:.0} ms)",
                        b.3, b.0, b.1, a.3, a.1, a.2
                    ));
                }
            }
        }
    }

    let dropped_answers = gets.iter().filter(|g| g.dropped).count();
    let duplicates: usize = causes
        .iter()
        .filter(|(c, _)| **c != Cause::LostAnswer)
        .map(|(_, n)| n)
        .sum();
    let summary = format!(
        "{} GETs (per node {:?}, {} non-empty, {} failed: {:?}), {deliveries_total} deliveries of {} messages, {duplicates} seen again (by cause: {:?}), {unseen_deliveries} deliveries counted but never seen (failed GETs could hold {lost_capacity}), {dropped_answers} answers dropped, acks {:?}, {ambiguous_only} messages settled only by an ack lost with the killed node; killed at {:?} ms",
        gets.len(),
        gets_per_node,
        gets.iter().filter(|g| matches!(&g.outcome, Ok(m) if !m.is_empty())).count(),
        failed_gets.values().sum::<usize>(),
        failed_gets,
        stored.len(),
        causes,
        acks,
        killed_at.map(|t| t.round()),
    );
    Report {
        violations,
        summary,
        dropped_answers,
    }
}
