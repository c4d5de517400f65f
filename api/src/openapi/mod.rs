//! The OpenAPI 3.1 documents and the pages people read them with.
//!
//! Each listener's document is collected from the `#[utoipa::path]` of
//! the handlers it registers (see `crate::routes`), so it describes what
//! that listener serves and nothing else: `/openapi.json` on the public
//! listener describes the data plane, on the admin listener the admin API.
//! `/docs` on each renders its own document with Swagger UI, whose assets
//! are compiled in (no CDN: the page works on a machine without internet).

use actix_web::dev::{ServiceFactory, ServiceRequest};
use actix_web::http::header::LOCATION;
use actix_web::{web, App, HttpResponse};
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::name_schemas as names;

use crate::config::{ConsumeSettings, ProduceSettings};
use crate::encoding::Encoding;
use crate::error::ErrorBody;
use crate::produce::Format;

/// Where each listener serves its document, and its browsable page.
pub const DOCUMENT_PATH: &str = "/openapi.json";
pub const DOCS_PATH: &str = "/docs";

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Basic).build()),
        );
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// What the public listener's document starts from; the handlers add
/// their paths and schemas.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "sluice", description = "Multi-tenant HTTPS queue service in front of Kafka: the data plane."),
    // Schemas that only parameters refer to: utoipa collects those of
    // bodies, not those of parameters.
    components(schemas(ErrorBody, names::TopicName, names::GroupName, names::IdempotencyKey, Format, Encoding)),
    modifiers(&Security),
)]
struct PublicBase;

/// What the admin listener's document starts from.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "sluice admin API", description = "Tenants, users, grants, topics, groups and the audit log of a sluice cluster, with `Authorization: Bearer <admin.token>`."),
    // Schemas that only parameters refer to, as above.
    components(schemas(
        ErrorBody, names::TenantName, names::UserName, names::TopicName, names::GroupName,
        names::GrantPrefix,
    )),
    modifiers(&Security),
)]
struct AdminBase;

pub fn public_base() -> Document {
    PublicBase::openapi()
}

pub fn admin_base() -> Document {
    AdminBase::openapi()
}

/// The errors every admin route may answer, each with the shared error
/// body; `code` tells them apart.
#[derive(Debug, IntoResponses)]
pub enum AdminErrors {
    /// Bad input: the route's path, query or body broke a rule.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No valid admin bearer token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The tenant, user, grant, topic or group does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// It exists already, is still in use, or a quota is reached.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Postgres or Kafka did not answer.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// Sets the bounds that come from this node's configuration, which a
/// static annotation cannot know: consume's `limit` and `wait`
/// (`consume.max_limit`, `consume.max_wait`) and the number of messages
/// in a produce batch (1 to `produce.max_batch_messages`).
pub fn bound(document: &mut Document, consume: &ConsumeSettings, produce: &ProduceSettings) {
    let longest = u64::try_from(consume.max_visibility.as_millis()).unwrap_or(u64::MAX);
    set_property_range(document, "NackBody", "delay", 0, longest);
    set_property_range(document, "ExtendBody", "visibility", 1, longest);
    if let Some(operation) = document
        .paths
        .paths
        .get_mut("/topic/{topic}")
        .and_then(|item| item.get.as_mut())
    {
        set_range(operation, "visibility", 1, longest);
    }
    let Some(item) = document.paths.paths.get_mut("/topic/{topic}") else {
        return;
    };
    if let Some(operation) = item.get.as_mut() {
        set_range(operation, "limit", 1, consume.max_limit);
        set_range(
            operation,
            "wait",
            0,
            u64::try_from(consume.max_wait.as_millis()).unwrap_or(u64::MAX),
        );
    }
    let batch = item
        .post
        .as_mut()
        .and_then(|operation| operation.request_body.as_mut())
        .and_then(|body| body.content.get_mut("application/json"))
        .and_then(|content| content.schema.as_mut());
    if let Some(RefOr::T(Schema::Array(array))) = batch {
        array.min_items = Some(1);
        array.max_items = Some(produce.max_batch_messages);
    }
}

/// Bounds an integer property of a component schema by the configuration.
fn set_property_range(
    document: &mut Document,
    component: &str,
    property: &str,
    min: u64,
    max: u64,
) {
    let schema = document
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut(component));
    let Some(RefOr::T(Schema::Object(object))) = schema else {
        return;
    };
    if let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property) {
        field.minimum = Some(min.into());
        field.maximum = Some(max.into());
    }
}

fn set_range(operation: &mut Operation, name: &str, min: u64, max: u64) {
    let parameter = operation
        .parameters
        .iter_mut()
        .flatten()
        .find(|p: &&mut Parameter| p.name == name && p.parameter_in == ParameterIn::Query);
    if let Some(parameter) = parameter {
        parameter.schema = Some(RefOr::T(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Integer))
                .minimum(Some(min))
                .maximum(Some(max))
                .into(),
        ));
    }
}

/// Serves `document` at [`DOCUMENT_PATH`] and Swagger UI for it at
/// [`DOCS_PATH`]. Neither is in the document: they describe it.
pub fn serve<T>(app: App<T>, document: Document) -> App<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.service(SwaggerUi::new(format!("{DOCS_PATH}/{{_:.*}}")).url(DOCUMENT_PATH, document))
        .route(DOCS_PATH, web::get().to(to_docs))
}

/// `/docs` → `/docs/`, so that the page's relative asset links resolve.
async fn to_docs() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((LOCATION, "docs/"))
        .finish()
}
