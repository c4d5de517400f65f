//! The events of `GET /topic/{topic}/stream` (Server-Sent Events). Each message is one
//! `event: message` with `id: <partition>-<offset>` and the JSON object a
//! GET returns for it as `data:`; a comment every
//! `consume.stream_heartbeat`; `event: shutdown` when the node drains and
//! `event: error` when the stream ends for another reason.

use std::convert::Infallible;
use std::fmt::Write as _;

use actix_web::web::Bytes;
use futures::{Stream, StreamExt as _};
use tenancy::TopicName;
use tokio::sync::mpsc;

use super::end::End;
use super::producer::Out;
use crate::consume::render_messages;

/// What opens every stream: how long a client should wait before it
/// reconnects, and a comment so that the client sees the stream at once.
const PREAMBLE: &str = "retry: 1000\n: connected\n\n";

/// The events of one batch. `data:` is one line: the JSON has no raw
/// newlines.
pub fn batch(
    topic: &TopicName,
    delivery: crate::consume::Delivery,
    encoding: crate::consume::Rendering,
) -> String {
    let receipt = delivery.receipt.map(|r| r.to_string());
    let mut events = String::new();
    for message in render_messages(topic, delivery, encoding) {
        let message = match &receipt {
            Some(receipt) => message.with_receipt(receipt.clone()),
            None => message,
        };
        let id = message.position();
        let data = serde_json::to_string(&message).unwrap_or_default();
        let _ = write!(events, "event: message\nid: {id}\ndata: {data}\n\n");
    }
    events
}

/// The event that says why the stream ended, if the client is there to
/// read it.
fn ending(end: &End) -> Option<String> {
    let body = end.body()?;
    let event = match end {
        End::Shutdown => "shutdown",
        _ => "error",
    };
    let data = serde_json::to_string(&body).unwrap_or_default();
    Some(format!("event: {event}\ndata: {data}\n\n"))
}

/// The response body: the producer's output as events, ending after the
/// event that says why.
pub fn events(
    rx: mpsc::Receiver<Out>,
    topic: TopicName,
    encoding: crate::consume::Rendering,
) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let start = futures::stream::once(async { Ok(Bytes::from_static(PREAMBLE.as_bytes())) });
    let rest = futures::stream::unfold(Some(rx), move |rx| {
        let topic = topic.clone();
        async move {
            let mut rx = rx?;
            let (chunk, next) = match rx.recv().await {
                Some(Out::Batch(delivery)) => (batch(&topic, delivery, encoding), Some(rx)),
                Some(Out::Heartbeat) => (": heartbeat\n\n".to_owned(), Some(rx)),
                Some(Out::End(end)) => (ending(&end)?, None),
                None => return None,
            };
            Some((Ok(Bytes::from(chunk)), next))
        }
    });
    start.chain(rest)
}
