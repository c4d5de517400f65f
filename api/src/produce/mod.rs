//! `POST /topic/{topic}`: produce, answering only once Kafka has
//! acknowledged every message (acks=all, idempotent producer).

mod announce;
mod body;
pub mod idempotency;
pub mod request;
pub mod response;
mod service;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::middleware::Next;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse, ResponseError as _};

pub use announce::Announcer;
pub use idempotency::spawn_purge as spawn_idempotency_purge;
pub use request::{Format, ProduceQuery};
pub use service::{Outcomes, Service};

use crate::auth::{Access, Admitted};
use crate::error::ApiError;

/// Refuses a body whose declared length is over the limit before reading
/// it, or authenticating, or anything else.
pub async fn limit_declared_body(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<Service>>()
        .map_or(usize::MAX, |s| s.settings().max_body_bytes);
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

/// `POST /topic/{topic}`: parses, hands the batch to the [`Service`] and
/// renders each message's outcome.
#[utoipa::path(post, path = "/topic/{topic}", impl_for = produce,
    summary = "Produce: answers once Kafka has acknowledged every message",
    description = "Writes a JSON array of messages (or, with `format=raw`, the body as one message) to a topic the caller may write; the offsets come back in request order. The body may be compressed (`Content-Encoding: gzip`, `zstd` or `br`): the body limit counts the decompressed bytes.", tag = "data plane", security(("basic" = [])),
    params(
        ("topic" = crate::name_schemas::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant"),
        ("format" = Option<Format>, Query, description = "`json` (default): a JSON array of messages; `raw`: the body is one value, byte for byte"),
        ("encoding" = Option<crate::encoding::Encoding>, Query, description = "`base64`: keys, values and header values are base64 (`none`, the default: UTF-8 as they are)"),
        ("key" = Option<String>, Query, description = "the key of a raw message"),
        ("Idempotency-Key" = Option<crate::name_schemas::IdempotencyKey>, Header, description = "1 to 255 visible ASCII characters, unique per request of the tenant: the same request sent again within `produce.idempotency_ttl_seconds` gets the first answer (status and offsets, with `Idempotency-Replayed: true`) and is not produced again"),
    ),
    request_body(content = Vec<request::JsonMessage>, description = "A JSON array of messages (or, with format=raw, any bytes)"),
    responses(
        (status = 200, description = "Every message acknowledged, offsets in request order", body = response::Offsets,
            headers(("Idempotency-Replayed" = String, description = "`true` on the recorded answer to an `Idempotency-Key` sent again; also on recorded 4xx answers"))),
        (status = 400, description = "Bad input (`invalid_idempotency_key`: a malformed key); or Kafka refused a record or its timestamp for good, and then `results` (as in Failure) says which", body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`idempotency_key_in_flight`: a request with this `Idempotency-Key` was still in flight at the produce deadline; retry with the same key", body = crate::error::ErrorBody),
        (status = 422, description = "`idempotency_key_reused`: the `Idempotency-Key` was used with a different request", body = crate::error::ErrorBody),
        (status = 415, description = "`unsupported_content_encoding`: a `Content-Encoding` other than gzip, zstd, br or identity", body = crate::error::ErrorBody),
        (status = 413, description = "Over a limit (the body's, counted decompressed); or Kafka refused a message as too large, and then `results` (as in Failure) says which", body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody),
        (status = 503, description = "Some or all not written; `results` says which", body = response::Failure),
        (status = 504, description = "Some outcomes unknown; `results` says which", body = response::Failure),
    ))]
#[actix_web::post(
    "/topic/{topic}",
    wrap = "actix_web::middleware::from_fn(limit_declared_body)"
)]
pub async fn produce(
    req: HttpRequest,
    user: Admitted,
    path: web::Path<String>,
    query: web::Query<ProduceQuery>,
    payload: web::Payload,
    service: web::Data<Service>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Write)?;
    let key = idempotency::IdempotencyKey::from_headers(req.headers())?;
    let body = body::read(req.headers(), payload, service.settings().max_body_bytes).await?;
    let batch = request::parse(&query, &body, service.settings())?;
    if let Some(key) = key {
        let keyed = idempotency::Keyed {
            principal: (*user).clone(),
            hash: idempotency::request_hash(&topic, &query, &body),
            topic,
            key,
            batch,
        };
        let store = service.store().clone();
        return idempotency::produce(service, store, keyed).await;
    }
    let outcomes = service.produce(&user, &topic, batch).await?;
    Ok(response::respond(outcomes))
}
