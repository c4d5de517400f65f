//! A group's dead-letter policy as its tenant sets it: checked against the
//! user's grants (the dead-letter topic takes writes).

use tenancy::store::{DeadLetters, MAX_DELIVERIES_LIMIT};
use tenancy::{TopicName, ValidationError};

use crate::auth::{Access, Principal};
use crate::error::ApiError;

fn invalid(reason: impl Into<String>) -> ApiError {
    ValidationError::new("dead_letters", reason).into()
}

/// The policy `max_deliveries` and `dead_letter_topic` ask for (`None`:
/// clear it). The dead-letter topic must lie in the user's tenant under a
/// `write` grant (else 403 `forbidden`) and differ from `topic` (else 400).
pub(super) fn dead_letters(
    user: &Principal,
    topic: &TopicName,
    max_deliveries: Option<i64>,
    dead_letter_topic: Option<&str>,
) -> Result<Option<DeadLetters>, ApiError> {
    let (max, dlq) = match (max_deliveries, dead_letter_topic) {
        (None, None) => return Ok(None),
        (Some(max), Some(dlq)) => (max, dlq),
        _ => {
            return Err(invalid(
                "give both max_deliveries and dead_letter_topic, or neither (null) to clear",
            ))
        }
    };
    let max = i32::try_from(max)
        .ok()
        .filter(|m| (1..=MAX_DELIVERIES_LIMIT).contains(m))
        .ok_or_else(|| invalid(format!("max_deliveries must be 1..={MAX_DELIVERIES_LIMIT}")))?;
    let dlq = user.authorize(dlq, Access::Write)?;
    if &dlq == topic {
        return Err(invalid(
            "the dead-letter topic must differ from the group's topic",
        ));
    }
    Ok(Some(DeadLetters::new(max, dlq)?))
}
