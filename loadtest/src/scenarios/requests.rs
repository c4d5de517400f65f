//! The sluice requests the scenarios send: produce, consume and the no-op
//! routes, each as an engine operation.

use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;

use crate::client::Pool;
use crate::engine::{Op, Outcome, Status};

/// A JSON produce body of `batch` messages whose values are `msg_bytes`
/// ASCII characters: the same payload bytes the native producer sends.
pub fn produce_body(msg_bytes: usize, batch: usize) -> Bytes {
    let value = "x".repeat(msg_bytes);
    let one = format!("{{\"Value\":\"{value}\"}}");
    let mut body = String::with_capacity((one.len() + 1) * batch + 2);
    body.push('[');
    for i in 0..batch {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&one);
    }
    body.push(']');
    Bytes::from(body)
}

/// The kind of a request that got no HTTP status.
pub fn transport(e: &reqwest::Error) -> Status {
    if e.is_timeout() {
        Status::Error("timeout")
    } else if e.is_connect() {
        Status::Error("connect")
    } else {
        Status::Error("transport")
    }
}

/// `POST /topic/{topic}` with a prepared body; `auths[seq % len]` picks
/// the user.
pub fn produce(
    pool: Pool,
    auths: Arc<Vec<String>>,
    topic: &str,
    body: Bytes,
    batch: usize,
    msg_bytes: usize,
) -> Op {
    let url = format!("{}/topic/{topic}", pool.base);
    Arc::new(move |worker, seq| {
        let request = pool
            .client(worker)
            .post(&url)
            .header("authorization", &auths[(seq as usize) % auths.len()])
            .header("content-type", "application/json")
            .body(body.clone());
        async move {
            match request.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let _ = resp.bytes().await;
                    if status.is_success() {
                        Outcome::ok(batch as u64, (batch * msg_bytes) as u64)
                    } else {
                        Outcome::failed(Status::Http(status.as_u16()))
                    }
                }
                Err(e) => Outcome::failed(transport(&e)),
            }
        }
        .boxed()
    })
}

/// [`produce`] with `Idempotency-Key: {prefix}-{worker}-{seq}`: a new key
/// per request, so every request claims and records one (none replays).
pub fn produce_keyed(
    pool: Pool,
    auths: Arc<Vec<String>>,
    topic: &str,
    body: Bytes,
    (batch, msg_bytes): (usize, usize),
    prefix: String,
) -> Op {
    let url = format!("{}/topic/{topic}", pool.base);
    Arc::new(move |worker, seq| {
        let request = pool
            .client(worker)
            .post(&url)
            .header("authorization", &auths[(seq as usize) % auths.len()])
            .header("content-type", "application/json")
            .header("idempotency-key", format!("{prefix}-{worker}-{seq}"))
            .body(body.clone());
        async move {
            match request.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let replayed = resp.headers().contains_key("idempotency-replayed");
                    let _ = resp.bytes().await;
                    if status.is_success() && !replayed {
                        Outcome::ok(batch as u64, (batch * msg_bytes) as u64)
                    } else if replayed {
                        Outcome::failed(Status::Error("replayed"))
                    } else {
                        Outcome::failed(Status::Http(status.as_u16()))
                    }
                }
                Err(e) => Outcome::failed(transport(&e)),
            }
        }
        .boxed()
    })
}

/// Counts the messages in a consume answer without parsing it: the load
/// generator shares the machine, so it spends as little CPU as it can.
fn count_messages(body: &[u8]) -> u64 {
    const NEEDLE: &[u8] = b"\"Offset\":";
    body.windows(NEEDLE.len()).filter(|w| *w == NEEDLE).count() as u64
}

/// `GET /topic/{topic}?limit=N&group=G`, with the group `groups[seq % len]`.
pub fn consume(
    pool: Pool,
    auth: String,
    topic: &str,
    limit: usize,
    groups: Arc<Vec<String>>,
    msg_bytes: usize,
) -> Op {
    let urls: Arc<Vec<String>> = Arc::new(
        groups
            .iter()
            .map(|g| format!("{}/topic/{topic}?limit={limit}&group={g}", pool.base))
            .collect(),
    );
    Arc::new(move |worker, seq| {
        let request = pool
            .client(worker)
            .get(&urls[(seq as usize) % urls.len()])
            .header("authorization", &auth);
        async move {
            match request.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    if status.is_success() {
                        let n = count_messages(&body);
                        Outcome::ok(n, n * msg_bytes as u64)
                    } else {
                        Outcome::failed(Status::Http(status.as_u16()))
                    }
                }
                Err(e) => Outcome::failed(transport(&e)),
            }
        }
        .boxed()
    })
}

/// Manual-ack mode: `GET /topic/{topic}?limit=N&group=G&ack=manual`, then
/// `POST /topic/{topic}/ack` of its receipt; one operation is both, and it
/// moved the GET's messages once the ack answered 204. An empty answer
/// (no receipt) is a success that moved nothing.
pub fn consume_manual(
    pool: Pool,
    auth: String,
    topic: &str,
    limit: usize,
    group: &str,
    msg_bytes: usize,
) -> Op {
    let url = format!(
        "{}/topic/{topic}?limit={limit}&group={group}&ack=manual",
        pool.base
    );
    let ack_url = format!("{}/topic/{topic}/ack", pool.base);
    Arc::new(move |worker, _| {
        let client = pool.client(worker).clone();
        let (url, ack_url, auth) = (url.clone(), ack_url.clone(), auth.clone());
        async move {
            let resp = match client.get(&url).header("authorization", &auth).send().await {
                Ok(resp) => resp,
                Err(e) => return Outcome::failed(transport(&e)),
            };
            let status = resp.status();
            let receipt = resp
                .headers()
                .get("sluice-receipt")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = resp.bytes().await.unwrap_or_default();
            if !status.is_success() {
                return Outcome::failed(Status::Http(status.as_u16()));
            }
            let n = count_messages(&body);
            let Some(receipt) = receipt.filter(|_| n > 0) else {
                return Outcome::ok(0, 0);
            };
            let ack = client
                .post(&ack_url)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .body(format!(
                    "{{\"receipt\":{}}}",
                    serde_json::Value::from(receipt)
                ))
                .send()
                .await;
            match ack {
                Ok(resp) if resp.status().is_success() => {
                    let _ = resp.bytes().await;
                    Outcome::ok(n, n * msg_bytes as u64)
                }
                Ok(resp) => Outcome::failed(Status::Http(resp.status().as_u16())),
                Err(e) => Outcome::failed(transport(&e)),
            }
        }
        .boxed()
    })
}

/// Sends a request and keeps only its status: a success, or the HTTP
/// status or transport error that failed it.
pub async fn status_only(request: reqwest::RequestBuilder) -> Outcome {
    match request.send().await {
        Ok(resp) => {
            let status = resp.status();
            let _ = resp.bytes().await;
            if status.is_success() {
                Outcome::ok(0, 0)
            } else {
                Outcome::failed(Status::Http(status.as_u16()))
            }
        }
        Err(e) => Outcome::failed(transport(&e)),
    }
}

/// `GET {path}`, with the user `auths[seq % len]` when given.
pub fn get(pool: Pool, path: &str, auths: Option<Arc<Vec<String>>>) -> Op {
    let url = format!("{}{path}", pool.base);
    Arc::new(move |worker, seq| {
        let mut request = pool.client(worker).get(&url);
        if let Some(auths) = &auths {
            request = request.header("authorization", &auths[(seq as usize) % auths.len()]);
        }
        status_only(request).boxed()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn produce_body_holds_the_batch_with_exact_value_sizes() {
        let body = produce_body(100, 3);
        let parsed: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed.len(), 3);
        for m in parsed {
            assert_eq!(m["Value"].as_str().unwrap().len(), 100);
        }
    }

    #[test]
    fn messages_are_counted_by_their_offsets() {
        let body = br#"[{"Topic":"t","Partition":0,"Offset":1,"Value":"a"},{"Topic":"t","Partition":1,"Offset":7,"Value":"b"}]"#;
        assert_eq!(count_messages(body), 2);
        assert_eq!(count_messages(b"[]"), 0);
    }
}
