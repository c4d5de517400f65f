//! `POST /topic/{topic}`: produce, answering only once Kafka has
//! acknowledged every message (acks=all, idempotent producer).

mod announce;
pub mod request;
pub mod response;

use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::middleware::Next;
use actix_web::web::{self, BytesMut};
use actix_web::{HttpResponse, ResponseError as _};
use futures::StreamExt;

pub use announce::Announcer;
pub use request::{Encoding, Format, ProduceQuery};

use crate::auth::{Access, Authenticated};
use crate::body_deadline::timeout_of;
use crate::config::ProduceSettings;
use crate::error::ApiError;
use crate::kafka::{DeliveryFailure, Producer, TopicAdmin, Watermarks};
use crate::ratelimit::TenantLimits;

/// Refuses a body whose declared length is over the limit before reading
/// it, or authenticating, or anything else.
pub async fn limit_declared_body(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<ProduceSettings>>()
        .map_or(usize::MAX, |s| s.max_body_bytes);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        let refusal = ApiError::PayloadTooLarge { limit }.error_response();
        return Ok(req.into_response(refusal).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Reads the body, stopping as soon as it passes the limit (a chunked body
/// declares no length), or at the body deadline (`http.body_read_timeout_ms`,
/// enforced on the payload by [`crate::body_deadline`]).
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<BytesMut, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| match timeout_of(&e) {
            Some(timeout) => ApiError::BodyTimeout {
                timeout_ms: timeout.as_millis(),
            },
            None => ApiError::BadRequest {
                code: "unreadable_body",
                message: format!("the request body could not be read: {e}"),
            },
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The produce handler. Its arguments are extractors, one per dependency.
#[allow(clippy::too_many_arguments)]
#[utoipa::path(post, path = "/topic/{topic}", impl_for = produce,
    summary = "Produce: answers once Kafka has acknowledged every message",
    description = "Writes a JSON array of messages (or, with `format=raw`, the body as one message) to a topic the caller may write; the offsets come back in request order.", tag = "data plane", security(("basic" = [])),
    params(
        ("topic" = crate::openapi::names::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant"),
        ("format" = Option<Format>, Query, description = "`json` (default): a JSON array of messages; `raw`: the body is one value, byte for byte"),
        ("encoding" = Option<Encoding>, Query, description = "`base64`: keys, values and header values are base64 (`none`, the default: UTF-8 as they are)"),
        ("key" = Option<String>, Query, description = "the key of a raw message"),
    ),
    request_body(content = Vec<request::JsonMessage>, description = "A JSON array of messages (or, with format=raw, any bytes)"),
    responses(
        (status = 200, description = "Every message acknowledged, offsets in request order", body = response::Offsets),
        (status = 400, description = "Bad input; or Kafka refused a record or its timestamp for good, and then `results` (as in Failure) says which", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 413, description = "Over a limit; or Kafka refused a message as too large, and then `results` (as in Failure) says which", body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody),
        (status = 503, description = "Some or all not written; `results` says which", body = response::Failure),
        (status = 504, description = "Some outcomes unknown; `results` says which", body = response::Failure),
    ))]
#[actix_web::post(
    "/topic/{topic}",
    wrap = "actix_web::middleware::from_fn(limit_declared_body)"
)]
pub async fn produce(
    user: Authenticated,
    path: web::Path<String>,
    query: web::Query<ProduceQuery>,
    payload: web::Payload,
    producer: web::Data<Producer>,
    topics: web::Data<TopicAdmin>,
    limits: web::Data<ProduceSettings>,
    watermarks: web::Data<Watermarks>,
    announcer: web::Data<Announcer>,
    quotas: web::Data<TenantLimits>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.0.authorize(&path, Access::Write)?;
    let body = read_body(payload, limits.max_body_bytes).await?;
    let messages = request::parse(&query, &body, &limits)?;
    let bytes: usize = messages.iter().map(request::size).sum();
    quotas.charge_before(&user.0.tenant, user.0.quota, bytes as u64)?;
    let partitions = topics.partitions(topic.as_str()).await?;
    if let Some((index, p)) = messages
        .iter()
        .enumerate()
        .find_map(|(i, m)| m.partition.filter(|p| *p >= partitions).map(|p| (i, p)))
    {
        return Err(ApiError::BadRequest {
            code: "invalid_partition",
            message: format!("message {index}: partition {p} does not exist; '{topic}' has {partitions} partition(s)"),
        });
    }
    let deadline = Duration::from_millis(limits.timeout_ms);
    let outcomes = match tokio::time::timeout(
        deadline,
        producer.send_batch(topic.as_str(), &messages),
    )
    .await
    {
        Ok(outcomes) => outcomes,
        Err(_) => {
            let unknown = DeliveryFailure::Unknown(
                "the request deadline passed before Kafka answered".into(),
            );
            vec![Err(unknown); messages.len()]
        }
    };
    let tenant = user.0.tenant.to_string();
    let (mut stored, mut stored_bytes) = (0u64, 0u64);
    for (message, outcome) in messages.iter().zip(&outcomes) {
        match outcome {
            Ok(_) => {
                stored += 1;
                stored_bytes += request::size(message) as u64;
            }
            Err(DeliveryFailure::Rejected(rejection, _)) => {
                // The client's fault, not Kafka's: kept out of the delivery
                // errors that page operators.
                metrics::counter!("sluice_produce_rejected_total", "code" => rejection.code())
                    .increment(1);
            }
            Err(failure) => {
                let kind = match failure {
                    DeliveryFailure::Unknown(_) => "unknown",
                    _ => "not_persisted",
                };
                metrics::counter!("sluice_produce_delivery_errors_total", "kind" => kind)
                    .increment(1);
            }
        }
    }
    metrics::counter!("sluice_messages_produced_total", "tenant" => tenant.clone())
        .increment(stored);
    metrics::counter!("sluice_bytes_produced_total", "tenant" => tenant).increment(stored_bytes);
    for delivered in outcomes.iter().flatten() {
        watermarks.observe(topic.as_str(), delivered.partition, delivered.offset + 1);
        announcer.announce(topic.as_str(), delivered.partition, delivered.offset + 1);
    }
    Ok(response::respond(outcomes))
}
