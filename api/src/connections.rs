//! The public listener's connection caps: concurrent connections per client
//! network and in total, requests in flight per connection, and the idle
//! timeout of HTTP/2 connections.
//!
//! Connections are counted in actix's `on_connect` hook, which runs once per
//! connection right after its TLS handshake and before any request is read.
//! That is the earliest point `HttpServer` offers: refusing before the
//! handshake would mean assembling actix-server, actix-tls and actix-http by
//! hand. A connection over a cap is shut down there and then, without an
//! answer: it never gets to send a request, so it costs no parsing, no
//! body and no timer. The count is held by a guard in the connection's
//! extensions, released when actix drops the connection.
//!
//! The client network is the peer address (connections exist before any
//! `X-Forwarded-For`): an IPv4 /32 or an IPv6 /64, the block one subscriber
//! usually holds. Peers listed in `http.trusted_proxies` are exempt from the
//! per-network cap (a balancer carries many clients) but not from the total.
//!
//! actix-http does not let the HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` be
//! set, so streams are capped here instead: a request beyond
//! `http.max_streams_per_connection` handlers in flight on its connection is
//! answered at once with 429 `too_many_streams`. Because actix keeps running
//! a handler after its client reset the stream, this is also what bounds a
//! rapid-reset flood's work per connection; h2 itself closes a connection
//! with more than 20 streams reset before they are accepted, or 1024 streams
//! it had to reset. A connection that keeps opening streams past the cap is
//! closed.
//!
//! actix's keep-alive only closes idle HTTP/1 connections; on HTTP/2 it sends
//! pings, which any client answers, so an idle HTTP/2 connection would live
//! forever. A watchdog per HTTP/2 connection shuts the socket down once no
//! request has been in flight for `http.keep_alive_timeout`.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::net::{IpAddr, Shutdown};
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_tls::accept::rustls_0_23::TlsStream;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::ResponseError as _;
use ipnet::IpNet;
use socket2::SockRef;
use tokio::net::TcpStream;

use crate::error::ApiError;
use crate::ratelimit::client_network;

/// Refusals past the stream cap after which a connection is closed: a
/// client that ignores the 429s is flooding, not bursting.
const MAX_REFUSED_STREAMS: u32 = 1024;

/// The caps, from `http.*`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent connections from one client network.
    pub per_network: usize,
    /// Concurrent connections in total on this node's public listener.
    pub total: usize,
    /// Requests in flight on one connection.
    pub streams_per_connection: usize,
    /// An HTTP/2 connection with nothing in flight for this long is closed.
    pub idle: Duration,
}

/// Why a connection was refused; the label of its metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Over `http.max_connections_per_address`.
    PerNetwork,
    /// Over `http.max_connections`.
    Total,
}

impl Refusal {
    fn label(self) -> &'static str {
        match self {
            Refusal::PerNetwork => "per_address",
            Refusal::Total => "total",
        }
    }
}

/// The counts, shared by every worker of the public listener.
#[derive(Debug)]
pub struct Connections {
    limits: Limits,
    trusted: Vec<IpNet>,
    total: AtomicUsize,
    per_network: Mutex<HashMap<IpNet, usize>>,
}

impl Connections {
    pub fn new(limits: Limits, trusted: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            trusted,
            total: AtomicUsize::new(0),
            per_network: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `peer`, or says why it is refused.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= self.limits.total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::Total);
        }
        let network = if self.trusted.iter().any(|net| net.contains(&peer)) {
            None
        } else {
            let network = client_network(peer);
            let mut counts = self.per_network.lock().unwrap_or_else(|e| e.into_inner());
            let count = counts.entry(network).or_insert(0);
            if *count >= self.limits.per_network {
                drop(counts);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Refusal::PerNetwork);
            }
            *count += 1;
            Some(network)
        };
        Ok(Slot {
            connections: self.clone(),
            network,
        })
    }

    /// Connections open now, for tests and metrics.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// The `on_connect` hook: counts the connection, shuts it down when it
    /// is over a cap, and leaves a [`Connection`] in its extensions.
    pub fn on_connect(self: &Arc<Self>, io: &dyn Any, extensions: &mut Extensions) {
        let (tcp, h2) = if let Some(tls) = io.downcast_ref::<TlsStream<TcpStream>>() {
            let (tcp, session) = tls.get_ref();
            (tcp, session.alpn_protocol() == Some(&b"h2"[..]))
        } else if let Some(tcp) = io.downcast_ref::<TcpStream>() {
            (tcp, false)
        } else {
            return;
        };
        // Small writes go out at once. With Nagle's algorithm on, a write
        // that follows an unacknowledged one (the second TLS record of an
        // HTTP/2 response, a WebSocket frame after the last, an SSE event)
        // waits for the peer's delayed ACK: tens of milliseconds per
        // exchange, and seconds behind a busy HTTP/2 connection.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let Ok(peer) = tcp.peer_addr() else { return };
        match self.admit(peer.ip()) {
            Ok(slot) => {
                // Only HTTP/2 connections need the watchdog, and so a handle
                // on their socket; HTTP/1 idles out in actix itself.
                let socket = if h2 {
                    SockRef::from(tcp).try_clone().ok()
                } else {
                    None
                };
                let state = Rc::new(State {
                    _slot: slot,
                    in_flight: Cell::new(0),
                    last_active: Cell::new(Instant::now()),
                    refused: Cell::new(0),
                    socket,
                });
                if state.socket.is_some() {
                    spawn_watchdog(Rc::downgrade(&state), self.limits.idle);
                }
                extensions.insert(Connection {
                    state,
                    max_streams: self.limits.streams_per_connection,
                });
            }
            Err(refusal) => {
                metrics::counter!("sluice_connections_refused_total", "reason" => refusal.label())
                    .increment(1);
                tracing::debug!(%peer, reason = refusal.label(), "connection refused");
                let _ = SockRef::from(tcp).shutdown(Shutdown::Both);
            }
        }
    }
}

/// One admitted connection's place in the counts, given back on drop.
#[derive(Debug)]
pub struct Slot {
    connections: Arc<Connections>,
    network: Option<IpNet>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(network) = self.network {
            let mut counts = self
                .connections
                .per_network
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(count) = counts.get_mut(&network) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&network);
                }
            }
        }
        self.connections.total.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Debug)]
struct State {
    _slot: Slot,
    in_flight: Cell<usize>,
    last_active: Cell<Instant>,
    refused: Cell<u32>,
    /// A duplicate of the socket's descriptor, to shut it down from the
    /// watchdog; HTTP/2 only.
    socket: Option<socket2::Socket>,
}

impl State {
    fn close(&self) {
        if let Some(socket) = &self.socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// What the connection's extensions hold: its slot and its requests in
/// flight. Requests reach it with `req.conn_data::<Connection>()`.
#[derive(Debug, Clone)]
pub struct Connection {
    state: Rc<State>,
    max_streams: usize,
}

/// Counts a request in flight on its connection until dropped.
struct InFlight(Rc<State>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .in_flight
            .set(self.0.in_flight.get().saturating_sub(1));
        self.0.last_active.set(Instant::now());
    }
}

fn spawn_watchdog(state: Weak<State>, idle: Duration) {
    actix_web::rt::spawn(async move {
        let mut wake = Instant::now() + idle;
        loop {
            tokio::time::sleep_until(wake.into()).await;
            let Some(state) = state.upgrade() else { return };
            let due = state.last_active.get() + idle;
            if state.in_flight.get() == 0 && due <= Instant::now() {
                tracing::debug!("closing an idle HTTP/2 connection");
                state.close();
                return;
            }
            // Busy: look again one idle period after the last activity, or
            // a full period from now while requests are in flight.
            wake = due.max(Instant::now() + idle / 4);
        }
    });
}

/// The middleware: counts the request in flight on its connection, and
/// answers 429 `too_many_streams` past the cap.
pub async fn limit_streams(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(connection) = req.conn_data::<Connection>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let state = &connection.state;
    state.last_active.set(Instant::now());
    if state.in_flight.get() >= connection.max_streams {
        let refused = state.refused.get().saturating_add(1);
        state.refused.set(refused);
        metrics::counter!("sluice_streams_refused_total").increment(1);
        if refused > MAX_REFUSED_STREAMS {
            state.close();
        }
        let refusal = ApiError::TooManyStreams {
            limit: connection.max_streams,
        }
        .error_response();
        return Ok(req.into_response(refusal).map_into_right_body());
    }
    state.in_flight.set(state.in_flight.get() + 1);
    let _in_flight = InFlight(state.clone());
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_network: usize, total: usize) -> Limits {
        Limits {
            per_network,
            total,
            streams_per_connection: 1,
            idle: Duration::from_secs(1),
        }
    }

    #[test]
    fn slots_are_capped_per_network_and_in_total_and_given_back_on_drop() {
        let connections = Connections::new(limits(2, 3), vec![]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let a1 = connections.admit(ip("2001:db8::1"));
        let a2 = connections.admit(ip("2001:db8::2"));
        assert!(a1.is_ok() && a2.is_ok());
        assert_eq!(
            connections.admit(ip("2001:db8::3")).err(),
            Some(Refusal::PerNetwork)
        );
        let b = connections.admit(ip("10.0.0.1"));
        assert!(b.is_ok());
        assert_eq!(
            connections.admit(ip("10.0.0.2")).err(),
            Some(Refusal::Total)
        );
        assert_eq!(connections.open(), 3);
        drop(a1);
        assert!(connections.admit(ip("2001:db8::4")).is_ok());
        drop((a2, b));
        assert_eq!(connections.open(), 0);
    }

    #[test]
    fn trusted_proxies_are_exempt_from_the_per_network_cap() {
        let trusted = vec!["10.0.0.0/8".parse().unwrap()];
        let connections = Connections::new(limits(1, 10), trusted);
        let proxy: IpAddr = "10.9.9.9".parse().unwrap();
        let slots: Vec<_> = (0..5).map(|_| connections.admit(proxy)).collect();
        assert!(slots.iter().all(Result::is_ok));
    }
}
