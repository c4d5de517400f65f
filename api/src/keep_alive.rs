//! What happens to a request body the handler did not read: keep HTTP/1.1
//! connections open after a refusal, and let HTTP/2 clients see the answer.
//!
//! actix closes an HTTP/1.1 connection whose request body was left unread
//! (it cannot know where the next request starts otherwise). A produce
//! refused with 401, 403 or 429 before its body is parsed would then cost
//! the client a new TCP and TLS handshake for its next request, and the
//! node the CPU for it: a tenant hammering over its quota slowed every
//! other tenant down through handshakes alone. Small leftover bodies are
//! therefore read and dropped before the answer goes out.
//!
//! The drain is bounded in bytes ([`DRAIN_LIMIT`]) and in time (the body
//! deadline of [`crate::body_deadline`] wraps the payload read here). When
//! it does not finish (a larger or chunked body, a stalled client), the
//! payload is kept alive until the response has been written, so that
//! actix closes the connection after the answer instead of draining the
//! rest of a chunked body itself, which it would do with no deadline.
//!
//! HTTP/2 needs no drain to keep its connection, but it needs the opposite
//! care. When a handler answers without reading the body (a 413 from the
//! declared length, a 401), actix drops the body and h2 resets the stream
//! (`RST_STREAM`, `NO_ERROR`) right behind the answer. Clients that are
//! still uploading, such as curl 7.x, fail the transfer on that reset
//! before they read the answer already received, and print `000`. So the
//! unread body of an HTTP/2 request is kept and read (and dropped) for
//! [`H2_LINGER`] after the answer, within the body deadline, and only then
//! released: the client sees its answer, stops sending, and the stream is
//! reset after.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::http::{Method, Version};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::HttpMessage as _;
use futures::{Stream, StreamExt};

/// Largest leftover body read to keep a connection open; a larger one is
/// not worth reading for a refused request, and the connection closes.
pub const DRAIN_LIMIT: u64 = 64 * 1024;

/// How long the unread body of an HTTP/2 request is still read after its
/// answer, so that the client reads the answer before the stream is reset.
pub const H2_LINGER: Duration = Duration::from_secs(1);

/// The request payload, shared between the handler (which reads what it
/// wants) and this middleware (which reads the rest).
#[derive(Clone)]
struct Shared(Rc<Inner>);

struct Inner {
    payload: RefCell<Payload>,
    /// The payload ended (or failed): nothing is left to read.
    finished: Cell<bool>,
}

impl Shared {
    fn new(payload: Payload) -> Self {
        Self(Rc::new(Inner {
            payload: RefCell::new(payload),
            finished: Cell::new(false),
        }))
    }
}

impl Stream for Shared {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.0.payload.borrow_mut().poll_next_unpin(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.0.finished.set(true);
        }
        polled
    }
}

/// A response body that keeps the request's payload until the body has
/// been written. HTTP/1.1: actix then sees an unread payload and closes
/// the connection, rather than draining what is left without limit.
/// HTTP/2: the rest of the body is read for [`H2_LINGER`] once the answer
/// is out, then released.
struct Holding<B> {
    body: Pin<Box<B>>,
    payload: Option<Shared>,
    linger: bool,
}

impl<B: MessageBody> MessageBody for Holding<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.get_mut().body.as_mut().poll_next(cx)
    }
}

impl<B> Drop for Holding<B> {
    fn drop(&mut self) {
        let Some(mut payload) = self.payload.take() else {
            return;
        };
        if !self.linger || payload.0.finished.get() {
            return;
        }
        actix_web::rt::spawn(async move {
            let rest = async { while let Some(Ok(_)) = payload.next().await {} };
            let _ = tokio::time::timeout(H2_LINGER, rest).await;
        });
    }
}

/// The middleware: see the module documentation.
pub async fn keep_alive_after_refusal(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let h2 = req.version() >= Version::HTTP_2;
    let drain = if h2 {
        // Without a length, an HTTP/2 request may still carry a body; the
        // methods that do not take one are left alone.
        declared.is_some_and(|n| n > 0)
            || (declared.is_none()
                && !matches!(*req.method(), Method::GET | Method::HEAD | Method::DELETE))
    } else {
        let chunked = declared.is_none() && req.headers().contains_key(TRANSFER_ENCODING);
        chunked || declared.is_some_and(|n| n > 0 && n <= DRAIN_LIMIT)
    };
    if !drain {
        return Ok(next
            .call(req)
            .await?
            .map_body(|_, body| EitherBody::left(body)));
    }
    let shared = Shared::new(req.take_payload());
    req.set_payload(Payload::from(
        Box::pin(shared.clone()) as Pin<Box<dyn Stream<Item = _>>>
    ));
    let response = next.call(req).await?;
    if h2 {
        return Ok(response.map_body(|_, body| {
            EitherBody::right(Holding {
                body: Box::pin(body),
                payload: Some(shared),
                linger: true,
            })
        }));
    }
    // What the handler left unread, at most DRAIN_LIMIT bytes; past that,
    // or on an error (the deadline, a client that lied), the connection
    // closes after the answer.
    let mut rest = shared;
    let mut read = 0u64;
    let drained = loop {
        match rest.next().await {
            None => break true,
            Some(Ok(chunk)) => {
                read += chunk.len() as u64;
                if read > DRAIN_LIMIT {
                    break false;
                }
            }
            Some(Err(_)) => break false,
        }
    };
    if drained {
        return Ok(response.map_body(|_, body| EitherBody::left(body)));
    }
    Ok(response.map_body(|_, body| {
        EitherBody::right(Holding {
            body: Box::pin(body),
            payload: Some(rest),
            linger: false,
        })
    }))
}
