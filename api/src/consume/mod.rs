//! `GET /topic/{topic}`: consume with automatic offsets, from any node.
//! The handler parses the query, hands it to the [`Service`] and renders
//! the messages; see [`service`] for how any node serves any GET.

mod admission;
mod dead_letters;
mod filters;
mod query;
mod receipt_purge;
mod receipts;
mod response;
mod retention;
mod service;
mod wakeups;

use actix_web::{web, HttpResponse};

pub use admission::{ConsumeAdmission, ConsumeSlot};
pub use query::{AckMode, ConsumeParams, ConsumeQuery, Rendering};
pub use receipt_purge::spawn_receipt_purge;
pub use receipts::{ack, extend, nack};
pub use response::render_messages;
pub use response::OutMessage;
pub use retention::spawn_group_retention;
pub use service::{Delivery, Parts, Poll, Service};
pub use wakeups::Waiter;

use crate::auth::{Access, Admitted};
use crate::error::ApiError;

/// The header that reports messages skipped because the cursor had fallen
/// behind retention.
pub const SKIPPED_HEADER: &str = "Sluice-Skipped-Messages";

/// The header that reports messages read and skipped because they did not
/// match the group's filter on the topic.
pub const FILTERED_HEADER: &str = "Sluice-Filtered-Messages";

/// The header that carries a manual-mode answer's receipt.
pub const RECEIPT_HEADER: &str = "Sluice-Receipt";

/// The header that flags a cursor moved to the end of a truncated log
/// (nothing skipped that exists, nothing read again).
pub const RESET_HEADER: &str = "Sluice-Cursor-Reset";

/// `GET /topic/{topic}`: validates the query, hands it to the [`Service`]
/// and renders what it delivered.
#[utoipa::path(get, path = "/topic/{topic}", impl_for = consume,
    summary = "Consume: up to `limit` messages, each delivered once per group",
    description = "Reads the topic for a consumer group of the caller's tenant (the user's own unless `group` is given), waiting up to `wait` ms for a first message.", tag = "data plane", security(("basic" = [])),
    params(
        ("topic" = crate::name_schemas::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant"),
        ("limit" = Option<u64>, Query, description = "Messages at most: 1 up to `consume.max_limit` (default 1000); 1 unless given"),
        ("group" = Option<crate::name_schemas::GroupName>, Query, description = "A group of the tenant; the user's own unless given"),
        ("wait" = Option<u64>, Query, description = "Long poll, in ms: 0 (the default) up to `consume.max_wait` (default 30 s)"),
        ("encoding" = Option<crate::encoding::Encoding>, Query, description = "`base64`: keys, values and header values are base64"),
        ("value" = Option<String>, Query, description = "`string` (the default): `Value` is a string. `json`: a value that parses as JSON goes out as that JSON (object, array, number, …); one that does not stays a string marked `\"ValueEncoding\":\"string\"` (or `base64` if not UTF-8). Not with `encoding=base64` (400 `invalid_query`)", example = "json"),
        ("ack" = Option<String>, Query, description = "`auto` (the default): each message is delivered once per group, the position moving before the answer is written. `manual`: at least once; the messages stay leased under the `Sluice-Receipt` until acked, and are delivered again after `visibility`", example = "manual"),
        ("visibility" = Option<u64>, Query, description = "With `ack=manual`: how long the messages stay leased, in ms: 1 up to `consume.max_visibility` (default 12 h); `consume.visibility_timeout` (default 30 s) unless given"),
    ),
    responses(
        (status = 200, description = "Up to `limit` messages; each delivered once per group", body = Vec<OutMessage>,
            headers(
                ("Sluice-Skipped-Messages" = i64, description = "messages skipped because the group's position had fallen behind retention (0 with Sluice-Cursor-Reset)"),
                ("Sluice-Filtered-Messages" = u64, description = "messages read and skipped because they did not match the group's filter on the topic (see `PUT /topic/{topic}/groups/{group}`); their bytes count against the tenant's byte quota"),
                ("Sluice-Cursor-Reset" = String, description = "`truncated`: the group's position lay beyond the end of the log and moved to the end"),
                ("Sluice-Receipt" = String, description = "`ack=manual` with messages: the receipt to ack, nack or extend them with"),
            )),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`group_limit_reached`: a new group past the tenant's max_groups", body = crate::error::ErrorBody),
        (status = 413, description = "A declared body over `produce.max_body_bytes`", body = crate::error::ErrorBody),
        (status = 429, description = "`rate_limited`, or `too_many_consumes` past the tenant's concurrent consumes on this node; with Retry-After", body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody),
    ))]
#[actix_web::get(
    "/topic/{topic}",
    wrap = "actix_web::middleware::from_fn(crate::produce::limit_declared_body)"
)]
pub async fn consume(
    user: Admitted,
    path: web::Path<String>,
    query: web::Query<ConsumeQuery>,
    service: web::Data<Service>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Read)?;
    let params = query.validate(service.settings(), &user.username)?;
    let delivery = service.consume(&user, &topic, &params).await?;
    Ok(response::render(&topic, delivery, params.rendering))
}
