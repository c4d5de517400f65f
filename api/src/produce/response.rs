//! Produce responses: offsets in request order on success, and on any
//! failure a 5xx that still carries every message's own result, so a client
//! retries only what was not acknowledged.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;

use crate::kafka::{Delivered, DeliveryFailure};

/// Where Kafka stored one message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Offset {
    #[serde(rename = "Partition")]
    pub partition: i32,
    #[serde(rename = "Offset")]
    pub offset: i64,
}

/// One message's result in a failed request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MessageResult {
    Stored(Offset),
    Failed {
        /// `not_persisted` (safe to retry) or `unknown` (a retry may
        /// duplicate it).
        #[serde(rename = "Error")]
        error: &'static str,
        #[serde(rename = "Message")]
        message: String,
    },
}

/// The success body: `{"offsets":[{"Partition":p,"Offset":o}, …]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Offsets {
    offsets: Vec<Offset>,
}

/// A produce that was not wholly acknowledged.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Failure {
    code: &'static str,
    message: String,
    results: Vec<MessageResult>,
}

/// Builds the response for a batch's outcomes.
pub fn respond(outcomes: Vec<Result<Delivered, DeliveryFailure>>) -> HttpResponse {
    let total = outcomes.len();
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    if failed == 0 {
        let offsets: Vec<Offset> = outcomes
            .into_iter()
            .flatten()
            .map(|d| Offset {
                partition: d.partition,
                offset: d.offset,
            })
            .collect();
        return HttpResponse::Ok().json(Offsets { offsets });
    }
    let any_unknown = outcomes
        .iter()
        .any(|o| matches!(o, Err(DeliveryFailure::Unknown(_))));
    let results: Vec<MessageResult> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(d) => MessageResult::Stored(Offset {
                partition: d.partition,
                offset: d.offset,
            }),
            Err(DeliveryFailure::NotPersisted(message)) => MessageResult::Failed {
                error: "not_persisted",
                message,
            },
            Err(DeliveryFailure::Unknown(message)) => MessageResult::Failed {
                error: "unknown",
                message,
            },
        })
        .collect();
    let (status, code) = match (any_unknown, failed == total) {
        (true, _) => (StatusCode::GATEWAY_TIMEOUT, "delivery_unknown"),
        (false, true) => (StatusCode::SERVICE_UNAVAILABLE, "kafka_unavailable"),
        (false, false) => (StatusCode::SERVICE_UNAVAILABLE, "partial_failure"),
    };
    let message = if any_unknown {
        format!("{failed} of {total} message(s) were not acknowledged, and some may have been written; see results")
    } else {
        format!("{failed} of {total} message(s) were not written; retry only those marked not_persisted")
    };
    let mut response = HttpResponse::build(status);
    if !any_unknown {
        response.insert_header(("Retry-After", "1"));
    }
    response.json(Failure {
        code,
        message,
        results,
    })
}
