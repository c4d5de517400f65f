//! `Idempotency-Key` on produce: a request sent again with the same key is
//! answered with the first one's answer instead of being produced again.
//!
//! The key lives in Postgres ([`tenancy::Store::claim_idempotency_key`]),
//! so that every node agrees on it. The produce of a keyed request runs in
//! its own task, which waits for every delivery report (librdkafka's
//! `message.timeout.ms`, a second below the produce deadline, bounds them)
//! even when the client was already told 504 or went away: the final
//! answer is recorded whenever it comes, and a retry finds it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::to_bytes;
use actix_web::http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{HttpResponse, ResponseError as _};
use sha2::{Digest, Sha256};
use tenancy::{KeyClaim, Store, TopicName};
use tokio::time::Instant;
use uuid::Uuid;

use super::request::ProduceQuery;
use super::response::respond;
use super::{Outcomes, Service};
use crate::auth::Principal;
use crate::error::{ApiError, Code};
use crate::kafka::{Delivered, DeliveryFailure, OutgoingMessage};

/// The request header.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The answer header of a replayed answer.
pub const IDEMPOTENCY_REPLAYED: &str = "idempotency-replayed";
/// The longest key.
pub const MAX_KEY_LEN: usize = 255;

/// A key as the client sent it: 1..=255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The request's key, if it sent one; a malformed key, or two of them,
    /// is a 400 `invalid_idempotency_key` (never silently ignored: the
    /// client counts on it).
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let mut values = headers.get_all(IDEMPOTENCY_KEY);
        let Some(value) = values.next() else {
            return Ok(None);
        };
        if values.next().is_some() {
            return Err(invalid_key("send one Idempotency-Key header, not several"));
        }
        Self::parse(value.as_bytes()).map(Some)
    }

    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.is_empty() || bytes.len() > MAX_KEY_LEN {
            return Err(invalid_key(&format!(
                "an Idempotency-Key is 1 to {MAX_KEY_LEN} characters; this one has {}",
                bytes.len()
            )));
        }
        if !bytes.iter().all(|b| b.is_ascii_graphic()) {
            return Err(invalid_key(
                "an Idempotency-Key is visible ASCII only (no spaces, no control or non-ASCII characters)",
            ));
        }
        // Checked above: every byte is ASCII.
        Ok(Self(String::from_utf8_lossy(bytes).into_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn invalid_key(message: &str) -> ApiError {
    ApiError::Input {
        code: Code::InvalidIdempotencyKey,
        message: message.to_owned(),
    }
}

/// What identifies a request for its key: the topic, everything in the
/// query that shapes the batch, and the body, each length-prefixed so that
/// no two requests hash alike by shifting bytes between fields.
pub fn request_hash(topic: &TopicName, query: &ProduceQuery, body: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    let format = match query.format {
        super::Format::Json => "json",
        super::Format::Raw => "raw",
    };
    let encoding = match query.encoding {
        crate::encoding::Encoding::None => "none",
        crate::encoding::Encoding::Base64 => "base64",
    };
    let key = query.key.as_deref();
    for field in [
        Some(topic.as_str().as_bytes()),
        Some(format.as_bytes()),
        Some(encoding.as_bytes()),
        key.map(str::as_bytes),
        Some(body),
    ] {
        match field {
            Some(bytes) => {
                hash.update([1]);
                hash.update((bytes.len() as u64).to_be_bytes());
                hash.update(bytes);
            }
            None => hash.update([0]),
        }
    }
    hash.finalize().into()
}

/// A keyed produce, ready to run.
#[derive(Debug)]
pub struct Keyed {
    pub principal: Principal,
    pub topic: TopicName,
    pub key: IdempotencyKey,
    pub hash: [u8; 32],
    pub batch: Vec<OutgoingMessage>,
}

/// An answer as it is recorded and replayed: status and JSON body.
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    body: Bytes,
    retry_after: Option<HeaderValue>,
}

impl Answer {
    async fn of(response: HttpResponse) -> Self {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(actix_web::http::header::RETRY_AFTER)
            .cloned();
        let body = to_bytes(response.into_body()).await.unwrap_or_default();
        Self {
            status,
            body,
            retry_after,
        }
    }

    /// 2xx and 4xx are final; 429 and 408 pass by themselves, and 5xx
    /// may go another way next time, so those are not recorded.
    fn is_final(&self) -> bool {
        (self.status.is_success() || self.status.is_client_error())
            && self.status != StatusCode::TOO_MANY_REQUESTS
            && self.status != StatusCode::REQUEST_TIMEOUT
    }

    fn respond(&self, replayed: bool) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status);
        builder.insert_header((CONTENT_TYPE, "application/json"));
        if let Some(retry_after) = &self.retry_after {
            builder.insert_header((actix_web::http::header::RETRY_AFTER, retry_after.clone()));
        }
        if replayed {
            builder.insert_header((IDEMPOTENCY_REPLAYED, "true"));
        }
        builder.body(self.body.clone())
    }
}

/// What an attempt that did not end in a final answer leaves for the
/// next: `[partition, offset]` for each message Kafka acknowledged, `null`
/// for the others.
type Stored = Vec<Option<(i32, i64)>>;

/// Runs a keyed produce: replays a recorded answer, refuses a reused key,
/// waits (up to the produce deadline) for a request holding the key, or
/// claims it and produces.
///
/// All of it runs in a task of its own, so that a client going away
/// cancels nothing between the claim and the record: a claim is never
/// left dangling by a dropped connection, and the produce's answer is
/// recorded whenever its delivery reports come. The client is answered
/// at the deadline at the latest: 504 if the produce is under way, 409
/// `idempotency_key_in_flight` if another request still holds the key.
pub async fn produce(
    service: web::Data<Service>,
    store: Store,
    keyed: Keyed,
) -> Result<HttpResponse, ApiError> {
    let deadline = Instant::now() + service.settings().timeout;
    let count = keyed.batch.len();
    let producing = Arc::new(AtomicBool::new(false));
    // On this worker's runtime: answers are actix responses, which stay on it.
    let task = actix_web::rt::spawn(settle(service, store, keyed, deadline, producing.clone()));
    match tokio::time::timeout_at(deadline, task).await {
        Ok(Ok(settled)) => settled.map(|(answer, replayed)| answer.respond(replayed)),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "a keyed produce task failed");
            Err(ApiError::Input {
                code: Code::Internal,
                message: "internal error; see the server log".into(),
            })
        }
        Err(_) if producing.load(Ordering::SeqCst) => {
            let unknown = DeliveryFailure::Unknown(
                "the request deadline passed before Kafka answered; retry with the same Idempotency-Key to get the final answer".into(),
            );
            Ok(respond(vec![Err(unknown); count]))
        }
        Err(_) => Err(in_flight()),
    }
}

fn in_flight() -> ApiError {
    ApiError::Input {
        code: Code::IdempotencyKeyInFlight,
        message: "a request with this Idempotency-Key is still in flight; retry later with the same key to get its answer".into(),
    }
}

/// Claims the key (waiting while another request holds it) and produces,
/// or finds the recorded answer: the answer, and whether it is a replay.
async fn settle(
    service: web::Data<Service>,
    store: Store,
    keyed: Keyed,
    deadline: Instant,
    producing: Arc<AtomicBool>,
) -> Result<(Answer, bool), ApiError> {
    let settings = service.settings();
    let mut pause = Duration::from_millis(10);
    loop {
        let found = store
            .claim_idempotency_key(
                &keyed.principal.tenant,
                keyed.key.as_str(),
                &keyed.hash,
                // Covers the produce (its delivery reports come within the
                // deadline) with room to record the answer; a node that
                // dies holding the claim blocks the key no longer.
                settings.timeout * 2,
                settings.idempotency_ttl,
            )
            .await?;
        match found {
            KeyClaim::Claimed { claim, stored } => {
                producing.store(true, Ordering::SeqCst);
                let answer = produce_and_record(service, store, keyed, claim, stored).await;
                return Ok((answer, false));
            }
            KeyClaim::Recorded { status, response } => {
                metrics::counter!("sluice_idempotent_replays_total").increment(1);
                let answer = Answer {
                    status: StatusCode::from_u16(status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    body: Bytes::from(response),
                    retry_after: None,
                };
                return Ok((answer, true));
            }
            KeyClaim::Reused => {
                return Err(ApiError::Input {
                    code: Code::IdempotencyKeyReused,
                    message: "this Idempotency-Key was already used with a different request (topic, query or body); use a new key for a new request".into(),
                });
            }
            KeyClaim::InFlight => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(in_flight());
                }
                tokio::time::sleep(pause.min(deadline - now)).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    }
}

/// The task of a claimed key: sends what an earlier attempt did not store,
/// then records the final answer or releases the key.
async fn produce_and_record(
    service: web::Data<Service>,
    store: Store,
    keyed: Keyed,
    claim: Uuid,
    stored: Option<Vec<u8>>,
) -> Answer {
    let Keyed {
        principal,
        topic,
        key,
        batch,
        ..
    } = keyed;
    let mut earlier: Stored = stored
        .and_then(|bytes| serde_json::from_slice::<Stored>(&bytes).ok())
        .filter(|earlier| earlier.len() == batch.len())
        .unwrap_or_else(|| vec![None; batch.len()]);
    let missing: Vec<OutgoingMessage> = batch
        .into_iter()
        .zip(&earlier)
        .filter(|(_, done)| done.is_none())
        .map(|(message, _)| message)
        .collect();
    let sent = if missing.is_empty() {
        Ok(Vec::new())
    } else {
        service
            .produce_awaiting_reports(&principal, &topic, missing)
            .await
    };
    let outcomes: Outcomes = match sent {
        Ok(outcomes) => {
            let mut fresh = outcomes.into_iter();
            earlier
                .iter()
                .map(|done| match done {
                    Some((partition, offset)) => Ok(Delivered {
                        partition: *partition,
                        offset: *offset,
                    }),
                    None => fresh.next().unwrap_or_else(|| {
                        Err(DeliveryFailure::Unknown("no delivery report".into()))
                    }),
                })
                .collect()
        }
        Err(refused) => {
            // Refused before anything was sent (quota, partition, unknown
            // topic, Kafka down): nothing to remember but what was.
            let answer = Answer::of(refused.error_response()).await;
            release(&store, &principal, &key, claim, &earlier).await;
            return answer;
        }
    };
    for (slot, outcome) in earlier.iter_mut().zip(&outcomes) {
        if let Ok(delivered) = outcome {
            *slot = Some((delivered.partition, delivered.offset));
        }
    }
    let answer = Answer::of(respond(outcomes)).await;
    if answer.is_final() {
        match store
            .record_idempotent_answer(
                &principal.tenant,
                key.as_str(),
                claim,
                answer.status.as_u16(),
                &answer.body,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                tenant = %principal.tenant,
                "a keyed produce outlived its claim; its answer was not recorded"
            ),
            Err(err) => tracing::warn!(
                tenant = %principal.tenant, error = %err,
                "cannot record a keyed produce's answer; a retry will produce again"
            ),
        }
    } else {
        release(&store, &principal, &key, claim, &earlier).await;
    }
    answer
}

/// Releases the claim, keeping what Kafka acknowledged so far.
async fn release(
    store: &Store,
    principal: &Principal,
    key: &IdempotencyKey,
    claim: Uuid,
    stored: &Stored,
) {
    let bytes = serde_json::to_vec(stored).unwrap_or_default();
    if let Err(err) = store
        .release_idempotency_key(&principal.tenant, key.as_str(), claim, &bytes)
        .await
    {
        // The claim then expires at the produce deadline by itself.
        tracing::warn!(tenant = %principal.tenant, error = %err, "cannot release an idempotency key");
    }
}

/// Starts the purge of expired keys and keys over the per-tenant cap on
/// this node, every `interval`.
pub fn spawn_purge(store: Store, max_per_tenant: u64, interval: Duration) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match store.purge_idempotency_keys(max_per_tenant).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "forgot idempotency keys"),
                Err(err) => {
                    tracing::warn!(error = %err, "cannot purge idempotency keys; retrying later")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert!(IdempotencyKey::parse(b"order-42:retry_1").is_ok());
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
        for bad in [
            &b""[..],
            &[b'k'; 256],
            b"has space",
            b"tab\t",
            "caf\u{e9}".as_bytes(),
        ] {
            let err = IdempotencyKey::parse(bad).unwrap_err();
            assert_eq!(err.code(), Code::InvalidIdempotencyKey);
        }
    }

    #[test]
    fn the_hash_tells_apart_bodies_topics_and_queries() {
        let tenant = tenancy::TenantName::parse("acme").unwrap();
        let topic = TopicName::parse(&tenant, "acme.orders").unwrap();
        let other = TopicName::parse(&tenant, "acme.other").unwrap();
        let json = ProduceQuery::default();
        let raw = ProduceQuery {
            format: super::super::Format::Raw,
            ..ProduceQuery::default()
        };
        let base = request_hash(&topic, &json, b"[]");
        assert_eq!(base, request_hash(&topic, &json, b"[]"));
        assert_ne!(base, request_hash(&other, &json, b"[]"));
        assert_ne!(base, request_hash(&topic, &raw, b"[]"));
        assert_ne!(base, request_hash(&topic, &json, b"[ ]"));
    }
}
