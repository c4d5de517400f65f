//! Response compression on the public listener.
//!
//! actix's [`Compress`] middleware negotiates `Accept-Encoding` (gzip,
//! br, zstd, deflate) and adds `Vary: Accept-Encoding` to what it
//! compresses, but it compresses every body, however small, and it would
//! buffer a `text/event-stream` in the encoder, delaying each SSE event
//! until the compressor flushed. So two layers surround it: the inner
//! one marks the responses that must stay as they are with
//! `Content-Encoding: identity`, which the encoder leaves alone; the outer
//! one removes that mark again before the response goes out.
//!
//! WebSocket upgrades (101) are never encoded by actix.

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, VARY};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::ResponseError as _;

use crate::error::{ApiError, Code};

pub use actix_web::middleware::Compress;

/// Bodies smaller than this are sent as they are: compressing them saves
/// a few bytes at best, and costs CPU on both sides.
pub const MIN_COMPRESS_BYTES: u64 = 1024;

const IDENTITY: HeaderValue = HeaderValue::from_static("identity");

/// Inside [`Compress`]: marks small bodies and event streams so that it
/// leaves them uncompressed.
pub async fn keep_small_and_streams_plain(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let event_stream = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
    let small =
        matches!(res.response().body().size(), BodySize::Sized(n) if n < MIN_COMPRESS_BYTES);
    let headers = res.headers_mut();
    if (event_stream || small) && !headers.contains_key(CONTENT_ENCODING) {
        headers.insert(CONTENT_ENCODING, IDENTITY);
        if small && !event_stream {
            // A larger answer to the same request would be compressed.
            headers.append(VARY, HeaderValue::from_static("accept-encoding"));
        }
    }
    Ok(res)
}

/// Outside [`Compress`]: removes the mark [`keep_small_and_streams_plain`]
/// left, so clients see no `Content-Encoding` on plain bodies; and turns
/// the plain-text 406 [`Compress`] answers when a client refuses every
/// coding, identity included, into our JSON error.
pub async fn unmark_plain(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let mut res = next.call(req).await?;
    if res.status() == StatusCode::NOT_ACCEPTABLE && !res.headers().contains_key(CONTENT_TYPE) {
        let refusal = ApiError::Input {
            code: Code::NotAcceptableEncoding,
            message: "Accept-Encoding refuses every coding this server sends: \
                      gzip, br, zstd, deflate or identity"
                .to_owned(),
        }
        .error_response();
        return Ok(res.into_response(refusal).map_into_right_body());
    }
    if res.headers().get(CONTENT_ENCODING) == Some(&IDENTITY) {
        res.headers_mut().remove(CONTENT_ENCODING);
    }
    Ok(res.map_into_left_body())
}
