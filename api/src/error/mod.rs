//! The HTTP error type. Every error leaves as JSON with a stable `code` and
//! a `message`; the code's entry in the catalogue ([`Code`]) decides the
//! status and `Retry-After` (400 for all bad input, never 422; 5xx only for
//! failures of our dependencies).

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{error, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;
use tenancy::Error as TenancyError;

use crate::body_deadline::timeout_of;
use crate::kafka::KafkaError;

mod code;

pub use code::Code;

/// The realm named in `WWW-Authenticate` on the data plane.
pub const REALM: &str = "sluice";

/// The body of every error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable; clients branch on this.
    #[schema(value_type = String)]
    pub code: Code,
    /// Human-readable; may change between versions.
    pub message: String,
    /// The id the request was logged under (also in `X-Request-Id`); added
    /// on the way out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Errors a handler can return. Each one maps onto one [`Code`], which
/// decides its status and `Retry-After`; the variants only carry what the
/// message and the header need.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Input the tenancy rules never saw (bad JSON, bad query, a bad
    /// message in a batch): always a 4xx of the catalogue.
    #[error("{message}")]
    Input { code: Code, message: String },
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// The body did not arrive within `http.body_read_timeout`.
    #[error("the request body did not arrive within {timeout_ms} ms")]
    BodyTimeout { timeout_ms: u128 },
    /// More requests in flight on one connection than
    /// `http.max_streams_per_connection`.
    #[error("more than {limit} requests in flight on this connection; wait for answers or open another connection")]
    TooManyStreams { limit: usize },
    #[error("a valid admin bearer token is required")]
    AdminUnauthorized,
    /// Missing or bad Basic credentials on the data plane.
    #[error("valid credentials are required (HTTP Basic with your sluice username and password)")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    /// Over a limit for a while (the tenant's quota, a per-tenant cap on a
    /// shared resource, login attempts, the argon2 queue): retry after
    /// `retry_after`.
    #[error("{message}")]
    Throttled {
        code: Code,
        retry_after: std::time::Duration,
        message: String,
    },
    #[error("no route for {method} {path}")]
    RouteNotFound { method: String, path: String },
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    /// A handler's dependency was not registered on its listener: a bug
    /// of the server's wiring, never of the request.
    #[error("{0} is not registered on this listener")]
    Unwired(&'static str),
}

impl ApiError {
    /// Too many password checks for this username or address.
    pub fn login_throttled(retry_after: std::time::Duration) -> Self {
        ApiError::Throttled {
            code: Code::TooManyLoginAttempts,
            retry_after,
            message: "too many login attempts; retry later".into(),
        }
    }

    /// The node cannot take more work of this kind right now (the argon2
    /// queue is full); another node, or this one shortly, can.
    pub fn overloaded(retry_after: std::time::Duration) -> Self {
        ApiError::Throttled {
            code: Code::Overloaded,
            retry_after,
            message: "the node is overloaded; retry shortly".into(),
        }
    }

    /// The error as its JSON document, for a stream that reports it in an
    /// event or a frame rather than as a response.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: self.public_message(),
            request_id: None,
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> Code {
        match self {
            ApiError::Input { code, .. } | ApiError::Throttled { code, .. } => *code,
            ApiError::PayloadTooLarge { .. } => Code::PayloadTooLarge,
            ApiError::BodyTimeout { .. } => Code::BodyTimeout,
            ApiError::TooManyStreams { .. } => Code::TooManyStreams,
            ApiError::AdminUnauthorized | ApiError::Unauthenticated => Code::Unauthorized,
            ApiError::Forbidden(_) => Code::Forbidden,
            ApiError::Kafka(err) => match err {
                KafkaError::UnknownTopic(_) => Code::TopicNotFound,
                KafkaError::TopicExists(_) => Code::TopicExists,
                KafkaError::Refused(_) => Code::KafkaRefused,
                KafkaError::Unavailable(_) => Code::KafkaUnavailable,
                KafkaError::Config(_) | KafkaError::ReadFailed(_) => Code::Internal,
            },
            ApiError::RouteNotFound { .. } => Code::RouteNotFound,
            ApiError::MethodNotAllowed => Code::MethodNotAllowed,
            ApiError::Tenancy(err) => tenancy_code(err),
            ApiError::Unwired(_) => Code::Internal,
        }
    }

    /// How long to wait before retrying, where the code says to.
    fn retry_after(&self) -> std::time::Duration {
        match self {
            ApiError::Throttled { retry_after, .. } => *retry_after,
            _ => std::time::Duration::from_secs(1),
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
            | ApiError::Unwired(_)
            | ApiError::Kafka(KafkaError::Config(_) | KafkaError::ReadFailed(_)) => {
                "internal error; see the server log".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// The code of a tenancy failure.
fn tenancy_code(err: &TenancyError) -> Code {
    use tenancy::ObjectKind;
    match err {
        TenancyError::Invalid(v) => Code::invalid(v.field),
        TenancyError::NotFound { kind, .. } => match kind {
            ObjectKind::Tenant => Code::TenantNotFound,
            ObjectKind::User => Code::UserNotFound,
            ObjectKind::Grant => Code::GrantNotFound,
            ObjectKind::Topic => Code::TopicNotFound,
            ObjectKind::Group => Code::GroupNotFound,
        },
        TenancyError::AlreadyExists { kind, .. } => match kind {
            ObjectKind::Tenant => Code::TenantExists,
            ObjectKind::User => Code::UserExists,
            ObjectKind::Grant => Code::GrantExists,
            ObjectKind::Topic => Code::TopicExists,
            // Groups are made by the GET that names them, never refused as
            // existing: this would be a bug.
            ObjectKind::Group => Code::Internal,
        },
        TenancyError::TenantInUse { .. } => Code::TenantInUse,
        TenancyError::QuotaExceeded { .. } => Code::QuotaExceeded,
        TenancyError::GroupLimitReached { .. } => Code::GroupLimitReached,
        TenancyError::ReceiptNotFound => Code::ReceiptNotFound,
        TenancyError::ReceiptExpired => Code::ReceiptExpired,
        TenancyError::ReceiptSettled => Code::ReceiptSettled,
        TenancyError::Database { .. } => Code::DatabaseUnavailable,
        TenancyError::Migrate(_) | TenancyError::Hashing(_) => Code::Internal,
        TenancyError::WeakPassword { .. } => Code::WeakPassword,
    }
}

/// Answers an error document with `code`'s status and `Retry-After` rule.
/// The document is also kept, typed, in the response's extensions, so
/// that [`crate::request_id`] adds the request id without parsing the body.
pub fn respond_with(
    code: Code,
    retry_after: std::time::Duration,
    document: &impl Serialize,
) -> HttpResponse {
    let mut response = HttpResponse::build(code.status());
    if code.retry_after() {
        let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
        response.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    let document = match serde_json::to_value(document) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    let mut response = response.json(&document);
    response.extensions_mut().insert(ErrorDocument(document));
    response
}

/// An error body as fields, kept in the response's extensions until the
/// request id is added on the way out.
#[derive(Debug, Clone)]
pub struct ErrorDocument(pub serde_json::Map<String, serde_json::Value>);

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.code();
        if code.status().is_server_error() {
            tracing::error!(error = %self, source = ?std::error::Error::source(self), "request failed");
        }
        let mut response = respond_with(
            code,
            self.retry_after(),
            &ErrorBody {
                code,
                message: self.public_message(),
                request_id: None,
            },
        );
        let challenge = match self {
            ApiError::AdminUnauthorized => Some("Bearer".to_owned()),
            ApiError::Unauthenticated => Some(format!("Basic realm=\"{REALM}\"")),
            _ => None,
        };
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
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
        error::JsonPayloadError::Deserialize(e) => ApiError::Input {
            code: Code::MalformedJson,
            message: format!("the body is not valid for this route: {e}"),
        },
        other => ApiError::Input {
            code: Code::MalformedJson,
            message: format!("the body could not be read as JSON: {other}"),
        },
    };
    api.into()
}

/// Turns query-string failures into our error shape.
pub fn query_error(err: error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::Input {
        code: Code::InvalidQuery,
        message: format!("the query string is not valid for this route: {err}"),
    }
    .into()
}

/// Turns path-segment failures into our error shape.
pub fn path_error(err: error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::Input {
        code: Code::InvalidPath,
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
