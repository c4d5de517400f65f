//! `GET /topic/{topic}`: consume with automatic offsets, from any node.
//! The handler parses the query, hands it to the [`Service`] and renders
//! the messages; see [`service`] for how any node serves any GET.

mod admission;
mod query;
mod response;
mod retention;
mod service;

use actix_web::{web, HttpResponse};

pub use admission::{ConsumeAdmission, ConsumeSlot};
pub use query::{ConsumeParams, ConsumeQuery};
pub use response::OutMessage;
pub use retention::spawn_group_retention;
pub use service::{Delivery, Parts, Service};

use crate::auth::{Access, Admitted};
use crate::error::ApiError;

/// The header that reports messages skipped because the cursor had fallen
/// behind retention.
pub const SKIPPED_HEADER: &str = "Sluice-Skipped-Messages";

/// The header that flags a cursor moved to the end of a truncated log
/// (nothing skipped that exists, nothing read again).
pub const RESET_HEADER: &str = "Sluice-Cursor-Reset";

/// `GET /topic/{topic}`: validates the query, hands it to the [`Service`]
/// and renders what it delivered.
pub async fn consume(
    user: Admitted,
    path: web::Path<String>,
    query: web::Query<ConsumeQuery>,
    service: web::Data<Service>,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Read)?;
    let params = query.validate(service.settings(), &user.username)?;
    let delivery = service.consume(&user, &topic, &params).await?;
    Ok(response::render(&topic, delivery, params.encoding))
}
