//! Keeps HTTP/1.1 connections open when a request is refused before its
//! body was read.
//!
//! actix closes an HTTP/1.1 connection whose request body was left unread
//! (it cannot know where the next request starts otherwise). A produce
//! refused with 401, 403 or 429 before its body is parsed would then cost
//! the client a new TCP and TLS handshake for its next request, and the
//! node the CPU for it: a tenant hammering over its quota slowed every
//! other tenant down through handshakes alone. Small leftover bodies are
//! therefore read and dropped before the answer goes out.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage as _;
use futures::{Stream, StreamExt};

/// Largest leftover body read to keep a connection open; a larger one is
/// not worth reading for a refused request, and the connection closes.
pub const DRAIN_LIMIT: u64 = 64 * 1024;

/// The request payload, shared between the handler (which reads what it
/// wants) and this middleware (which reads the rest).
#[derive(Clone)]
struct Shared(Rc<RefCell<Payload>>);

impl Stream for Shared {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.borrow_mut().poll_next_unpin(cx)
    }
}

/// The middleware: see the module documentation.
pub async fn keep_alive_after_refusal(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if !declared.is_some_and(|n| n > 0 && n <= DRAIN_LIMIT) {
        return next.call(req).await;
    }
    let shared = Shared(Rc::new(RefCell::new(req.take_payload())));
    req.set_payload(Payload::from(
        Box::pin(shared.clone()) as Pin<Box<dyn Stream<Item = _>>>
    ));
    let response = next.call(req).await;
    // What the handler left unread, at most DRAIN_LIMIT bytes by the header
    // above; an error or a lying client just ends the draining.
    let mut rest = shared;
    while let Some(Ok(_)) = rest.next().await {}
    response
}
