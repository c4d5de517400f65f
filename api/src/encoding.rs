//! `?encoding=`: how keys, values and header values travel in JSON, in
//! both directions. It lives apart from produce and consume because both
//! own it: a client writes and reads with the same setting.

use serde::Deserialize;

/// How keys, values and header values are written in a JSON body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// UTF-8 strings, as they are.
    #[default]
    None,
    /// Base64 (standard alphabet, padded), for binary data.
    Base64,
}
