//! The route patterns an actix app really serves, read from its route tree.
//!
//! actix offers no way to list an app's routes, only to match one path
//! (`ResourceMap::has_resource`); but the tree's `Debug` output holds every
//! pattern. This reads that output as generic `Debug` syntax and walks the
//! `nodes` of the tree, so the OpenAPI test can compare what is served
//! with what is documented. If actix's `Debug` changes shape, the walk
//! finds nothing and the test says so rather than passing.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{test, web, App, HttpRequest, HttpResponse};

/// Every pattern `app` serves, scopes joined to their resources, and the
/// document it serves at `/openapi.json`. A request to a path nothing
/// serves reaches a stand-in fallback that reads the tree.
pub fn served_with_document<T, B>(app: App<T>) -> (BTreeSet<String>, serde_json::Value)
where
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let seen = Rc::new(RefCell::new(String::new()));
    let sink = seen.clone();
    let app = app.default_service(web::to(move |req: HttpRequest| {
        *sink.borrow_mut() = format!("{:?}", req.resource_map());
        async { HttpResponse::NotFound().finish() }
    }));
    let document = actix_web::rt::System::new().block_on(async move {
        let service = test::init_service(app).await;
        let probe = test::TestRequest::get()
            .uri("/no/route/is/here")
            .to_request();
        test::call_service(&service, probe).await;
        let request = test::TestRequest::get().uri("/openapi.json").to_request();
        test::call_and_read_body_json(&service, request).await
    });
    let text = seen.borrow().clone();
    let tree = Parser::new(&text).value();
    let mut patterns = BTreeSet::new();
    walk(&tree, "", &mut patterns);
    assert!(
        !patterns.is_empty(),
        "no route found in actix's route tree: {text}"
    );
    (patterns, document)
}

/// A `Debug` value: `Name { field: v, … }`, `Name(v, …)`, `[v, …]`,
/// `{k: v, …}` (whose entries the walk never needs), a string, or a bare
/// word.
#[derive(Debug)]
enum Value {
    Struct(Vec<(String, Value)>),
    Tuple(String, Vec<Value>),
    List(Vec<Value>),
    Map,
    Str(String),
    Word(String),
}

impl Value {
    fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// `ResourceMap { pattern: ResourceDef { patterns: Single("…"), … },
/// nodes: Some([…]) | None, … }`: containers (the app, scopes) carry a
/// prefix; leaves are resources.
fn walk(node: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let own = node
        .field("pattern")
        .and_then(|def| def.field("patterns"))
        .map(|patterns| match patterns {
            Value::Tuple(kind, items) if kind == "Single" => strings(items),
            Value::Tuple(kind, items) if kind == "List" => match items.first() {
                Some(Value::List(list)) => strings(list),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        })
        .unwrap_or_default();
    match node.field("nodes") {
        Some(Value::Tuple(some, children)) if some == "Some" => {
            let prefix = format!("{prefix}{}", own.first().map_or("", String::as_str));
            if let Some(Value::List(children)) = children.first() {
                for child in children {
                    walk(child, &prefix, out);
                }
            }
        }
        Some(Value::Word(none)) if none == "None" => {
            for pattern in own {
                out.insert(format!("{prefix}{pattern}"));
            }
        }
        _ => {}
    }
}

fn strings(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .filter_map(|v| match v {
            Value::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            at: 0,
        }
    }

    fn skip_space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_space();
        self.text.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Value {
        match self.peek() {
            Some(b'"') => Value::Str(self.string()),
            Some(b'[') => {
                self.at += 1;
                Value::List(self.items(b']'))
            }
            Some(b'{') => {
                self.at += 1;
                self.entries();
                Value::Map
            }
            Some(b'(') => {
                self.at += 1;
                Value::Tuple(String::new(), self.items(b')'))
            }
            _ => {
                let word = self.word();
                match self.peek() {
                    Some(b'{') => {
                        self.at += 1;
                        Value::Struct(self.fields())
                    }
                    Some(b'(') => {
                        self.at += 1;
                        Value::Tuple(word, self.items(b')'))
                    }
                    _ => Value::Word(word),
                }
            }
        }
    }

    fn word(&mut self) -> String {
        self.skip_space();
        let start = self.at;
        while self.at < self.text.len()
            && !b"{}()[]:,\" ".contains(&self.text[self.at])
            && !self.text[self.at].is_ascii_whitespace()
        {
            self.at += 1;
        }
        // A `::` path or a bare `:` inside a word is not a field separator.
        while self.text[self.at..].starts_with(b"::") {
            self.at += 2;
            while self.at < self.text.len() && !b"{}()[]:,\" ".contains(&self.text[self.at]) {
                self.at += 1;
            }
        }
        if start == self.at && self.at < self.text.len() {
            self.at += 1; // an unexpected byte: step over it
        }
        String::from_utf8_lossy(&self.text[start..self.at]).into_owned()
    }

    fn string(&mut self) -> String {
        self.at += 1;
        let mut out = Vec::new();
        while self.at < self.text.len() && self.text[self.at] != b'"' {
            if self.text[self.at] == b'\\' && self.at + 1 < self.text.len() {
                self.at += 1;
            }
            out.push(self.text[self.at]);
            self.at += 1;
        }
        self.at += 1;
        String::from_utf8_lossy(&out).into_owned()
    }

    fn items(&mut self, close: u8) -> Vec<Value> {
        let mut items = Vec::new();
        while self.peek().is_some() && !self.eat(close) {
            items.push(self.value());
            self.eat(b',');
        }
        items
    }

    fn fields(&mut self) -> Vec<(String, Value)> {
        let mut fields = Vec::new();
        while self.peek().is_some() && !self.eat(b'}') {
            let name = self.word();
            if name == ".." {
                continue; // `finish_non_exhaustive`
            }
            self.eat(b':');
            fields.push((name, self.value()));
            self.eat(b',');
        }
        fields
    }

    /// Steps over the entries of a map.
    fn entries(&mut self) {
        while self.peek().is_some() && !self.eat(b'}') {
            self.value();
            self.eat(b':');
            self.value();
            self.eat(b',');
        }
    }
}
