//! The CLI's HTTP client for the admin API.

use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::exit;
use crate::admin::ACTOR_HEADER;

/// What can go wrong in a CLI command, each with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot reach the admin API at {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The API answered with an error; `body` is its JSON error.
    #[error("{code}: {message}")]
    Api {
        status: StatusCode,
        code: String,
        message: String,
        body: Value,
    },
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => exit::USAGE,
            CliError::Unreachable { .. } => exit::UNAVAILABLE,
            CliError::Api { status, .. } => match *status {
                StatusCode::NOT_FOUND => exit::NOT_FOUND,
                StatusCode::CONFLICT => exit::CONFLICT,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => exit::UNAUTHORIZED,
                StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => exit::INVALID,
                s if s.is_server_error() => exit::UNAVAILABLE,
                _ => exit::FAILURE,
            },
        }
    }
}

/// A thin client: builds URLs from path segments (each percent-encoded),
/// adds the bearer token and the actor, and turns error bodies into
/// [`CliError::Api`].
#[derive(Debug)]
pub struct AdminClient {
    base: Url,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(base: String, token: &str, actor: &str) -> Result<Self, CliError> {
        let base = Url::parse(&base)
            .map_err(|e| CliError::Usage(format!("bad admin URL '{base}': {e}")))?;
        if base.cannot_be_a_base() {
            return Err(CliError::Usage(format!("bad admin URL '{base}'")));
        }
        let mut headers = HeaderMap::new();
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            CliError::Usage("the admin token has characters a header cannot carry".into())
        })?;
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        if let Ok(actor) = HeaderValue::from_str(actor) {
            headers.insert(ACTOR_HEADER, actor);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| CliError::Usage(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { base, http })
    }

    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = self.url(segments, query);
        let mut request = self.http.request(method, url.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        let unreachable = |source| CliError::Unreachable {
            url: url.to_string(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        let body: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if status.is_success() {
            return Ok(body);
        }
        let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        Err(CliError::Api {
            status,
            code: field("code").unwrap_or_else(|| status.as_u16().to_string()),
            message: field("message").unwrap_or_else(|| status.to_string()),
            body,
        })
    }

    pub async fn get(&self, segments: &[&str]) -> Result<Value, CliError> {
        self.send(Method::GET, segments, &[], None).await
    }

    pub async fn get_query(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, CliError> {
        self.send(Method::GET, segments, query, None).await
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value, CliError> {
        self.send(Method::POST, segments, &[], Some(body)).await
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<Value, CliError> {
        self.send(Method::PATCH, segments, &[], Some(body)).await
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Value, CliError> {
        self.send(Method::DELETE, segments, &[], None).await
    }

    pub async fn delete_query(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value, CliError> {
        self.send(Method::DELETE, segments, query, None).await
    }
}
