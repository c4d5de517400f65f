//! The HTTP error type. Every error leaves as JSON with a stable `code` and
//! a `message`; the status follows DESIGN.md's table (400 for all bad input,
//! never 422; 5xx only for failures of our dependencies).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{error, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use tenancy::Error as TenancyError;

use crate::body_deadline::timeout_of;
use crate::kafka::KafkaError;

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable; clients branch on this.
    pub code: String,
    /// Human-readable; may change between versions.
    pub message: String,
    /// The id the request was logged under (also in `X-Request-Id`); added
    /// on the way out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Errors a handler can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed input the tenancy rules never saw (bad JSON, bad query).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within `http.body_read_timeout_ms`.
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyTimeout { timeout_ms: u128 },
    /// More requests in flight on one connection than
    /// `http.max_streams_per_connection`.
    #[error("more than {limit} requests in flight on this connection; wait for answers or open another connection")]
    TooManyStreams { limit: usize },
    /// A message or batch over its limit.
    #[error("{message}")]
    TooLarge { code: &'static str, message: String },
    #[error("a valid admin bearer token is required")]
    AdminUnauthorized,
    /// Missing or bad Basic credentials on the data plane.
    #[error("valid credentials are required (HTTP Basic with your sluice username and password)")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// Over the tenant's quota.
    #[error("{message}")]
    RateLimited {
        retry_after: std::time::Duration,
        message: String,
    },
    /// A per-tenant cap on a shared resource (e.g. consumes running at
    /// once) is reached; it frees up as the tenant's own requests finish.
    #[error("{message}")]
    Busy {
        code: &'static str,
        retry_after: std::time::Duration,
        message: String,
    },
    /// Too many password checks for this username or address.
    #[error("too many login attempts; retry later")]
    LoginThrottled { retry_after: std::time::Duration },
    /// The node cannot take more work of this kind right now (the argon2
    /// queue is full); another node, or this one shortly, can.
    #[error("the node is overloaded; retry shortly")]
    Overloaded { retry_after: std::time::Duration },
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
}

impl ApiError {
    /// The stable code of this error.
    pub fn code(&self) -> String {
        match self {
            ApiError::BadRequest { code, .. } => (*code).to_owned(),
            ApiError::PayloadTooLarge { .. } => "payload_too_large".to_owned(),
            ApiError::BodyTimeout { .. } => "body_timeout".to_owned(),
            ApiError::TooManyStreams { .. } => "too_many_streams".to_owned(),
            ApiError::TooLarge { code, .. } => (*code).to_owned(),
            ApiError::AdminUnauthorized | ApiError::Unauthenticated => "unauthorized".to_owned(),
            ApiError::Forbidden(_) => "forbidden".to_owned(),
            ApiError::RateLimited { .. } => "rate_limited".to_owned(),
            ApiError::Busy { code, .. } => (*code).to_owned(),
            ApiError::LoginThrottled { .. } => "too_many_login_attempts".to_owned(),
            ApiError::Overloaded { .. } => "overloaded".to_owned(),
            ApiError::Kafka(err) => match err {
                KafkaError::UnknownTopic(_) => "topic_not_found",
                KafkaError::TopicExists(_) => "topic_exists",
                KafkaError::Refused(_) => "kafka_refused",
                KafkaError::Unavailable(_) => "kafka_unavailable",
                KafkaError::Config(_) | KafkaError::ReadFailed(_) => "internal",
            }
            .to_owned(),
            ApiError::RouteNotFound { .. } => "route_not_found".to_owned(),
            ApiError::MethodNotAllowed => "method_not_allowed".to_owned(),
            ApiError::Tenancy(err) => match err {
                TenancyError::Invalid(v) => {
                    format!("invalid_{}", v.field.split('.').next().unwrap_or(v.field))
                }
                TenancyError::NotFound { kind, .. } => format!("{kind}_not_found"),
                TenancyError::AlreadyExists { kind, .. } => format!("{kind}_exists"),
                TenancyError::TenantInUse { .. } => "tenant_in_use".to_owned(),
                TenancyError::QuotaExceeded { .. } => "quota_exceeded".to_owned(),
                TenancyError::GroupLimitReached { .. } => "group_limit_reached".to_owned(),
                TenancyError::Database { .. } => "database_unavailable".to_owned(),
                TenancyError::Migrate(_) | TenancyError::Hashing(_) => "internal".to_owned(),
            },
        }
    }

    /// The message shown to the client. Internal failures get a generic
    /// text: their details go to the log, where operators can see them.
    fn public_message(&self) -> String {
        match self {
            ApiError::Tenancy(TenancyError::Database { context, .. }) => {
                format!("the tenancy database is unavailable (while trying to {context}); retry shortly")
            }
            ApiError::Tenancy(TenancyError::Migrate(_) | TenancyError::Hashing(_))
            | ApiError::Kafka(KafkaError::Config(_) | KafkaError::ReadFailed(_)) => {
                "internal error; see the server log".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooManyStreams { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge { .. } | ApiError::TooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::AdminUnauthorized | ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. }
            | ApiError::Busy { .. }
            | ApiError::LoginThrottled { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Kafka(err) => match err {
                KafkaError::UnknownTopic(_) => StatusCode::NOT_FOUND,
                KafkaError::TopicExists(_) => StatusCode::CONFLICT,
                KafkaError::Refused(_) => StatusCode::BAD_REQUEST,
                KafkaError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                KafkaError::Config(_) | KafkaError::ReadFailed(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            ApiError::RouteNotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Tenancy(err) => match err {
                TenancyError::Invalid(_) => StatusCode::BAD_REQUEST,
                TenancyError::NotFound { .. } => StatusCode::NOT_FOUND,
                TenancyError::AlreadyExists { .. }
                | TenancyError::TenantInUse { .. }
                | TenancyError::QuotaExceeded { .. }
                | TenancyError::GroupLimitReached { .. } => StatusCode::CONFLICT,
                TenancyError::Database { .. } => StatusCode::SERVICE_UNAVAILABLE,
                TenancyError::Migrate(_) | TenancyError::Hashing(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self, source = ?std::error::Error::source(self), "request failed");
        }
        let mut response = HttpResponse::build(status);
        match self {
            ApiError::AdminUnauthorized => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            ApiError::Unauthenticated => {
                let challenge = format!("Basic realm=\"{}\"", crate::auth::REALM);
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    response.insert_header((header::WWW_AUTHENTICATE, value));
                }
            }
            ApiError::RateLimited { retry_after, .. }
            | ApiError::Busy { retry_after, .. }
            | ApiError::LoginThrottled { retry_after }
            | ApiError::Overloaded { retry_after } => {
                let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            ApiError::Tenancy(TenancyError::Database { .. })
            | ApiError::Kafka(KafkaError::Unavailable(_))
            | ApiError::TooManyStreams { .. } => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            _ => {}
        }
        response.json(ErrorBody {
            code: self.code(),
            message: self.public_message(),
            request_id: None,
        })
    }
}

/// Turns actix's JSON extractor failures into our error shape.
pub fn json_error(err: error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let api = match &err {
        error::JsonPayloadError::Overflow { limit }
        | error::JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge { limit: *limit }
        }
        error::JsonPayloadError::Payload(payload) if timeout_of(payload).is_some() => {
            ApiError::BodyTimeout {
                timeout_ms: timeout_of(payload).unwrap_or_default().as_millis(),
            }
        }
        error::JsonPayloadError::Deserialize(e) => ApiError::BadRequest {
            code: "malformed_json",
            message: format!("the body is not valid for this route: {e}"),
        },
        other => ApiError::BadRequest {
            code: "malformed_json",
            message: format!("the body could not be read as JSON: {other}"),
        },
    };
    api.into()
}

/// Turns query-string failures into our error shape.
pub fn query_error(err: error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest {
        code: "invalid_query",
        message: format!("the query string is not valid for this route: {err}"),
    }
    .into()
}

/// Turns path-segment failures into our error shape.
pub fn path_error(err: error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::BadRequest {
        code: "invalid_path",
        message: format!("the path is not valid: {err}"),
    }
    .into()
}

impl From<tenancy::ValidationError> for ApiError {
    fn from(err: tenancy::ValidationError) -> Self {
        ApiError::Tenancy(err.into())
    }
}

/// The fallback for unknown routes: a JSON 404 rather than an empty body.
pub async fn route_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::RouteNotFound {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}

/// Replaces actix's empty 405 with our JSON error.
pub fn method_not_allowed<B>(
    res: actix_web::dev::ServiceResponse<B>,
) -> actix_web::Result<actix_web::middleware::ErrorHandlerResponse<B>> {
    let (req, _) = res.into_parts();
    let res =
        actix_web::dev::ServiceResponse::new(req, ApiError::MethodNotAllowed.error_response());
    Ok(actix_web::middleware::ErrorHandlerResponse::Response(
        res.map_into_right_body(),
    ))
}
