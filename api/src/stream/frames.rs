//! The WebSocket frames of a stream: what the client may send (`ack`,
//! `nack`, `credit`) and what the server sends (a batch, a confirmation,
//! an error), all JSON text.

use serde::{Deserialize, Serialize};

use super::window::MAX_CREDIT;
use crate::consume::OutMessage;
use crate::error::{Code, ErrorBody};

/// A client frame as it arrives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    ack: Option<String>,
    nack: Option<String>,
    credit: Option<u64>,
}

/// What a client frame asks for: settle a receipt, set the credit, or
/// both at once (`{"ack":"…","credit":N}`).
#[derive(Debug, PartialEq, Eq)]
pub struct ClientFrame {
    pub settle: Option<Settle>,
    pub credit: Option<u64>,
}

/// Settling one receipt, whole.
#[derive(Debug, PartialEq, Eq)]
pub enum Settle {
    Ack(String),
    Nack(String),
}

impl Settle {
    pub fn receipt(&self) -> &str {
        match self {
            Settle::Ack(r) | Settle::Nack(r) => r,
        }
    }
}

fn malformed(message: String) -> ErrorBody {
    ErrorBody {
        code: Code::InvalidFrame,
        message,
        request_id: None,
    }
}

impl ClientFrame {
    /// Parses a text frame; a malformed one is an `invalid_frame` error
    /// saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, ErrorBody> {
        let raw: Raw = serde_json::from_str(text).map_err(|err| {
            malformed(format!(
                "a frame is one JSON object: {{\"ack\":\"<receipt>\"}}, {{\"nack\":\"<receipt>\"}} or {{\"credit\":N}} ({err})"
            ))
        })?;
        let settle = match (raw.ack, raw.nack) {
            (Some(_), Some(_)) => {
                return Err(malformed("a frame may ack or nack, not both".to_owned()))
            }
            (Some(receipt), None) => Some(Settle::Ack(receipt)),
            (None, Some(receipt)) => Some(Settle::Nack(receipt)),
            (None, None) => None,
        };
        if let Some(credit) = raw.credit.filter(|c| *c > MAX_CREDIT) {
            return Err(malformed(format!(
                "credit must be 0..={MAX_CREDIT}, not {credit}"
            )));
        }
        if settle.is_none() && raw.credit.is_none() {
            return Err(malformed("a frame names ack, nack or credit".to_owned()));
        }
        Ok(Self {
            settle,
            credit: raw.credit,
        })
    }
}

/// A batch of messages; `receipt` in manual mode.
#[derive(Debug, Serialize)]
pub struct BatchFrame {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    pub messages: Vec<OutMessage>,
}

/// The answer to a settle: done, or why not.
#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SettledFrame<'a> {
    Acked(&'a str),
    Nacked(&'a str),
}

/// An error about one frame (or one receipt), the connection staying open.
#[derive(Debug, Serialize)]
pub struct ErrorFrame<'a> {
    pub error: ErrorBody,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_ack_nack_credit_or_ack_with_credit_parse() {
        assert_eq!(
            ClientFrame::parse(r#"{"ack":"r1"}"#).unwrap(),
            ClientFrame {
                settle: Some(Settle::Ack("r1".into())),
                credit: None
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"nack":"r1","credit":5}"#).unwrap(),
            ClientFrame {
                settle: Some(Settle::Nack("r1".into())),
                credit: Some(5)
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"credit":0}"#).unwrap().credit,
            Some(0)
        );
    }

    #[test]
    fn malformed_frames_say_what_is_wrong() {
        for bad in [
            "",
            "nope",
            "[]",
            "{}",
            r#"{"ack":1}"#,
            r#"{"ack":"a","nack":"b"}"#,
            r#"{"credit":-1}"#,
            r#"{"credit":100001}"#,
            r#"{"credit":1,"extra":true}"#,
        ] {
            let err = ClientFrame::parse(bad).unwrap_err();
            assert_eq!(err.code, Code::InvalidFrame, "{bad}");
        }
    }
}
