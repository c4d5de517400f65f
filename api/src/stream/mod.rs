//! Streaming consume: `GET /topic/{topic}/stream` (Server-Sent Events)
//! and `GET /topic/{topic}/ws` (WebSocket with client acks and credit).
//!
//! A stream is a loop of the same long polls a GET makes, one batch at a
//! time, in the same group and with the same contract: in auto mode the
//! position moves before a batch is written; in manual mode the batch stays
//! leased under its receipt until acked, and goes back to the group (to
//! any connection of it, on any node) after its visibility. Each stream
//! holds one of its tenant's `quota.max_streams` (split over the live
//! nodes) instead of a consume slot, pays its delivered bytes into the
//! tenant's byte rate (pausing, not disconnecting, when over it), closes
//! when idle for `consume.stream_idle`, when its user is revoked (checked
//! again at every change notice that names it) and when the node drains.

mod end;
mod events;
mod frames;
mod producer;
mod registry;
mod socket;
mod window;

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::Header as _;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use actix_web_httpauth::headers::authorization::{Authorization, Basic};
use serde::Deserialize;
use tenancy::{Password, TopicName};
use tokio::sync::mpsc;

pub use registry::{StreamSlot, Streams};

use self::producer::{Credentials, Deps, StreamCtx};
use self::window::{Window, MAX_CREDIT};
use crate::auth::{Access, Admitted, Authenticator, TrustedProxies};
use crate::consume::{ConsumeParams, ConsumeQuery, Service};
use crate::encoding::Encoding;
use crate::error::{ApiError, Code};
use crate::ratelimit::{client_address, TenantLimits};
use crate::shutdown::Shutdown;

/// A stream's batch size unless `limit` says otherwise.
const DEFAULT_BATCH: u64 = 100;

/// A WebSocket's credit unless `credit` says otherwise.
const DEFAULT_CREDIT: u64 = 1000;

/// The query of both stream routes, as it arrives.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    limit: Option<String>,
    group: Option<String>,
    #[serde(default)]
    encoding: Encoding,
    ack: Option<String>,
    visibility: Option<String>,
    /// `json`: values that parse as JSON go out as JSON, as a GET's.
    value: Option<String>,
    /// WebSocket only: the first credit.
    credit: Option<String>,
}

impl StreamQuery {
    /// Validated as a GET's query (a stream's batches are long polls), with
    /// `default_ack` when `ack` is not given.
    fn params(
        &self,
        service: &Service,
        username: &str,
        default_ack: &str,
    ) -> Result<ConsumeParams, ApiError> {
        let limit = self
            .limit
            .clone()
            .or_else(|| Some(DEFAULT_BATCH.min(service.settings().max_limit).to_string()));
        let ack = self.ack.clone().or_else(|| Some(default_ack.to_owned()));
        ConsumeQuery::for_stream(
            limit,
            self.group.clone(),
            self.encoding,
            ack,
            self.visibility.clone(),
            self.value.clone(),
        )
        .validate(service.settings(), username)
    }

    fn credit(&self) -> Result<u64, ApiError> {
        match &self.credit {
            None => Ok(DEFAULT_CREDIT),
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|c| *c <= MAX_CREDIT)
                .ok_or_else(|| ApiError::Input {
                    code: Code::InvalidCredit,
                    message: format!(
                        "credit must be a whole number in 0..={MAX_CREDIT}, not '{text}'"
                    ),
                }),
        }
    }
}

/// The node's pieces a stream handler takes, each its own `web::Data`,
/// gathered by one extractor so that both stream routes ask for them alike.
#[derive(Debug)]
pub struct Handles {
    consume: web::Data<Service>,
    auth: web::Data<Authenticator>,
    limits: web::Data<TenantLimits>,
    shutdown: web::Data<Shutdown>,
    streams: web::Data<Streams>,
}

impl FromRequest for Handles {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        fn data<T: 'static>(req: &HttpRequest) -> Result<web::Data<T>, ApiError> {
            req.app_data::<web::Data<T>>()
                .cloned()
                .ok_or(ApiError::Unwired(std::any::type_name::<T>()))
        }
        std::future::ready((|| {
            Ok(Handles {
                consume: data(req)?,
                auth: data(req)?,
                limits: data(req)?,
                shutdown: data(req)?,
                streams: data(req)?,
            })
        })())
    }
}

/// Opens a stream for an authorized user: its place in the tenant's
/// streams (429 past the share), and a check that the topic exists, both
/// before any byte of the answer.
async fn open(
    req: &HttpRequest,
    user: &Admitted,
    topic: TopicName,
    params: ConsumeParams,
    handles: &Handles,
) -> Result<Arc<StreamCtx>, ApiError> {
    let slot =
        handles
            .streams
            .clone()
            .into_inner()
            .open(&user.tenant, &user.username, &user.quota)?;
    handles.consume.check_topic(&topic).await?;
    // The extractor verified these; they are kept to verify them again
    // when a change notice names the user.
    let password = Authorization::<Basic>::parse(req)
        .ok()
        .and_then(|auth| auth.into_scheme().password().map(|p| p.to_string()))
        .unwrap_or_default();
    let trusted = req
        .app_data::<web::Data<TrustedProxies>>()
        .map(|t| t.0.clone())
        .unwrap_or_default();
    let credentials = Credentials {
        username: user.username.clone(),
        password: Password::new(password),
        address: client_address(req, &trusted),
    };
    let deps = Deps {
        consume: handles.consume.clone().into_inner(),
        auth: handles.auth.clone().into_inner(),
        limits: handles.limits.clone().into_inner(),
        shutdown: handles.shutdown.get_ref().clone(),
    };
    metrics::counter!("sluice_streams_opened_total", "tenant" => user.tenant.to_string())
        .increment(1);
    Ok(Arc::new(StreamCtx::new(
        deps,
        topic,
        params,
        credentials,
        user.0 .0.clone(),
        slot,
    )))
}

/// `GET /topic/{topic}/stream`: messages as Server-Sent Events.
#[utoipa::path(get, path = "/topic/{topic}/stream", impl_for = sse, tag = "data plane", security(("basic" = [])),
    summary = "Stream messages as Server-Sent Events",
    description = "Consumes like a GET, for as long as the client stays: each message is one `event: message` with `id: <partition>-<offset>` and the JSON object a GET returns as `data:` (in manual mode with its `Receipt`, to ack with `POST /topic/{topic}/ack`). A comment is sent every `consume.stream_heartbeat` (15 s); `event: shutdown` ends the stream when the node drains, `event: error` for any other end (revoked user, idle, deleted topic). Holds one of the tenant's `quota.max_streams`.",
    params(
        ("topic" = crate::name_schemas::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant"),
        ("limit" = Option<u64>, Query, description = "Messages per batch at most: 1 up to `consume.max_limit`; 100 unless given"),
        ("group" = Option<crate::name_schemas::GroupName>, Query, description = "A group of the tenant; the user's own unless given"),
        ("encoding" = Option<crate::encoding::Encoding>, Query, description = "`base64`: keys, values and header values are base64"),
        ("value" = Option<String>, Query, description = "`json`: values that parse as JSON go out as JSON, as with a GET; not with `encoding=base64`"),
        ("ack" = Option<String>, Query, description = "`auto` (the default) or `manual`, as on a GET", example = "auto"),
        ("visibility" = Option<u64>, Query, description = "With `ack=manual`: how long each batch stays leased, in ms"),
    ),
    responses(
        (status = 200, description = "An event stream (`text/event-stream`) that lasts until the client leaves or the stream ends", content_type = "text/event-stream", body = String),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`group_limit_reached`", body = crate::error::ErrorBody),
        (status = 429, description = "`rate_limited`, or `too_many_open_streams` past the tenant's share of `quota.max_streams` on this node", body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody),
    ))]
#[actix_web::get("/topic/{topic}/stream")]
pub async fn sse(
    req: HttpRequest,
    user: Admitted,
    path: web::Path<String>,
    query: web::Query<StreamQuery>,
    handles: Handles,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Read)?;
    if query.credit.is_some() {
        return Err(ApiError::Input {
            code: Code::InvalidCredit,
            message: "credit applies to WebSocket streams only".into(),
        });
    }
    let params = query.params(&handles.consume, &user.username, "auto")?;
    let encoding = params.rendering;
    let ctx = open(&req, &user, topic, params, &handles).await?;
    let (tx, rx) = mpsc::channel(1);
    let topic = ctx.topic.clone();
    actix_web::rt::spawn(producer::run(ctx, None, tx));
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        // nginx: pass events through as they come.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(events::events(rx, topic, encoding)))
}

/// `GET /topic/{topic}/ws`: a WebSocket stream with acks and credit.
#[utoipa::path(get, path = "/topic/{topic}/ws", impl_for = ws, tag = "data plane", security(("basic" = [])),
    summary = "Stream messages over a WebSocket, with acks and credit",
    description = "Upgrades to a WebSocket (Basic auth on the upgrade request). The server sends text frames `{\"receipt\":\"…\",\"messages\":[…]}` (the messages as a GET returns them) and never holds more unacked messages than the client's credit. The client sends `{\"ack\":\"<receipt>\"}`, `{\"nack\":\"<receipt>\"}` and `{\"credit\":N}` (answered `{\"acked\":…}`, `{\"nacked\":…}` or `{\"error\":…}`); three malformed frames close the connection. Manual acks unless `ack=auto`. Close codes: 1001 the node drains; 4000 + the HTTP status of the reason otherwise (4401 revoked, 4403 grant removed, 4429 stream quota, 4400 bad frames, 4408 idle).",
    params(
        ("topic" = crate::name_schemas::TopicName, Path, description = "`<tenant>.<name>`, in the caller's tenant"),
        ("limit" = Option<u64>, Query, description = "Messages per frame at most: 1 up to `consume.max_limit`; 100 unless given"),
        ("group" = Option<crate::name_schemas::GroupName>, Query, description = "A group of the tenant; the user's own unless given"),
        ("encoding" = Option<crate::encoding::Encoding>, Query, description = "`base64`: keys, values and header values are base64"),
        ("value" = Option<String>, Query, description = "`json`: values that parse as JSON go out as JSON, as with a GET; not with `encoding=base64`"),
        ("ack" = Option<String>, Query, description = "`manual` (the default here) or `auto`", example = "manual"),
        ("visibility" = Option<u64>, Query, description = "With `ack=manual`: how long each frame's messages stay leased, in ms"),
        ("credit" = Option<u64>, Query, description = "The first credit: unacked messages the server may hold out, 0 up to 100000; 1000 unless given"),
    ),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, description = "`group_limit_reached`", body = crate::error::ErrorBody),
        (status = 426, description = "`upgrade_required`: not a WebSocket upgrade request", body = crate::error::ErrorBody),
        (status = 429, description = "`rate_limited`, or `too_many_open_streams`", body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody),
    ))]
#[actix_web::get("/topic/{topic}/ws")]
pub async fn ws(
    req: HttpRequest,
    body: web::Payload,
    user: Admitted,
    path: web::Path<String>,
    query: web::Query<StreamQuery>,
    handles: Handles,
) -> Result<HttpResponse, ApiError> {
    let topic = user.authorize(&path, Access::Read)?;
    let params = query.params(&handles.consume, &user.username, "manual")?;
    let credit = query.credit()?;
    let encoding = params.rendering;
    if !is_upgrade(&req) {
        return Err(ApiError::Input {
            code: Code::UpgradeRequired,
            message: "this route speaks WebSocket only: send an upgrade request (Connection: Upgrade, Upgrade: websocket)".into(),
        });
    }
    let ctx = open(&req, &user, topic, params, &handles).await?;
    let (response, session, frames) =
        actix_ws::handle(&req, body).map_err(|err| ApiError::Input {
            code: Code::UpgradeRequired,
            message: format!("not a valid WebSocket upgrade: {err}"),
        })?;
    let frames = frames
        .max_frame_size(socket::MAX_CLIENT_FRAME)
        .aggregate_continuations()
        .max_continuation_size(socket::MAX_CLIENT_FRAME);
    actix_web::rt::spawn(socket::serve(
        ctx,
        Arc::new(Window::new(credit)),
        session,
        frames,
        encoding,
    ));
    Ok(response)
}

/// Whether the request asks for a WebSocket upgrade at all (the handshake
/// itself is checked by actix-ws).
fn is_upgrade(req: &HttpRequest) -> bool {
    req.headers()
        .get(actix_web::http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}
