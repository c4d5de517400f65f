//! Produce responses: offsets in request order on success, and on any
//! failure an error that still carries every message's own result, so a
//! client retries only what was not acknowledged and is worth retrying.
//!
//! The status follows the worst outcome: a message that may be written
//! (504, retry only after checking), then one that was not written for a
//! passing reason (503 with `Retry-After`), then one Kafka refused for
//! good (413 or 400: fix it, retrying it unchanged fails again).

use actix_web::HttpResponse;
use serde::Serialize;

use crate::error::{respond_with, Code};
use crate::kafka::{Delivered, DeliveryFailure, Rejection};

impl From<Rejection> for Code {
    fn from(rejection: Rejection) -> Code {
        match rejection {
            Rejection::TooLarge => Code::MessageTooLarge,
            Rejection::InvalidRecord => Code::InvalidMessage,
            Rejection::InvalidTimestamp => Code::InvalidTimestamp,
        }
    }
}

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
        /// `not_persisted` (safe to retry), `unknown` (a retry may
        /// duplicate it), or why Kafka refused it for good:
        /// `message_too_large`, `invalid_message`, `invalid_timestamp`.
        #[serde(rename = "Error")]
        #[schema(value_type = String)]
        error: MessageError,
        #[serde(rename = "Message")]
        message: String,
    },
}

/// One message's failure: a per-message status, or the catalogue code of
/// Kafka's refusal.
#[derive(Debug, Clone, Copy)]
pub enum MessageError {
    /// Certainly not written: safe to retry.
    NotPersisted,
    /// Perhaps written: a retry may duplicate it.
    Unknown,
    /// Refused for good.
    Refused(Code),
}

impl Serialize for MessageError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match self {
            MessageError::NotPersisted => "not_persisted",
            MessageError::Unknown => "unknown",
            MessageError::Refused(code) => code.as_str(),
        })
    }
}

/// The success body: `{"offsets":[{"Partition":p,"Offset":o}, …]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Offsets {
    offsets: Vec<Offset>,
}

/// A produce that was not wholly acknowledged.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Failure {
    #[schema(value_type = String)]
    code: Code,
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
    let not_persisted = outcomes
        .iter()
        .filter(|o| matches!(o, Err(DeliveryFailure::NotPersisted(_))))
        .count();
    let first_rejection = outcomes.iter().find_map(|o| match o {
        Err(DeliveryFailure::Rejected(rejection, _)) => Some(*rejection),
        _ => None,
    });
    let results: Vec<MessageResult> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Ok(d) => MessageResult::Stored(Offset {
                partition: d.partition,
                offset: d.offset,
            }),
            Err(DeliveryFailure::NotPersisted(message)) => MessageResult::Failed {
                error: MessageError::NotPersisted,
                message,
            },
            Err(DeliveryFailure::Unknown(message)) => MessageResult::Failed {
                error: MessageError::Unknown,
                message,
            },
            Err(DeliveryFailure::Rejected(rejection, message)) => MessageResult::Failed {
                error: MessageError::Refused(rejection.into()),
                message,
            },
        })
        .collect();
    let (code, message) = if any_unknown {
        (
            Code::DeliveryUnknown,
            format!("{failed} of {total} message(s) were not acknowledged, and some may have been written; see results"),
        )
    } else if not_persisted > 0 {
        let code = if not_persisted == total {
            Code::KafkaUnavailable
        } else {
            Code::PartialFailure
        };
        (
            code,
            format!("{failed} of {total} message(s) were not written; retry only those marked not_persisted"),
        )
    } else {
        // Only refusals for good are left; the first names the answer.
        let rejection = first_rejection.unwrap_or(Rejection::InvalidRecord);
        (
            rejection.into(),
            format!("{failed} of {total} message(s) were refused by Kafka and would be refused again as they are; see results"),
        )
    };
    respond_with(
        code,
        std::time::Duration::from_secs(1),
        &Failure {
            code,
            message,
            results,
        },
    )
}

#[cfg(test)]
mod tests {
    use actix_web::body::to_bytes;
    use actix_web::http::StatusCode;
    use serde_json::Value;

    use super::*;

    const STORED: Result<Delivered, DeliveryFailure> = Ok(Delivered {
        partition: 0,
        offset: 7,
    });

    fn too_large() -> Result<Delivered, DeliveryFailure> {
        Err(DeliveryFailure::Rejected(Rejection::TooLarge, "big".into()))
    }

    fn not_persisted() -> Result<Delivered, DeliveryFailure> {
        Err(DeliveryFailure::NotPersisted("queue full".into()))
    }

    fn unknown() -> Result<Delivered, DeliveryFailure> {
        Err(DeliveryFailure::Unknown("timed out".into()))
    }

    async fn answer(
        outcomes: Vec<Result<Delivered, DeliveryFailure>>,
    ) -> (StatusCode, bool, Value) {
        let response = respond(outcomes);
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let body = to_bytes(response.into_body()).await.unwrap();
        (status, retry_after, serde_json::from_slice(&body).unwrap())
    }

    #[actix_web::test]
    async fn a_message_kafka_refused_as_too_large_is_a_413_without_retry_after() {
        let (status, retry_after, body) = answer(vec![too_large()]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(!retry_after);
        assert_eq!(body["code"], "message_too_large");
        assert_eq!(body["results"][0]["Error"], "message_too_large");
    }

    #[actix_web::test]
    async fn a_refused_timestamp_beside_a_stored_message_is_a_400_with_each_result() {
        let timestamp = Err(DeliveryFailure::Rejected(
            Rejection::InvalidTimestamp,
            "old".into(),
        ));
        let (status, retry_after, body) = answer(vec![STORED, timestamp]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(!retry_after);
        assert_eq!(body["code"], "invalid_timestamp");
        assert_eq!(body["results"][0]["Offset"], 7);
        assert_eq!(body["results"][1]["Error"], "invalid_timestamp");
    }

    #[actix_web::test]
    async fn a_retryable_failure_beside_a_refusal_is_a_503_whose_results_keep_the_refusal() {
        let (status, retry_after, body) = answer(vec![too_large(), not_persisted()]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after);
        assert_eq!(body["code"], "partial_failure");
        assert_eq!(body["results"][0]["Error"], "message_too_large");
        assert_eq!(body["results"][1]["Error"], "not_persisted");
    }

    #[actix_web::test]
    async fn any_message_that_may_be_written_makes_the_whole_answer_a_504() {
        let (status, retry_after, body) =
            answer(vec![STORED, too_large(), not_persisted(), unknown()]).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert!(!retry_after);
        assert_eq!(body["code"], "delivery_unknown");
        assert_eq!(body["results"][3]["Error"], "unknown");
    }

    #[actix_web::test]
    async fn nothing_written_for_a_passing_reason_is_kafka_unavailable() {
        let (status, retry_after, body) = answer(vec![not_persisted(), not_persisted()]).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(retry_after);
        assert_eq!(body["code"], "kafka_unavailable");
    }
}
