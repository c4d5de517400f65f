//! `POST /topic/{topic}/ack`, `/nack` and `/extend`: settling the receipt
//! of a manual-mode GET. A receipt is bound to its tenant, topic and group;
//! any user of the tenant with `read` on the topic may settle it, and a
//! forged or foreign one is answered exactly like an unknown one.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use tenancy::store::{Receipt, Settlement};
use tenancy::TopicName;

use super::query::visibility;
use super::Service;
use crate::auth::{Access, Admitted, Principal};
use crate::config::ConsumeSettings;
use crate::error::{ApiError, Code};

/// One offset of one partition, named as a GET names them.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OffsetRef {
    #[serde(rename = "Partition")]
    #[schema(minimum = 0)]
    partition: i32,
    #[serde(rename = "Offset")]
    #[schema(minimum = 0)]
    offset: i64,
}

/// Most offsets one ack or nack may name: the largest `limit` a GET
/// allows by default, and well within the JSON body limit.
pub const MAX_NAMED_OFFSETS: usize = 1_000;

/// `{"receipt":"…"}`, optionally naming the offsets it settles.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// The `Sluice-Receipt` of a manual-mode GET.
    receipt: String,
    /// Settle only these; the rest of the receipt's range is released for
    /// redelivery, in order, without them.
    #[schema(min_items = 1, max_items = 1000)]
    offsets: Option<Vec<OffsetRef>>,
}

/// `{"receipt":"…"}`, optionally naming offsets and a delay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NackBody {
    receipt: String,
    /// Release only these; the rest stays leased under the receipt.
    #[schema(min_items = 1, max_items = 1000)]
    offsets: Option<Vec<OffsetRef>>,
    /// Milliseconds before the released messages may be delivered again
    /// (0, the default, up to `consume.max_visibility`).
    delay: Option<u64>,
}

/// `{"receipt":"…","visibility":MS}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    receipt: String,
    /// The new visibility, from now: 1 up to `consume.max_visibility` ms.
    visibility: u64,
}

/// Named offsets, checked: well-formed, and no more than a GET can return.
fn offsets(named: Option<&[OffsetRef]>) -> Result<Option<Vec<(i32, i64)>>, ApiError> {
    let Some(named) = named else {
        return Ok(None);
    };
    let bad = |message: String| ApiError::Input {
        code: Code::InvalidOffsets,
        message,
    };
    if named.is_empty() || named.len() > MAX_NAMED_OFFSETS {
        return Err(bad(format!(
            "offsets must name 1..={MAX_NAMED_OFFSETS} offsets (omit it to settle the whole receipt)"
        )));
    }
    if let Some(o) = named.iter().find(|o| o.partition < 0 || o.offset < 0) {
        return Err(bad(format!(
            "partition {} offset {} is not a valid offset",
            o.partition, o.offset
        )));
    }
    Ok(Some(
        named.iter().map(|o| (o.partition, o.offset)).collect(),
    ))
}

impl Service {
    /// Acks or nacks a receipt of `principal`'s tenant on `topic`, and
    /// mirrors any cursor that moved to the group's Kafka offsets.
    pub async fn settle(
        &self,
        principal: &Principal,
        topic: &TopicName,
        receipt: &str,
        settlement: Settlement,
    ) -> Result<(), ApiError> {
        let receipt = Receipt::parse(receipt)?;
        let tenant = &principal.tenant;
        let settled = self
            .parts
            .store
            .settle_receipt(tenant, topic, receipt, &settlement)
            .await?;
        // Partitions the receipt held are free again: wake the group's
        // waiters on this node.
        self.wakeups.wake(tenant, &settled.group, topic);
        let kafka_group = format!("{tenant}.{}", settled.group);
        for (partition, next_offset) in settled.advances {
            self.parts
                .mirror
                .record(&kafka_group, topic.as_str(), partition, next_offset);
        }
        let outcome = match settlement {
            Settlement::Ack { .. } => "ack",
            Settlement::Nack { .. } => "nack",
        };
        metrics::counter!("sluice_receipts_settled_total", "tenant" => tenant.to_string(), "outcome" => outcome)
            .increment(1);
        Ok(())
    }

    /// Moves a receipt's expiry to `visibility` from now.
    pub async fn extend(
        &self,
        principal: &Principal,
        topic: &TopicName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), ApiError> {
        let receipt = Receipt::parse(receipt)?;
        Ok(self
            .parts
            .store
            .extend_receipt(&principal.tenant, topic, receipt, visibility)
            .await?)
    }
}

/// Ack a manual-mode receipt: its messages are never delivered again.
#[utoipa::path(post, path = "/topic/{topic}/ack", impl_for = ack, tag = "data plane", security(("basic" = [])),
    summary = "Ack a receipt, or some of its offsets",
    description = "Commits the receipt's ranges. With `offsets`, settles only those and releases the rest of the range for redelivery, in order, without them. Repeating an ack answers 204 again.",
    params(("topic" = crate::name_schemas::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant")),
    request_body = AckBody,
    responses(
        (status = 204, description = "Acked (or acked before)"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, description = "`receipt_not_found`: unknown, forged, or another tenant's", body = crate::error::ErrorBody),
        (status = 409, description = "`receipt_expired`: the visibility ended or the receipt was nacked; its messages were or will be delivered again", body = crate::error::ErrorBody),
        (status = 413, description = "`payload_too_large`: a body over the JSON limit", body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody),
    ))]
#[actix_web::post("/topic/{topic}/ack")]
pub async fn ack(
    user: Admitted,
    path: web::Path<String>,
    body: web::Json<AckBody>,
    service: web::Data<Service>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Read)?;
    let offsets = offsets(body.offsets.as_deref())?;
    let settlement = Settlement::Ack { offsets };
    service
        .settle(&user, &topic, &body.receipt, settlement)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Nack a receipt: its messages (or the named ones) are delivered again.
#[utoipa::path(post, path = "/topic/{topic}/nack", impl_for = nack, tag = "data plane", security(("basic" = [])),
    summary = "Release a receipt, or some of its offsets, for redelivery",
    description = "Releases the whole receipt now, or only the named `offsets` (the rest stays leased). With `delay`, the released messages become deliverable only after it.",
    params(("topic" = crate::name_schemas::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant")),
    request_body = NackBody,
    responses(
        (status = 204, description = "Released"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, description = "`receipt_not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`receipt_expired`, or `receipt_settled` for a receipt already acked", body = crate::error::ErrorBody),
        (status = 413, description = "`payload_too_large`: a body over the JSON limit", body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody),
    ))]
#[actix_web::post("/topic/{topic}/nack")]
pub async fn nack(
    user: Admitted,
    path: web::Path<String>,
    body: web::Json<NackBody>,
    service: web::Data<Service>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Read)?;
    let settings = service.settings();
    let offsets = offsets(body.offsets.as_deref())?;
    let delay = delay(body.delay, settings)?;
    let settlement = Settlement::Nack { offsets, delay };
    service
        .settle(&user, &topic, &body.receipt, settlement)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Extend a receipt's visibility.
#[utoipa::path(post, path = "/topic/{topic}/extend", impl_for = extend, tag = "data plane", security(("basic" = [])),
    summary = "Extend a receipt's visibility",
    description = "The receipt's messages stay leased for `visibility` ms from now (at most `consume.max_visibility`).",
    params(("topic" = crate::name_schemas::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant")),
    request_body = ExtendBody,
    responses(
        (status = 204, description = "Extended"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, description = "`receipt_not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`receipt_expired`, or `receipt_settled`", body = crate::error::ErrorBody),
        (status = 413, description = "`payload_too_large`: a body over the JSON limit", body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody),
    ))]
#[actix_web::post("/topic/{topic}/extend")]
pub async fn extend(
    user: Admitted,
    path: web::Path<String>,
    body: web::Json<ExtendBody>,
    service: web::Data<Service>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Read)?;
    let visibility = visibility(&body.visibility.to_string(), service.settings())?;
    service
        .extend(&user, &topic, &body.receipt, visibility)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A nack's delay: 0 up to `consume.max_visibility`.
fn delay(ms: Option<u64>, settings: &ConsumeSettings) -> Result<Duration, ApiError> {
    let delay = Duration::from_millis(ms.unwrap_or(0));
    if delay > settings.max_visibility {
        return Err(ApiError::Input {
            code: Code::InvalidDelay,
            message: format!(
                "delay must be milliseconds in 0..={}",
                settings.max_visibility.as_millis()
            ),
        });
    }
    Ok(delay)
}
