//! A group's filter (Camunda's activation condition): messages that do not
//! match are read and skipped for that group, never delivered to it.
//!
//! The grammar, small on purpose so that a filter is cheap to run on every
//! message and easy to read back:
//!
//! ```text
//! filter     := or
//! or         := and ( "||" and )*
//! and        := atom ( "&&" atom )*
//! atom       := "(" or ")" | comparison
//! comparison := field ( "==" | "^=" ) literal
//! field      := "key" | "header." NAME | "value." PATH
//! literal    := "string" | number | true | false
//! ```
//!
//! `^=` is "starts with" and takes a string. PATH is dot-separated object
//! keys (a segment of digits also indexes an array). A value that is not
//! JSON, a missing key, header or path never matches.

use serde_json::Value;

use crate::error::{ApiError, Code};
use crate::kafka::ConsumedMessage;

/// The longest filter accepted, in bytes: a filter runs on every message.
pub const MAX_FILTER_BYTES: usize = 1024;

/// The deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 16;

/// What a comparison looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Key,
    Header(String),
    Value(Vec<String>),
}

/// What it compares with.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// A parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Equals(Field, Literal),
    StartsWith(Field, String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
}

/// A filter that does not parse: `invalid_filter`, naming the position
/// (0-based, in bytes) where parsing stopped.
fn error(at: usize, what: &str) -> ApiError {
    ApiError::Input {
        code: Code::InvalidFilter,
        message: format!("invalid filter at position {at}: {what}"),
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
}

impl Filter {
    /// Parses `text`, within [`MAX_FILTER_BYTES`] and [`MAX_DEPTH`].
    pub fn parse(text: &str) -> Result<Filter, ApiError> {
        if text.len() > MAX_FILTER_BYTES {
            return Err(error(
                MAX_FILTER_BYTES,
                &format!("a filter is at most {MAX_FILTER_BYTES} bytes"),
            ));
        }
        let mut parser = Parser {
            text,
            at: 0,
            depth: 0,
        };
        let filter = parser.or()?;
        parser.blanks();
        if parser.at < text.len() {
            return Err(error(parser.at, "expected '&&', '||' or the end"));
        }
        Ok(filter)
    }

    /// Whether `message` passes.
    pub fn matches(&self, message: &ConsumedMessage) -> bool {
        let mut json = None;
        self.eval(message, &mut json)
    }

    /// `json` caches the value parsed once per message (`Some(None)`: it
    /// is not JSON).
    fn eval(&self, message: &ConsumedMessage, json: &mut Option<Option<Value>>) -> bool {
        match self {
            Filter::And(a, b) => a.eval(message, json) && b.eval(message, json),
            Filter::Or(a, b) => a.eval(message, json) || b.eval(message, json),
            Filter::Equals(field, literal) => match field {
                Field::Value(path) => lookup(message, json, path).is_some_and(|v| match literal {
                    Literal::Text(t) => v.as_str() == Some(t),
                    Literal::Number(n) => v.as_f64() == Some(*n),
                    Literal::Bool(b) => v.as_bool() == Some(*b),
                }),
                _ => match literal {
                    Literal::Text(t) => bytes_of(message, field) == Some(t.as_bytes()),
                    _ => false,
                },
            },
            Filter::StartsWith(field, prefix) => match field {
                Field::Value(path) => lookup(message, json, path)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.starts_with(prefix.as_str())),
                _ => bytes_of(message, field).is_some_and(|b| b.starts_with(prefix.as_bytes())),
            },
        }
    }
}

fn bytes_of<'m>(message: &'m ConsumedMessage, field: &Field) -> Option<&'m [u8]> {
    match field {
        Field::Key => message.key.as_deref(),
        Field::Header(name) => message
            .headers
            .iter()
            .find(|(k, _)| k.as_slice() == name.as_bytes())
            .map(|(_, v)| v.as_slice()),
        Field::Value(_) => None,
    }
}

fn lookup<'j>(
    message: &ConsumedMessage,
    json: &'j mut Option<Option<Value>>,
    path: &[String],
) -> Option<&'j Value> {
    let parsed = json.get_or_insert_with(|| {
        message
            .value
            .as_deref()
            .and_then(|v| serde_json::from_slice(v).ok())
    });
    let mut at = parsed.as_ref()?;
    for segment in path {
        at = match at {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at)
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn blanks(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.text.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.blanks();
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Filter, ApiError> {
        let mut left = self.and()?;
        while self.eat("||") {
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter, ApiError> {
        let mut left = self.atom()?;
        while self.eat("&&") {
            left = Filter::And(Box::new(left), Box::new(self.atom()?));
        }
        Ok(left)
    }

    fn atom(&mut self) -> Result<Filter, ApiError> {
        if self.eat("(") {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(error(
                    self.at - 1,
                    &format!("nested deeper than {MAX_DEPTH}"),
                ));
            }
            let inner = self.or()?;
            if !self.eat(")") {
                return Err(error(self.at, "expected ')'"));
            }
            self.depth -= 1;
            return Ok(inner);
        }
        let field = self.field()?;
        if self.eat("==") {
            let literal = self.literal()?;
            Ok(Filter::Equals(field, literal))
        } else if self.eat("^=") {
            self.blanks();
            let at = self.at;
            match self.literal()? {
                Literal::Text(prefix) => Ok(Filter::StartsWith(field, prefix)),
                _ => Err(error(at, "'^=' takes a string")),
            }
        } else {
            Err(error(self.at, "expected '==' or '^='"))
        }
    }

    /// A run of name characters: letters, digits, `_`, `-`.
    fn name(&mut self) -> &str {
        let start = self.at;
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(self.rest().len());
        self.at += len;
        &self.text[start..self.at]
    }

    fn field(&mut self) -> Result<Field, ApiError> {
        self.blanks();
        let start = self.at;
        match self.name() {
            "key" => Ok(Field::Key),
            "header" => {
                if !self.rest().starts_with('.') {
                    return Err(error(self.at, "expected '.' and a header name"));
                }
                self.at += 1;
                let at = self.at;
                let name = self.name().to_owned();
                if name.is_empty() {
                    return Err(error(at, "expected a header name"));
                }
                Ok(Field::Header(name))
            }
            "value" => {
                let mut path = Vec::new();
                while self.rest().starts_with('.') {
                    self.at += 1;
                    let at = self.at;
                    let segment = self.name().to_owned();
                    if segment.is_empty() {
                        return Err(error(at, "expected a path segment"));
                    }
                    path.push(segment);
                }
                if path.is_empty() {
                    return Err(error(self.at, "expected '.' and a JSON path"));
                }
                Ok(Field::Value(path))
            }
            _ => Err(error(start, "expected key, header.NAME, value.PATH or '('")),
        }
    }

    fn literal(&mut self) -> Result<Literal, ApiError> {
        self.blanks();
        let start = self.at;
        if self.rest().starts_with('"') {
            self.at += 1;
            let mut text = String::new();
            let mut chars = self.rest().char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.at += i + 1;
                        return Ok(Literal::Text(text));
                    }
                    '\\' => match chars.next() {
                        Some((_, e @ ('"' | '\\'))) => text.push(e),
                        _ => return Err(error(self.at + i, "only \\\" and \\\\ are escapes")),
                    },
                    c => text.push(c),
                }
            }
            return Err(error(start, "unterminated string"));
        }
        if self.eat("true") {
            return Ok(Literal::Bool(true));
        }
        if self.eat("false") {
            return Ok(Literal::Bool(false));
        }
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(self.rest().len());
        match self.rest()[..len].parse::<f64>() {
            Ok(n) if len > 0 && n.is_finite() => {
                self.at += len;
                Ok(Literal::Number(n))
            }
            _ => Err(error(
                start,
                "expected a \"string\", a number, true or false",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(key: &str, value: &str, headers: &[(&str, &str)]) -> ConsumedMessage {
        ConsumedMessage {
            partition: 0,
            offset: 0,
            timestamp: None,
            key: Some(key.as_bytes().to_vec()),
            value: Some(value.as_bytes().to_vec()),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn passes(filter: &str, m: &ConsumedMessage) -> bool {
        Filter::parse(filter).unwrap().matches(m)
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_regroup() {
        let parsed = Filter::parse(r#"key == "a" || key == "b" && header.h == "c""#).unwrap();
        let key = |k: &str| Filter::Equals(Field::Key, Literal::Text(k.into()));
        assert_eq!(
            parsed,
            Filter::Or(
                Box::new(key("a")),
                Box::new(Filter::And(
                    Box::new(key("b")),
                    Box::new(Filter::Equals(
                        Field::Header("h".into()),
                        Literal::Text("c".into())
                    ))
                ))
            )
        );
        let grouped = Filter::parse(r#"(key == "a" || key == "b") && value.x.y == 1"#).unwrap();
        assert!(matches!(grouped, Filter::And(..)));
    }

    #[test]
    fn each_operator_matches_what_it_says() {
        let m = message(
            "order-7",
            r#"{"kind":"paid","n":3,"ok":true,"items":[{"sku":"x1"}]}"#,
            &[("type", "invoice")],
        );
        assert!(passes(r#"key == "order-7""#, &m));
        assert!(!passes(r#"key == "order""#, &m));
        assert!(passes(r#"key ^= "order-""#, &m));
        assert!(!passes(r#"key ^= "x""#, &m));
        assert!(passes(r#"header.type == "invoice""#, &m));
        assert!(!passes(r#"header.other == "invoice""#, &m));
        assert!(passes(r#"value.kind == "paid""#, &m));
        assert!(passes(r#"value.kind ^= "pa""#, &m));
        assert!(passes("value.n == 3", &m));
        assert!(passes("value.n == 3.0", &m));
        assert!(!passes("value.n == 4", &m));
        assert!(passes("value.ok == true", &m));
        assert!(!passes("value.ok == false", &m));
        assert!(passes(r#"value.items.0.sku == "x1""#, &m));
        assert!(!passes(r#"value.missing == "x""#, &m));
        assert!(passes(
            r#"(key == "no" || value.n == 3) && header.type == "invoice""#,
            &m
        ));
        let text = message("k", "not json", &[]);
        assert!(!passes(r#"value.a == "x""#, &text));
    }

    #[test]
    fn a_bad_filter_names_the_position_where_it_went_wrong() {
        for (filter, at) in [
            (r#"key = "a""#, 4),
            (r#"nope == "a""#, 0),
            (r#"key == "a" &&"#, 13),
            (r#"(key == "a""#, 11),
            (r#"key == "a"#, 7),
            ("key ^= 3", 7),
            ("value == 1", 5),
            (r#"key == "a" junk"#, 11),
            ("", 0),
        ] {
            let err = Filter::parse(filter).unwrap_err();
            assert_eq!(err.code().as_str(), "invalid_filter", "{filter}");
            assert!(
                err.to_string().contains(&format!("position {at}:")),
                "{filter}: {err}"
            );
        }
        let long = format!(r#"key == "{}""#, "a".repeat(MAX_FILTER_BYTES));
        assert!(Filter::parse(&long).is_err());
        let deep = format!(r#"{}key == "a"{}"#, "(".repeat(17), ")".repeat(17));
        assert!(Filter::parse(&deep).is_err());
        let ok = format!(r#"{}key == "a"{}"#, "(".repeat(16), ")".repeat(16));
        assert!(Filter::parse(&ok).is_ok());
    }
}
