//! Turning a produce request (JSON array, or a raw body) into messages,
//! with every limit checked before anything is sent.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::config::ProduceSettings;
use crate::encoding::Encoding;
use crate::error::{ApiError, Code};
use crate::kafka::OutgoingMessage;

/// `?format=`: a JSON array of messages (default), or one raw value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Raw,
}

/// The query string of `POST /topic/{topic}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProduceQuery {
    #[serde(default)]
    pub format: Format,
    #[serde(default)]
    pub encoding: Encoding,
    /// The key of a raw message.
    pub key: Option<String>,
}

/// One message of a JSON produce body, as the OVH API spells it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonMessage {
    /// Required, but may be `null` (a tombstone).
    #[serde(rename = "Value", deserialize_with = "Option::deserialize")]
    #[schema(required = true)]
    value: Option<String>,
    #[serde(rename = "Key", default)]
    key: Option<String>,
    #[serde(rename = "Headers", default, deserialize_with = "ordered_headers")]
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    headers: Vec<(String, String)>,
    #[serde(rename = "Partition", default)]
    #[schema(minimum = 0)]
    partition: Option<i32>,
    /// Milliseconds since the epoch.
    #[serde(rename = "Timestamp", default)]
    #[schema(minimum = 0)]
    timestamp: Option<i64>,
}

/// Reads a JSON object of string values keeping its order, since Kafka
/// headers are ordered. `null` means no headers.
fn ordered_headers<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<(String, String)>, D::Error> {
    struct Headers;
    impl<'de> Visitor<'de> for Headers {
        type Value = Vec<(String, String)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of string values")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = map.next_entry::<String, String>()? {
                out.push((k, v));
            }
            Ok(out)
        }
    }
    deserializer.deserialize_any(Headers)
}

fn decode(
    encoding: Encoding,
    field: &str,
    index: usize,
    text: String,
) -> Result<Vec<u8>, ApiError> {
    match encoding {
        Encoding::None => Ok(text.into_bytes()),
        Encoding::Base64 => BASE64.decode(text.as_bytes()).map_err(|e| ApiError::Input {
            code: Code::InvalidBase64,
            message: format!("message {index}: {field} is not valid base64: {e}"),
        }),
    }
}

/// Bytes of key, value and headers: what quotas and limits count.
pub fn size(message: &OutgoingMessage) -> usize {
    message.key.as_ref().map_or(0, Vec::len)
        + message.value.as_ref().map_or(0, Vec::len)
        + message
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
}

fn check_size(
    limits: &ProduceSettings,
    index: usize,
    message: &OutgoingMessage,
) -> Result<(), ApiError> {
    let bytes = size(message);
    if bytes > limits.max_message_bytes {
        return Err(ApiError::Input {
            code: Code::MessageTooLarge,
            message: format!(
                "message {index} has {bytes} bytes of key, value and headers; the limit is {}",
                limits.max_message_bytes
            ),
        });
    }
    Ok(())
}

/// Parses the body into messages. Partitions are checked against the
/// topic later, when its partition count is known.
pub fn parse(
    query: &ProduceQuery,
    body: &[u8],
    limits: &ProduceSettings,
) -> Result<Vec<OutgoingMessage>, ApiError> {
    match query.format {
        Format::Raw => {
            let key = query
                .key
                .clone()
                .map(|k| decode(query.encoding, "key", 0, k))
                .transpose()?;
            let message = OutgoingMessage {
                key,
                value: Some(body.to_vec()),
                headers: Vec::new(),
                partition: None,
                timestamp: None,
            };
            check_size(limits, 0, &message)?;
            Ok(vec![message])
        }
        Format::Json => {
            if query.key.is_some() {
                return Err(ApiError::Input {
                    code: Code::InvalidQuery,
                    message: "?key= applies to format=raw only; JSON messages carry their own Key"
                        .into(),
                });
            }
            let items: Vec<&RawValue> =
                serde_json::from_slice(body).map_err(|e| ApiError::Input {
                    code: Code::MalformedJson,
                    message: format!("the body must be a JSON array of messages: {e}"),
                })?;
            if items.is_empty() {
                return Err(ApiError::Input {
                    code: Code::EmptyBatch,
                    message: "the array holds no message".into(),
                });
            }
            if items.len() > limits.max_batch_messages {
                return Err(ApiError::Input {
                    code: Code::BatchTooLarge,
                    message: format!(
                        "the batch has {} messages; the limit is {}",
                        items.len(),
                        limits.max_batch_messages
                    ),
                });
            }
            items
                .into_iter()
                .enumerate()
                .map(|(index, raw)| {
                    let json: JsonMessage =
                        serde_json::from_str(raw.get()).map_err(|e| ApiError::Input {
                            code: Code::InvalidMessage,
                            message: format!("message {index}: {e}"),
                        })?;
                    to_outgoing(query.encoding, index, json, limits)
                })
                .collect()
        }
    }
}

fn to_outgoing(
    encoding: Encoding,
    index: usize,
    json: JsonMessage,
    limits: &ProduceSettings,
) -> Result<OutgoingMessage, ApiError> {
    let invalid = |message: String| ApiError::Input {
        code: Code::InvalidMessage,
        message,
    };
    if json.partition.is_some_and(|p| p < 0) {
        return Err(invalid(format!(
            "message {index}: Partition must not be negative"
        )));
    }
    if json.timestamp.is_some_and(|t| t < 0) {
        return Err(invalid(format!(
            "message {index}: Timestamp must be milliseconds since the epoch"
        )));
    }
    let headers = json
        .headers
        .into_iter()
        .map(|(name, value)| Ok((name, decode(encoding, "a header value", index, value)?)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    let message = OutgoingMessage {
        key: json
            .key
            .map(|k| decode(encoding, "Key", index, k))
            .transpose()?,
        value: json
            .value
            .map(|v| decode(encoding, "Value", index, v))
            .transpose()?,
        headers,
        partition: json.partition,
        timestamp: json.timestamp,
    };
    check_size(limits, index, &message)?;
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ProduceSettings {
        ProduceSettings {
            max_body_bytes: 1 << 20,
            max_message_bytes: 100,
            max_batch_messages: 3,
            timeout: std::time::Duration::from_secs(5),
            idempotency_ttl: std::time::Duration::from_secs(60),
            idempotency_max_keys: 10,
            idempotency_purge_interval: std::time::Duration::from_secs(1),
        }
    }

    fn json(body: &str) -> Result<Vec<OutgoingMessage>, ApiError> {
        parse(&ProduceQuery::default(), body.as_bytes(), &limits())
    }

    fn code(result: Result<Vec<OutgoingMessage>, ApiError>) -> String {
        result.unwrap_err().code().as_str().to_owned()
    }

    #[test]
    fn the_ovh_array_parses_with_null_as_a_tombstone() {
        let messages = json(
            r#"[{"Value":"first message"},{"Value":null,"Key":"k","Headers":{"b":"2","a":"1"}}]"#,
        )
        .unwrap();
        assert_eq!(messages[0].value.as_deref(), Some(&b"first message"[..]));
        assert_eq!(messages[1].value, None);
        assert_eq!(messages[1].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(
            messages[1].headers,
            vec![("b".into(), b"2".to_vec()), ("a".into(), b"1".to_vec())]
        );
    }

    #[test]
    fn bad_messages_are_refused_with_the_right_code() {
        assert_eq!(code(json("{")), "malformed_json");
        assert_eq!(code(json(r#"{"Value":"x"}"#)), "malformed_json");
        assert_eq!(code(json("[]")), "empty_batch");
        assert_eq!(code(json(r#"[{"Key":"k"}]"#)), "invalid_message");
        assert_eq!(code(json(r#"[{"Value":5}]"#)), "invalid_message");
        assert_eq!(code(json(r#"[{"value":"x"}]"#)), "invalid_message");
        assert_eq!(
            code(json(r#"[{"Value":"x","Partition":-1}]"#)),
            "invalid_message"
        );
        assert_eq!(
            code(json(r#"[{"Value":"x","Headers":{"a":1}}]"#)),
            "invalid_message"
        );
        assert_eq!(
            code(json(
                r#"[{"Value":"1"},{"Value":"2"},{"Value":"3"},{"Value":"4"}]"#
            )),
            "batch_too_large"
        );
        let big = format!(r#"[{{"Value":"{}"}}]"#, "x".repeat(101));
        assert_eq!(code(json(&big)), "message_too_large");
    }

    #[test]
    fn base64_decodes_keys_values_and_headers() {
        let query = ProduceQuery {
            encoding: Encoding::Base64,
            ..ProduceQuery::default()
        };
        let body = r#"[{"Value":"AAEC/w==","Key":"aw==","Headers":{"h":"/w=="}}]"#;
        let messages = parse(&query, body.as_bytes(), &limits()).unwrap();
        assert_eq!(messages[0].value.as_deref(), Some(&[0u8, 1, 2, 255][..]));
        assert_eq!(messages[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(messages[0].headers[0].1, vec![255u8]);
        let bad = parse(&query, br#"[{"Value":"not base64!"}]"#, &limits());
        assert_eq!(code(bad), "invalid_base64");
    }

    #[test]
    fn a_raw_body_is_one_value_byte_for_byte() {
        let query = ProduceQuery {
            format: Format::Raw,
            key: Some("k1".into()),
            ..ProduceQuery::default()
        };
        let body = br#"{"my": {"complex": ["json", "here"]}}"#;
        let messages = parse(&query, body, &limits()).unwrap();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].value.as_deref(), Some(&body[..]));
        assert_eq!(messages[0].key.as_deref(), Some(&b"k1"[..]));
    }
}
