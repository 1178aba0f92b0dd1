//! The API's OpenAPI document: built from the routes themselves (each
//! handler's `#[utoipa::path]` in [`super::api`]), served at
//! `/openapi.json` and checked in as `openapi.json` at the repository's
//! root (a test fails when the two differ).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's frame: what the routes do not say themselves.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hookhost API",
        description = "Tenants drive their clusters' lifecycles through `hookhost serve`. Every route under `/api/v1` needs `Authorization: Bearer <token>` (`hookhost tenant add`); another tenant's ids answer 404.",
    ),
    modifiers(&BearerToken),
    security(("token" = [])),
    tags(
        (name = "tenant", description = "The tenant of the token"),
        (name = "apps", description = "App versions: a spec and its components"),
        (name = "clusters", description = "Clusters, their metadata, health and monitor samples"),
        (name = "operations", description = "Operation requests, plans, journals and hook invocations"),
        (name = "backups", description = "Backups of the tenant's clusters"),
    )
)]
pub(super) struct ApiDoc;

/// Declares the bearer token the routes' `security` names.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("A tenant's token, printed once by `hookhost tenant add`"))
            .build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("token", SecurityScheme::Http(scheme));
    }
}

/// The document as served: pretty JSON ending in a newline.
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    doc.merge(super::api::routes().into_openapi());
    // A document of plain structs always serializes.
    doc.to_pretty_json().unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    /// The checked-in document, next to the workspace's README.
    const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json");

    #[test]
    fn the_checked_in_document_is_the_served_one() {
        let served = super::document();
        if std::env::var_os("HOOKHOST_BLESS").is_some() {
            std::fs::write(CHECKED_IN, &served).expect("openapi.json is writable");
        }
        let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
        assert!(
            checked_in == served,
            "openapi.json differs from the routes' document: run `HOOKHOST_BLESS=1 cargo test -p hookhost openapi` and commit it"
        );
    }

    #[test]
    fn every_route_under_the_api_is_documented_with_the_token_and_its_refusals() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).expect("JSON");
        let paths = doc["paths"].as_object().expect("paths");
        let mut routes = Vec::new();
        for (path, item) in paths {
            assert!(path.starts_with("/api/v1/"), "{path}");
            for (method, op) in item.as_object().expect("a path item") {
                routes.push(format!("{} {path}", method.to_uppercase()));
                let responses = op["responses"].as_object().expect("responses");
                assert!(responses.contains_key("401"), "{method} {path} does not say 401");
                assert!(
                    op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                    "{method} {path} has no tag"
                );
            }
        }
        let mut expected = [
            "GET /api/v1/whoami",
            "GET /api/v1/apps",
            "POST /api/v1/apps",
            "GET /api/v1/apps/{app}",
            "GET /api/v1/apps/{app}/{version}",
            "GET /api/v1/clusters",
            "GET /api/v1/clusters/{id}",
            "GET /api/v1/clusters/{id}/metadata",
            "GET /api/v1/clusters/{id}/monitor",
            "POST /api/v1/clusters/{id}/check",
            "GET /api/v1/backups",
            "GET /api/v1/backups/{id}",
            "GET /api/v1/operations",
            "POST /api/v1/operations",
            "POST /api/v1/plans",
            "GET /api/v1/operations/{id}",
            "POST /api/v1/operations/{id}/cancel",
            "GET /api/v1/operations/{id}/events",
        ];
        expected.sort_unstable();
        routes.sort();
        assert_eq!(routes, expected);
        assert_eq!(doc["components"]["securitySchemes"]["token"]["scheme"], "bearer");
        let request = &doc["components"]["schemas"]["OperationRequest"];
        assert!(request.to_string().contains("create-cluster"), "{request}");
    }
}
