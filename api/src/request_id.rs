//! Request ids: every response carries `X-Request-Id`, the id under which
//! the request was logged, and every JSON error body carries it as
//! `request_id`, so a user's bug report leads straight to the log lines.

use actix_web::body::{to_bytes, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpResponse};
use tracing_actix_web::RequestId;

const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Largest error body worth rewriting; ours are a few hundred bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Echoes the request id, and adds it to JSON error bodies.
pub async fn tag_responses(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(ToString::to_string);
    // Inner middleware answers errors as responses (not `Err`), so that
    // they pass through here and are tagged too.
    let response = next.call(req).await?.map_into_boxed_body();
    let Some(id) = id else { return Ok(response) };
    let is_json_error = response.status().as_u16() >= 400
        && response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
    let (req, mut res) = response.into_parts();
    if is_json_error {
        let status = res.status();
        let headers = res.headers().clone();
        let body = to_bytes(res.into_body()).await.unwrap_or_default();
        let mut rebuilt = HttpResponse::build(status);
        for (name, value) in &headers {
            rebuilt.insert_header((name.clone(), value.clone()));
        }
        res = match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(mut error)) if body.len() <= MAX_ERROR_BODY => {
                error.insert(
                    "request_id".to_owned(),
                    serde_json::Value::String(id.clone()),
                );
                rebuilt.json(error)
            }
            _ => rebuilt.body(body),
        };
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, value);
    }
    Ok(ServiceResponse::new(req, res))
}
