//! Request ids: every response carries `X-Request-Id`, the id under which
//! the request was logged, and every JSON error body carries it as
//! `request_id`, so a user's bug report leads straight to the log lines.
//!
//! Error responses keep their document, typed, in the response's
//! extensions ([`ErrorDocument`]); the id is added to it and the body
//! written again, so no body is ever parsed here.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpResponse};
use tracing_actix_web::RequestId;

use crate::error::ErrorDocument;

const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Echoes the request id, and adds it to error documents.
pub async fn tag_responses(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(ToString::to_string);
    // Inner middleware answers errors as responses (not `Err`), so that
    // they pass through here and are tagged too.
    let response = next.call(req).await?.map_into_boxed_body();
    let Some(id) = id else { return Ok(response) };
    let (req, mut res) = response.into_parts();
    let document = res.extensions_mut().remove::<ErrorDocument>();
    if let Some(ErrorDocument(mut fields)) = document {
        fields.insert(
            "request_id".to_owned(),
            serde_json::Value::String(id.clone()),
        );
        let mut tagged = HttpResponse::build(res.status());
        // The body is written again, plain: the encoding and length of the
        // one it replaces (compressed, if it was 1 KiB or more and the
        // client accepts gzip) must not describe it.
        for (name, value) in res.headers() {
            if name != CONTENT_ENCODING && name != CONTENT_LENGTH {
                tagged.insert_header((name.clone(), value.clone()));
            }
        }
        res = tagged.json(fields);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(ServiceResponse::new(req, res))
}
