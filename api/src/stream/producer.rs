//! The task that feeds one stream: batches from the consume service, one
//! long poll at a time, paused while the tenant is over its byte quota or
//! the client's credit is spent, with heartbeats when nothing comes, and
//! a check of the user's credentials whenever a change notice names it.
//!
//! A batch's attempt is never cut short: only the waits between attempts
//! end early (the node drains, the client goes away, the user must be
//! checked). So in auto mode a batch is either not read or read, committed
//! and handed to the writer, as a GET is; in manual mode what the writer
//! could not send goes back to the group after its visibility.

use std::cell::Cell;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use tenancy::{Password, TopicName};
use tokio::sync::mpsc;

use super::end::End;
use super::registry::StreamSlot;
use super::window::Window;
use crate::auth::{Access, AuthError, Authenticator, Principal};
use crate::consume::{AckMode, ConsumeParams, Delivery, Poll, Service};
use crate::error::{ApiError, Code};
use crate::ratelimit::TenantLimits;
use crate::shutdown::Shutdown;

/// How often a manual-mode stream looks again while it waits: settles on
/// other nodes, and leases of dead nodes running out, wake nothing here.
const MANUAL_RECHECK: Duration = Duration::from_secs(1);

/// What the producer hands the writer.
#[derive(Debug)]
pub enum Out {
    Batch(Delivery),
    /// Nothing was written for `consume.stream_heartbeat`.
    Heartbeat,
    End(End),
}

/// The node's pieces a stream uses.
#[derive(Debug, Clone)]
pub struct Deps {
    pub consume: Arc<Service>,
    pub auth: Arc<Authenticator>,
    pub limits: Arc<TenantLimits>,
    pub shutdown: Shutdown,
}

/// The credentials a stream was opened with, kept to check them again
/// when the user changes. The password never leaves this struct.
#[derive(Debug)]
pub struct Credentials {
    pub username: String,
    pub password: Password,
    pub address: Option<IpAddr>,
}

/// One open stream.
#[derive(Debug)]
pub struct StreamCtx {
    pub deps: Deps,
    pub topic: TopicName,
    pub params: ConsumeParams,
    pub heartbeat: Duration,
    pub idle: Duration,
    credentials: Credentials,
    principal: ArcSwap<Principal>,
    slot: StreamSlot,
    last_activity: Mutex<Instant>,
}

impl StreamCtx {
    pub fn new(
        deps: Deps,
        topic: TopicName,
        params: ConsumeParams,
        credentials: Credentials,
        principal: Arc<Principal>,
        slot: StreamSlot,
    ) -> Self {
        let settings = deps.consume.settings();
        Self {
            heartbeat: settings.stream_heartbeat,
            idle: settings.stream_idle,
            deps,
            topic,
            params,
            credentials,
            principal: ArcSwap::new(principal),
            slot,
            last_activity: Mutex::new(Instant::now()),
        }
    }

    /// The user as last checked.
    pub fn principal(&self) -> Arc<Principal> {
        self.principal.load_full()
    }

    /// Something was delivered, or heard from the client.
    pub fn touch(&self) {
        *self
            .last_activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_activity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }

    /// Checks the credentials and the grant again, after a change notice
    /// named the user or its tenant. A failure the database causes keeps
    /// the stream (its user was fine a moment ago); a refusal ends it.
    async fn recheck(&self) -> Result<(), End> {
        let c = &self.credentials;
        match self
            .deps
            .auth
            .authenticate(&c.username, &c.password, c.address)
            .await
        {
            Ok(principal) => {
                principal
                    .authorize(self.topic.as_str(), Access::Read)
                    .map_err(End::Failed)?;
                if !self.slot.within(&principal.tenant, &principal.quota) {
                    return Err(End::Failed(ApiError::Throttled {
                        code: Code::TooManyOpenStreams,
                        retry_after: Duration::from_secs(5),
                        message: "the tenant's quota.max_streams was lowered below its open streams; this one, among the newest, is closed".into(),
                    }));
                }
                self.principal.store(principal);
                Ok(())
            }
            Err(AuthError::Rejected) => Err(End::Failed(ApiError::Unauthenticated)),
            Err(err) => {
                tracing::warn!(user = %c.username, error = %err, "cannot check a stream's user again; it goes on as it was");
                Ok(())
            }
        }
    }
}

/// What ended a wait early.
#[derive(Debug, Clone, Copy)]
enum Wake {
    Drain,
    Recheck,
    Gone,
    /// The client changed its credit or settled a batch: look again.
    Credit,
}

/// Resolves on the first of: the node drains, the user must be checked,
/// the writer is gone, the client's credit changed; and says which in
/// `woke`.
async fn interrupted(
    ctx: &StreamCtx,
    window: Option<&Window>,
    tx: &mpsc::Sender<Out>,
    woke: &Cell<Option<Wake>>,
) {
    let credit = async {
        match window {
            Some(window) => window.changed().await,
            None => std::future::pending().await,
        }
    };
    let why = tokio::select! {
        () = ctx.deps.shutdown.draining() => Wake::Drain,
        () = ctx.slot.must_recheck() => Wake::Recheck,
        () = tx.closed() => Wake::Gone,
        () = credit => Wake::Credit,
    };
    woke.set(Some(why));
}

/// Feeds the stream until it ends, then says why.
pub async fn run(ctx: Arc<StreamCtx>, window: Option<Arc<Window>>, tx: mpsc::Sender<Out>) {
    let end = feed(&ctx, window.as_deref(), &tx).await;
    let user = &ctx.credentials.username;
    match &end {
        End::Failed(err) if err.code().status().is_server_error() => {
            tracing::error!(%user, topic = %ctx.topic, error = %err, source = ?std::error::Error::source(err), "a stream failed");
        }
        End::Failed(err) => {
            tracing::info!(%user, topic = %ctx.topic, code = err.code().as_str(), "a stream ended");
        }
        _ => {}
    }
    let _ = tx.send(Out::End(end)).await;
}

async fn feed(ctx: &StreamCtx, window: Option<&Window>, tx: &mpsc::Sender<Out>) -> End {
    let mut last_write = Instant::now();
    let manual = matches!(ctx.params.ack, AckMode::Manual { .. });
    let recheck = manual.then_some(MANUAL_RECHECK);
    // Registered for the stream's whole life: an ack made while a batch is
    // being written still wakes the next poll.
    let mut settles = manual.then(|| {
        ctx.deps
            .consume
            .wait_on(&ctx.principal().tenant, &ctx.params.group, &ctx.topic)
    });
    loop {
        if ctx.deps.shutdown.is_draining() {
            return End::Shutdown;
        }
        if !ctx.idle.is_zero() && ctx.idle_for() >= ctx.idle {
            return End::Idle;
        }
        let heartbeat_at = last_write + ctx.heartbeat;
        let principal = ctx.principal();
        let woke = Cell::new(None);
        let owed = ctx.deps.limits.pay_owed(&principal.tenant, principal.quota);
        let credit = window.map(Window::available);
        match (owed, credit) {
            (Ok(()), credit) if credit != Some(0) => {
                let limit = credit.map_or(ctx.params.limit, |c| {
                    ctx.params
                        .limit
                        .min(usize::try_from(c).unwrap_or(usize::MAX))
                });
                let params = ConsumeParams {
                    limit,
                    wait: heartbeat_at.saturating_duration_since(Instant::now()),
                    ..ctx.params.clone()
                };
                let poll = Poll {
                    params: &params,
                    stop: interrupted(ctx, window, tx, &woke),
                    recheck,
                    settles: settles.as_mut(),
                };
                match ctx.deps.consume.poll(&principal, &ctx.topic, poll).await {
                    Err(err) => return End::Failed(err),
                    Ok(batch) if !batch.messages.is_empty() => {
                        if let (Some(window), Some(receipt), AckMode::Manual { visibility }) =
                            (window, batch.receipt, ctx.params.ack)
                        {
                            window.hold(
                                receipt.to_string(),
                                batch.messages.len() as u64,
                                Instant::now() + visibility,
                            );
                        }
                        ctx.touch();
                        if tx.send(Out::Batch(batch)).await.is_err() {
                            return End::ClientGone;
                        }
                        last_write = Instant::now();
                    }
                    Ok(_) => {}
                }
            }
            (owed, _) => {
                // Paused: over the byte quota, or no credit. The stream
                // stays open and goes on when either frees up.
                let until = match owed {
                    Err(wait) => Instant::now() + wait,
                    Ok(()) => window.and_then(Window::next_expiry).unwrap_or(heartbeat_at),
                };
                tokio::select! {
                    () = interrupted(ctx, window, tx, &woke) => {}
                    () = tokio::time::sleep_until(until.min(heartbeat_at).into()) => {}
                }
            }
        }
        match woke.take() {
            Some(Wake::Drain) => return End::Shutdown,
            Some(Wake::Gone) => return End::ClientGone,
            Some(Wake::Credit) | None => {}
            Some(Wake::Recheck) => {
                if let Err(end) = ctx.recheck().await {
                    return end;
                }
            }
        }
        if Instant::now() >= heartbeat_at {
            if tx.send(Out::Heartbeat).await.is_err() {
                return End::ClientGone;
            }
            last_write = Instant::now();
        }
    }
}
