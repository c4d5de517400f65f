//! Why a stream ended, as its client is told: an SSE `event:` with the
//! error document, or a WebSocket close code with the error's stable code
//! as the reason.

use crate::error::{ApiError, Code, ErrorBody};

/// Why a stream ended.
#[derive(Debug)]
pub enum End {
    /// The node is draining: reconnect (a balancer sends you elsewhere).
    Shutdown,
    /// The user was revoked, disabled or lost its grant, the tenant was
    /// disabled, or its stream quota was lowered below the open streams;
    /// or consuming failed (the topic was deleted, Kafka is down).
    Failed(ApiError),
    /// Nothing delivered and nothing heard for `consume.stream_idle`.
    Idle,
    /// The client sent too many malformed frames.
    BadFrames,
    /// The client went away; nothing to tell.
    ClientGone,
}

/// The WebSocket close code of a node that is going away (RFC 6455).
pub const GOING_AWAY: u16 = 1001;

impl End {
    /// The error document the client is told, if any.
    pub fn body(&self) -> Option<ErrorBody> {
        let (code, message) = match self {
            End::Shutdown => (
                Code::ShuttingDown,
                "this node is shutting down; reconnect to go on from where the group is".to_owned(),
            ),
            End::Failed(err) => return Some(err.body()),
            End::Idle => (
                Code::StreamIdle,
                "nothing was delivered or received for consume.stream_idle; reconnect when needed"
                    .to_owned(),
            ),
            End::BadFrames => (
                Code::InvalidFrame,
                "too many malformed frames; the connection is closed".to_owned(),
            ),
            End::ClientGone => return None,
        };
        Some(ErrorBody {
            code,
            message,
            request_id: None,
        })
    }

    /// The WebSocket close code: 1001 for a draining node, else 4000 plus
    /// the HTTP status of the error (4401 revoked, 4403 grant removed,
    /// 4429 over the stream quota, 4400 bad frames, 4408 idle, 4404 topic
    /// deleted, 4503 a dependency down).
    pub fn close_code(&self) -> u16 {
        match self {
            End::Shutdown => GOING_AWAY,
            other => other
                .body()
                .map_or(1000, |body| 4000 + body.code.status().as_u16()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_say_why_the_stream_ended() {
        assert_eq!(End::Shutdown.close_code(), 1001);
        assert_eq!(End::Failed(ApiError::Unauthenticated).close_code(), 4401);
        assert_eq!(
            End::Failed(ApiError::Forbidden("x".into())).close_code(),
            4403
        );
        assert_eq!(End::BadFrames.close_code(), 4400);
        assert_eq!(End::Idle.close_code(), 4408);
        let quota = ApiError::Throttled {
            code: Code::TooManyOpenStreams,
            retry_after: std::time::Duration::from_secs(1),
            message: String::new(),
        };
        assert_eq!(End::Failed(quota).close_code(), 4429);
    }
}
