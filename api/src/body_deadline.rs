//! `http.body_read_timeout`: every request body must arrive within a
//! deadline counted from the start of the request.
//!
//! actix cuts slow headers (`http.client_request_timeout`) but puts no
//! limit on the body: a client declaring `Content-Length: 65536` and sending
//! nothing held its connection for as long as it liked. This middleware
//! wraps every request's payload in a stream that fails with a
//! [`BodyTimeout`] once the deadline passes, so every reader (the produce
//! handler, JSON extractors, the drain of refused requests' bodies) stops
//! there. The produce handler and the JSON extractors answer 408
//! `body_timeout`; HTTP/1.1 then closes the connection (the rest of the
//! body is unread), HTTP/2 resets the stream.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::http::{Method, Version};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::HttpMessage as _;
use futures::{Stream, StreamExt as _};
use tokio::time::{sleep_until, Instant, Sleep};

/// The configured deadline, as app data of both listeners.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub Duration);

/// The error a body read fails with once its deadline has passed, inside
/// a [`PayloadError::Io`] of kind `TimedOut`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} ms", .0.as_millis())]
pub struct BodyTimeout(pub Duration);

/// Whether a payload error is the body deadline, and which one.
pub fn timeout_of(err: &PayloadError) -> Option<Duration> {
    match err {
        PayloadError::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<BodyTimeout>())
            .map(|t| t.0),
        _ => None,
    }
}

/// A payload that fails once its deadline has passed, and ends after that.
struct Deadline {
    inner: Payload,
    timeout: Duration,
    deadline: Instant,
    /// Armed on the first read that has to wait, so that requests whose
    /// body is already there, or empty, cost no timer.
    timer: Option<Pin<Box<Sleep>>>,
    expired: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = this.inner.poll_next_unpin(cx) {
            return Poll::Ready(item);
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired = true;
                metrics::counter!("sluice_body_timeouts_total").increment(1);
                let err =
                    std::io::Error::new(std::io::ErrorKind::TimedOut, BodyTimeout(this.timeout));
                Poll::Ready(Some(Err(PayloadError::Io(err))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Whether the request can carry a body at all: HTTP/1 says so in its
/// headers; HTTP/2 may send DATA frames without declaring a length (the
/// methods that take no body are left alone).
fn may_have_body(req: &ServiceRequest) -> bool {
    match req.headers().get(CONTENT_LENGTH) {
        Some(len) => len.as_bytes() != b"0",
        None if req.version() >= Version::HTTP_2 => {
            !matches!(*req.method(), Method::GET | Method::HEAD | Method::DELETE)
        }
        None => req.headers().contains_key(TRANSFER_ENCODING),
    }
}

/// The middleware: see the module documentation.
pub async fn read_within_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let timeout = req.app_data::<web::Data<BodyReadTimeout>>().map(|t| t.0);
    if let Some(timeout) = timeout.filter(|_| may_have_body(&req)) {
        let inner = req.take_payload();
        let deadline = Deadline {
            inner,
            timeout,
            deadline: Instant::now() + timeout,
            timer: None,
            expired: false,
        };
        req.set_payload(Payload::from(
            Box::pin(deadline) as Pin<Box<dyn Stream<Item = _>>>
        ));
    }
    next.call(req).await
}
