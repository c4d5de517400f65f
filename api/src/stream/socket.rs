//! `GET /topic/{topic}/ws`: a WebSocket stream with client acks and
//! credit. The server sends `{"receipt":"…","messages":[…]}` text frames
//! and never holds more unacked messages than the client's credit; the
//! client sends `{"ack":"…"}`, `{"nack":"…"}` and `{"credit":N}`. Three
//! malformed frames close the connection (4400); every close code says
//! why (see [`End::close_code`]).

use std::sync::Arc;

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use futures::StreamExt as _;
use tenancy::store::Settlement;
use tokio::sync::mpsc;

use super::end::End;
use super::frames::{BatchFrame, ClientFrame, ErrorFrame, Settle, SettledFrame};
use super::producer::{self, Out, StreamCtx};
use super::window::Window;
use crate::consume::render_messages;

/// Malformed frames a connection may send before it is closed.
const MAX_STRIKES: u32 = 3;

/// The largest frame a client may send: its frames are small JSON objects.
pub const MAX_CLIENT_FRAME: usize = 64 * 1024;

/// Serves one upgraded connection until it ends, then closes it saying
/// why.
pub async fn serve(
    ctx: Arc<StreamCtx>,
    window: Arc<Window>,
    mut session: Session,
    mut frames: AggregatedMessageStream,
    encoding: crate::consume::Rendering,
) {
    let (tx, mut rx) = mpsc::channel(1);
    actix_web::rt::spawn(producer::run(ctx.clone(), Some(window.clone()), tx));
    let mut strikes = 0;
    let end = loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Batch(delivery)) => {
                    let receipt = delivery.receipt.map(|r| r.to_string());
                    let frame = BatchFrame {
                        receipt,
                        messages: render_messages(&ctx.topic, delivery, encoding),
                    };
                    let text = serde_json::to_string(&frame).unwrap_or_default();
                    if session.text(text).await.is_err() {
                        break End::ClientGone;
                    }
                }
                Some(Out::Heartbeat) => {
                    if session.ping(b"").await.is_err() {
                        break End::ClientGone;
                    }
                }
                Some(Out::End(end)) => break end,
                None => break End::ClientGone,
            },
            frame = frames.next() => {
                let text = match frame {
                    Some(Ok(AggregatedMessage::Text(text))) => text,
                    // Pings and pongs are the libraries' keep-alives, not
                    // the client's activity: they do not keep a stream from
                    // being idle.
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break End::ClientGone;
                        }
                        continue;
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => continue,
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        strikes += 1;
                        let error = crate::error::ErrorBody {
                            code: crate::error::Code::InvalidFrame,
                            message: "frames are JSON text, not binary".into(),
                            request_id: None,
                        };
                        if strikes >= MAX_STRIKES {
                            break End::BadFrames;
                        }
                        if reply(&mut session, &ErrorFrame { error, receipt: None }).await.is_err() {
                            break End::ClientGone;
                        }
                        continue;
                    }
                    // A frame over the size limit, or broken framing.
                    Some(Err(_)) => break End::BadFrames,
                    Some(Ok(AggregatedMessage::Close(_))) | None => break End::ClientGone,
                };
                ctx.touch();
                match ClientFrame::parse(&text) {
                    Ok(frame) => {
                        if handle(&ctx, &window, &mut session, frame).await.is_err() {
                            break End::ClientGone;
                        }
                    }
                    Err(error) => {
                        strikes += 1;
                        if strikes >= MAX_STRIKES {
                            break End::BadFrames;
                        }
                        if reply(&mut session, &ErrorFrame { error, receipt: None }).await.is_err() {
                            break End::ClientGone;
                        }
                    }
                }
            }
        }
    };
    // The producer sees the channel close and stops (a batch it is
    // reading is settled first).
    drop(rx);
    let reason = end.body().map(|body| CloseReason {
        code: CloseCode::Other(end.close_code()),
        description: Some(body.code.as_str().to_owned()),
    });
    if let Some(reason) = &reason {
        tracing::info!(topic = %ctx.topic, code = reason.description.as_deref().unwrap_or(""), "closing a WebSocket stream");
    }
    let _ = session.close(reason).await;
}

async fn reply(
    session: &mut Session,
    frame: &impl serde::Serialize,
) -> Result<(), actix_ws::Closed> {
    session
        .text(serde_json::to_string(frame).unwrap_or_default())
        .await
}

/// Applies one well-formed frame: settles its receipt (answering
/// `acked`/`nacked` or an error frame) and sets the credit.
async fn handle(
    ctx: &StreamCtx,
    window: &Window,
    session: &mut Session,
    frame: ClientFrame,
) -> Result<(), actix_ws::Closed> {
    if let Some(settle) = frame.settle {
        let principal = ctx.principal();
        let settlement = match settle {
            Settle::Ack(_) => Settlement::Ack { offsets: None },
            Settle::Nack(_) => Settlement::Nack {
                offsets: None,
                delay: std::time::Duration::ZERO,
            },
        };
        let result = ctx
            .deps
            .consume
            .settle(&principal, &ctx.topic, settle.receipt(), settlement)
            .await;
        match result {
            Ok(()) => {
                window.release(settle.receipt());
                let answer = match &settle {
                    Settle::Ack(r) => SettledFrame::Acked(r),
                    Settle::Nack(r) => SettledFrame::Nacked(r),
                };
                reply(session, &answer).await?;
            }
            Err(err) => {
                if matches!(
                    err.code(),
                    crate::error::Code::ReceiptExpired | crate::error::Code::ReceiptNotFound
                ) {
                    // Its messages went back to the group: they hold no credit.
                    window.release(settle.receipt());
                }
                let frame = ErrorFrame {
                    error: err.body(),
                    receipt: Some(settle.receipt()),
                };
                reply(session, &frame).await?;
            }
        }
    }
    if let Some(credit) = frame.credit {
        window.set_credit(credit);
    }
    Ok(())
}
