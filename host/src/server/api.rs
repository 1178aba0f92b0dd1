//! The HTTP API, `/api/v1/...`: every route needs a tenant's bearer token
//! and sees only that tenant's engine.
//!
//! | route | what |
//! |---|---|
//! | `GET /healthz` | the process answers (no token) |
//! | `GET /openapi.json` | this table as an OpenAPI document ([`super::openapi`]; no token) |
//! | `GET /`, `GET /console/...` | the web console, a static page (no token; its requests carry one) |
//! | `GET /api/v1/whoami` | the tenant, its quotas and what it uses |
//! | `POST /api/v1/apps` | upload an app version: `{app, version?, spec, components: {"x.wasm": base64}}` |
//! | `GET /api/v1/apps[?full=true]` | the tenant's apps and versions (`full`: every version's record) |
//! | `GET /api/v1/apps/{app}`, `GET /api/v1/apps/{app}/{version}` | an app's versions; one version |
//! | `GET /api/v1/clusters[?all=true][&full=true]` | its clusters (`full`: the whole records) |
//! | `GET /api/v1/clusters/{id}` | one cluster |
//! | `GET /api/v1/clusters/{id}/metadata?path=/…&node=cln-…` | its metadata, as hooks (of a node) see it |
//! | `POST /api/v1/clusters/{id}/check` | one health round now (`{"roles": [...]}`, optional) |
//! | `GET /api/v1/clusters/{id}/monitor` | its nodes' latest monitor samples: `{items, nodes: {id: [{at_ms, values}]}}` |
//! | `POST /api/v1/operations` | submit an operation request (`{"kind": "create-cluster", …}`); 202, it runs |
//! | `POST /api/v1/plans` | the plan a request would run, nothing run |
//! | `GET /api/v1/operations[?full=true]` | its operations (`full`: `[{operation, interrupted}]`) |
//! | `GET /api/v1/operations/{id}` | one operation and its journal |
//! | `POST /api/v1/operations/{id}/cancel` | cancel at the next step boundary |
//! | `GET /api/v1/operations/{id}/events` | its hook invocations |
//! | `GET /api/v1/backups`, `GET /api/v1/backups/{id}` | its backups; one, with the later points built on it |

use super::bodies::*;
use super::error::ApiError;
use super::{Server, TenantCtx, redact};
use crate::apps::AppVersion;
use crate::backups::Backup;
use crate::cluster::{Cluster, ClusterStatus};
use crate::engine::EngineError;
use crate::engine::Round;
use crate::request::OperationRequest;
use crate::runtime::MAX_COMPONENT_BYTES;
use crate::store::{Event, Operation, OperationStatus};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Largest request body, but for app uploads.
const MAX_BODY: usize = 1 << 20;
/// Components one app version may hold.
const MAX_COMPONENTS: usize = 32;
/// Largest app upload (components in base64 and the spec).
const MAX_UPLOAD: usize = 160 << 20;

/// A tenant's requests carry its context.
type Tenant = axum::Extension<Arc<TenantCtx>>;

/// The API's routes under `/api/v1`, each with its OpenAPI description.
pub(super) fn routes() -> OpenApiRouter<Server> {
    let (schemas, paths, apps) = routes!(list_apps, upload_app);
    let api = OpenApiRouter::new()
        .routes(routes!(whoami))
        .routes((schemas, paths, apps.layer(DefaultBodyLimit::max(MAX_UPLOAD))))
        .routes(routes!(app_versions))
        .routes(routes!(app_version))
        .routes(routes!(list_clusters))
        .routes(routes!(show_cluster))
        .routes(routes!(cluster_metadata))
        .routes(routes!(cluster_monitor))
        .routes(routes!(check_cluster))
        .routes(routes!(list_backups))
        .routes(routes!(show_backup))
        .routes(routes!(list_operations, submit))
        .routes(routes!(plan))
        .routes(routes!(show_operation))
        .routes(routes!(cancel))
        .routes(routes!(events));
    OpenApiRouter::new().nest("/api/v1", api)
}

/// The whole service but `/openapi.json`: the API behind its token, the console.
pub(super) fn router(server: Server) -> Router {
    let (api, _) = routes()
        .fallback(|| async { ApiError::not_found("route", "here (see /openapi.json)") })
        .route_layer(middleware::from_fn_with_state(server.clone(), authenticate))
        .split_for_parts();
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(super::console::routes())
        .merge(api)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::map_response(as_refusal))
        .with_state(server)
}

/// A refusal axum makes itself (a body past the limit, a bad query
/// string, a method the route lacks) as the API's JSON refusal.
async fn as_refusal(response: Response) -> Response {
    let status = response.status();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let refusal = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::with_kind(
            status,
            "too-large",
            format!(
                "the body is larger than this route takes ({} MiB; an app upload {} MiB)",
                MAX_BODY >> 20,
                MAX_UPLOAD >> 20
            ),
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::with_kind(
            status,
            "method-not-allowed",
            "this route does not take that method (its Allow header lists those it takes)",
        ),
        _ if status.is_client_error() => ApiError::with_kind(status, "bad-input", text),
        _ => ApiError::internal(text),
    };
    let mut response = refusal.into_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// Finds the tenant of the bearer token, or answers 401.
async fn authenticate(State(server): State<Server>, mut request: Request, next: Next) -> Response {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return ApiError::unauthorized("no token: send `Authorization: Bearer <token>` (hookhost tenant add)")
            .into_response();
    };
    match server.tenant_by_token(token) {
        Ok(Some(ctx)) => {
            request.extensions_mut().insert(ctx);
            next.run(request).await
        }
        Ok(None) => ApiError::unauthorized("the token is no tenant's").into_response(),
        Err(e) => {
            tracing::error!("cannot read the tenants: {e}");
            ApiError::internal("the server cannot read its tenants").into_response()
        }
    }
}

/// A JSON reply in which no path of the server shows.
fn reply(ctx: &TenantCtx, status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_string_pretty(value) {
        Ok(text) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            redact(&text, &ctx.dir) + "\n",
        )
            .into_response(),
        Err(e) => ApiError::internal(format!("cannot write the reply: {e}")).into_response(),
    }
}

/// An engine error as the tenant may see it.
fn refused(ctx: &TenantCtx, e: EngineError) -> ApiError {
    let mut error = ApiError::from(e);
    error.message = redact(&error.message, &ctx.dir);
    error
}

/// A JSON body, or 400 naming the JSON path of the first bad value.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        // A syntax error has no path: its message says the line and column.
        let at = match e.path().to_string() {
            unknown if unknown == "?" => ".".to_string(),
            at => at,
        };
        ApiError::bad_json(at, e.inner().to_string())
    })
}

/// The tenant of the token, its quotas and what it uses now.
#[utoipa::path(
    get,
    path = "/whoami",
    tag = "tenant",
    responses(
        (status = 200, description = "The tenant", body = Whoami),
        Unauthorized,
    )
)]
async fn whoami(axum::Extension(ctx): Tenant) -> Result<Response, ApiError> {
    let usage = usage(&ctx).map_err(|e| refused(&ctx, e))?;
    Ok(reply(
        &ctx,
        StatusCode::OK,
        &Whoami {
            tenant: ctx.name.clone(),
            quotas: ctx.quotas(),
            usage,
        },
    ))
}

fn usage(ctx: &TenantCtx) -> Result<Usage, EngineError> {
    let store = ctx.engine.store();
    let clusters: Vec<Cluster> = store
        .clusters()?
        .into_iter()
        .filter(|c| c.status != ClusterStatus::Deleted)
        .collect();
    let operations = store
        .operations()?
        .iter()
        .filter(|op| op.status == OperationStatus::Running)
        .count();
    Ok(Usage {
        clusters: clusters.len() as u32,
        nodes: clusters.iter().map(|c| c.nodes.len() as u32).sum(),
        operations: operations as u32,
    })
}

/// Uploads an app version (spec and components) in one request.
///
/// Nothing in it names a file of the server: components are plain `.wasm`
/// file names, and every role's `plugin` names one of them. It is written
/// to a directory of the tenant's and registered as `app register` would.
#[utoipa::path(
    post,
    path = "/apps",
    tag = "apps",
    request_body = Upload,
    responses(
        (status = 201, description = "A new version", body = Uploaded),
        (status = 200, description = "The same version was there already", body = Uploaded),
        (status = 400, description = "Bad JSON, a bad name or component, a spec the catalog refuses, named by its path in `at`", body = Refusal),
        (status = 409, description = "The version name is taken by other content", body = Refusal),
        (status = 413, description = "Larger than an upload may be (160 MiB)", body = Refusal),
        Unauthorized,
    )
)]
async fn upload_app(axum::Extension(ctx): Tenant, body: Bytes) -> Result<Response, ApiError> {
    let upload: Upload = parse(&body)?;
    crate::apps::check_name("app id", &upload.app).map_err(|e| ApiError::bad_json("app".into(), e.to_string()))?;
    if let Some(version) = &upload.version {
        crate::apps::check_name("version name", version)
            .map_err(|e| ApiError::bad_json("version".into(), e.to_string()))?;
    }
    if upload.components.is_empty() || upload.components.len() > MAX_COMPONENTS {
        return Err(ApiError::bad_json(
            "components".into(),
            format!("give 1 to {MAX_COMPONENTS} components, by file name"),
        ));
    }
    let mut files = Vec::new();
    for (name, data) in &upload.components {
        let at = format!("components.{name}");
        let plain = crate::text::check_token(name, 128).is_ok() && name.ends_with(".wasm");
        if !plain {
            return Err(ApiError::bad_json(
                at,
                "a component is named by a plain file name ending in .wasm (no directories)",
            ));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| ApiError::bad_json(at.clone(), format!("not base64: {e}")))?;
        if bytes.len() as u64 > MAX_COMPONENT_BYTES {
            return Err(ApiError::bad_json(at, "larger than a component may be"));
        }
        files.push((name.clone(), bytes));
    }
    check_plugins(&upload.spec, &upload.components)?;
    let spec = serde_json::to_vec_pretty(&upload.spec).map_err(|e| ApiError::internal(e.to_string()))?;

    let uploads = ctx.dir.join("uploads");
    let staged = std::fs::create_dir_all(&uploads)
        .and_then(|()| tempfile::Builder::new().prefix("app-").tempdir_in(&uploads))
        .map_err(|e| ApiError::internal(format!("cannot stage the upload: {e}")))?;
    let written = std::iter::once(("spec.json".to_string(), spec))
        .chain(files)
        .try_for_each(|(name, bytes)| std::fs::write(staged.path().join(name), bytes));
    written.map_err(|e| ApiError::internal(format!("cannot stage the upload: {e}")))?;
    let added = ctx
        .engine
        .add_app(
            &staged.path().join("spec.json"),
            Some(&upload.app),
            upload.version.as_deref(),
        )
        .await;
    let (version, new) = added.map_err(|e| refused(&ctx, e))?;
    let status = if new { StatusCode::CREATED } else { StatusCode::OK };
    Ok(reply(
        &ctx,
        status,
        &Uploaded {
            app: version.app,
            version: version.version,
            digest: version.digest,
            new,
        },
    ))
}

/// Every role's `plugin` names one of the uploaded components.
fn check_plugins(spec: &Value, components: &BTreeMap<String, String>) -> Result<(), ApiError> {
    let Some(nodes) = spec.get("nodes").and_then(Value::as_array) else {
        return Err(ApiError::bad_json("spec.nodes".into(), "the spec has no list of roles"));
    };
    for (i, role) in nodes.iter().enumerate() {
        let at = format!("spec.nodes[{i}].plugin");
        match role.get("plugin").and_then(Value::as_str) {
            Some(name) if components.contains_key(name) => {}
            Some(name) => {
                return Err(ApiError::bad_json(
                    at,
                    format!("{name:?} is none of the uploaded components (name one of `components`)"),
                ));
            }
            None => return Err(ApiError::bad_json(at, "missing: name one of the uploaded components")),
        }
    }
    Ok(())
}

/// The tenant's apps and their versions.
#[utoipa::path(
    get,
    path = "/apps",
    tag = "apps",
    params(ListQuery),
    responses(
        (status = 200, description = "Apps and their versions; `full`: every version's record", body = AppList),
        (status = 400, description = "A bad query string", body = Refusal),
        Unauthorized,
    )
)]
async fn list_apps(axum::Extension(ctx): Tenant, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    let catalog = ctx.engine.catalog();
    let mut apps = Vec::new();
    let mut full = Vec::new();
    for app in catalog.apps().map_err(|e| refused(&ctx, e.into()))? {
        let versions = catalog.versions(&app).map_err(|e| refused(&ctx, e.into()))?;
        if q.full {
            full.extend(versions);
            continue;
        }
        let versions = versions
            .into_iter()
            .map(|v| VersionSummary {
                version: v.version,
                digest: v.digest,
                added_at: v.added_at,
            })
            .collect();
        apps.push(AppSummary { app, versions });
    }
    let list = if q.full {
        AppList::Records(full)
    } else {
        AppList::Summaries(apps)
    };
    Ok(reply(&ctx, StatusCode::OK, &list))
}

/// The tenant's clusters (deleted ones with `all`).
#[utoipa::path(
    get,
    path = "/clusters",
    tag = "clusters",
    params(ClusterListQuery),
    responses(
        (status = 200, description = "Clusters; `full`: whole records", body = ClusterList),
        (status = 400, description = "A bad query string", body = Refusal),
        Unauthorized,
    )
)]
async fn list_clusters(axum::Extension(ctx): Tenant, Query(q): Query<ClusterListQuery>) -> Result<Response, ApiError> {
    let clusters = ctx.engine.store().clusters().map_err(|e| refused(&ctx, e.into()))?;
    let shown = clusters.iter().filter(|c| q.all || c.status != ClusterStatus::Deleted);
    if q.full {
        let records = shown.cloned().collect();
        return Ok(reply(&ctx, StatusCode::OK, &ClusterList::Records(records)));
    }
    let summaries: Vec<ClusterSummary> = shown
        .map(|c| ClusterSummary {
            id: c.id.clone(),
            name: c.name.clone(),
            app: c.app.clone(),
            status: c.status,
            nodes: c.nodes.len(),
            operation: c.operation.clone(),
            created_at: c.created_at.clone(),
        })
        .collect();
    Ok(reply(&ctx, StatusCode::OK, &ClusterList::Summaries(summaries)))
}

/// One cluster's record: its nodes, status, health and spec.
#[utoipa::path(
    get,
    path = "/clusters/{id}",
    tag = "clusters",
    params(("id" = String, Path, description = "A cluster id")),
    responses(
        (status = 200, description = "The cluster", body = Cluster),
        (status = 404, description = "No cluster of this tenant has the id", body = Refusal),
        Unauthorized,
    )
)]
async fn show_cluster(axum::Extension(ctx): Tenant, Path(id): Path<String>) -> Result<Response, ApiError> {
    let cluster = ctx.engine.cluster(&id).map_err(|e| refused(&ctx, e))?;
    Ok(reply(&ctx, StatusCode::OK, &cluster))
}

/// The nodes' latest monitor samples (kept by the health loop), with the items the spec names.
#[utoipa::path(
    get,
    path = "/clusters/{id}/monitor",
    tag = "clusters",
    params(("id" = String, Path, description = "A cluster id")),
    responses(
        (status = 200, description = "Samples by node", body = Monitor),
        (status = 404, description = "No cluster of this tenant has the id", body = Refusal),
        Unauthorized,
    )
)]
async fn cluster_monitor(axum::Extension(ctx): Tenant, Path(id): Path<String>) -> Result<Response, ApiError> {
    let cluster = ctx.engine.cluster(&id).map_err(|e| refused(&ctx, e))?;
    let mut items = std::collections::BTreeSet::new();
    for role in cluster.live_nodes().map(|n| n.role.as_str()) {
        items.extend(crate::cluster::monitor_items(&cluster.spec, role).unwrap_or_default());
    }
    let nodes = ctx.monitor.of(&cluster.id);
    Ok(reply(&ctx, StatusCode::OK, &Monitor { items, nodes }))
}

/// A cluster's metadata tree, as its hooks (or one node's hooks) see it.
#[utoipa::path(
    get,
    path = "/clusters/{id}/metadata",
    tag = "clusters",
    params(("id" = String, Path, description = "A cluster id"), MetadataQuery),
    responses(
        (status = 200, description = "The tree under the path", body = MetadataView),
        (status = 400, description = "A bad path or a node not of the cluster", body = Refusal),
        (status = 404, description = "No cluster of this tenant has the id", body = Refusal),
        Unauthorized,
    )
)]
async fn cluster_metadata(
    axum::Extension(ctx): Tenant,
    Path(id): Path<String>,
    Query(q): Query<MetadataQuery>,
) -> Result<Response, ApiError> {
    let at = q.path.unwrap_or_else(|| "/".into());
    let (revision, tree) = ctx
        .engine
        .metadata_at(&id, Some(&at), q.node.as_deref())
        .await
        .map_err(|e| refused(&ctx, e))?;
    Ok(reply(
        &ctx,
        StatusCode::OK,
        &MetadataView {
            revision,
            path: at,
            tree,
        },
    ))
}

/// Runs one health round now (as `hookhost cluster check`).
#[utoipa::path(
    post,
    path = "/clusters/{id}/check",
    tag = "clusters",
    params(("id" = String, Path, description = "A cluster id")),
    request_body = Option<CheckBody>,
    responses(
        (status = 200, description = "The round: checked nodes, transitions, monitor samples (or why it was skipped)", body = Round),
        (status = 413, description = "A body larger than 1 MiB", body = Refusal),
        (status = 400, description = "A bad body or value: `at` names it (its JSON path)", body = Refusal),
        (status = 404, description = "No cluster of this tenant has the id", body = Refusal),
        Unauthorized,
    )
)]
async fn check_cluster(
    axum::Extension(ctx): Tenant,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: CheckBody = if body.is_empty() {
        CheckBody::default()
    } else {
        parse(&body)?
    };
    let round = ctx
        .engine
        .check_health(&id, body.roles.as_deref())
        .await
        .map_err(|e| refused(&ctx, e))?;
    ctx.monitor.keep(&id, &round.samples);
    Ok(reply(&ctx, StatusCode::OK, &round))
}

/// Every version of an app, oldest first (none: an empty list).
#[utoipa::path(
    get,
    path = "/apps/{app}",
    tag = "apps",
    params(("app" = String, Path, description = "An app id")),
    responses(
        (status = 200, description = "Its versions, oldest first (none: an empty list)", body = [AppVersion]),
        (status = 400, description = "Not an app id", body = Refusal),
        Unauthorized,
    )
)]
async fn app_versions(axum::Extension(ctx): Tenant, Path(app): Path<String>) -> Result<Response, ApiError> {
    let versions = ctx
        .engine
        .catalog()
        .versions(&app)
        .map_err(|e| refused(&ctx, e.into()))?;
    Ok(reply(&ctx, StatusCode::OK, &versions))
}

/// One app version's record.
#[utoipa::path(
    get,
    path = "/apps/{app}/{version}",
    tag = "apps",
    params(("app" = String, Path, description = "An app id"), ("version" = String, Path, description = "A version name")),
    responses(
        (status = 200, description = "The version", body = AppVersion),
        (status = 400, description = "Not an app id or version name", body = Refusal),
        (status = 404, description = "No app version of this tenant has the id", body = Refusal),
        Unauthorized,
    )
)]
async fn app_version(
    axum::Extension(ctx): Tenant,
    Path((app, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = ctx
        .engine
        .catalog()
        .get(&app, &version)
        .map_err(|e| refused(&ctx, e.into()))?;
    Ok(reply(&ctx, StatusCode::OK, &found))
}

/// The tenant's backups.
#[utoipa::path(
    get,
    path = "/backups",
    tag = "backups",
    responses(
        (status = 200, description = "The backups", body = [Backup]),
        Unauthorized,
    )
)]
async fn list_backups(axum::Extension(ctx): Tenant) -> Result<Response, ApiError> {
    let backups = ctx.engine.backups().list().map_err(|e| refused(&ctx, e.into()))?;
    Ok(reply(&ctx, StatusCode::OK, &backups))
}

/// One backup, with the later points built on it.
#[utoipa::path(
    get,
    path = "/backups/{id}",
    tag = "backups",
    params(("id" = String, Path, description = "A backup id")),
    responses(
        (status = 200, description = "The backup", body = BackupShown),
        (status = 404, description = "No backup of this tenant has the id", body = Refusal),
        Unauthorized,
    )
)]
async fn show_backup(axum::Extension(ctx): Tenant, Path(id): Path<String>) -> Result<Response, ApiError> {
    let backups = ctx.engine.backups();
    let found = backups.get(&id).map_err(|e| refused(&ctx, e.into()))?;
    let later = backups.later_in_chain(&found.id).map_err(|e| refused(&ctx, e.into()))?;
    Ok(reply(&ctx, StatusCode::OK, &BackupShown { backup: found, later }))
}

/// A request as a tenant may send it: an app version, never a spec file of
/// the server, and none of the fields the engine fills in itself.
fn tenant_request(body: &[u8]) -> Result<OperationRequest, ApiError> {
    let request: OperationRequest = parse(body)?;
    if request.spec().is_some() {
        return Err(ApiError::bad_json(
            "spec".into(),
            "a server creates clusters of uploaded app versions: give \"app\": {\"app\", \"version\"} (POST /api/v1/apps)",
        ));
    }
    if let Some(field) = request.filled_by_engine() {
        return Err(ApiError::bad_json(
            field.into(),
            "is filled in by the server; leave it out",
        ));
    }
    Ok(request)
}

/// The plan a request would run; nothing runs.
#[utoipa::path(
    post,
    path = "/plans",
    tag = "operations",
    request_body = OperationRequest,
    responses(
        (status = 200, description = "The plan; nothing ran", body = Planned),
        (status = 413, description = "A body larger than 1 MiB", body = Refusal),
        (status = 400, description = "A bad body or value: `at` names it (its JSON path)", body = Refusal),
        (status = 404, description = "No cluster or app version of this tenant has the id", body = Refusal),
        (status = 409, description = "Refused in the state it is in", body = Refusal),
        Unauthorized,
    )
)]
async fn plan(axum::Extension(ctx): Tenant, body: Bytes) -> Result<Response, ApiError> {
    let request = tenant_request(&body)?;
    let (cluster, plan) = ctx.engine.plan(&request).await.map_err(|e| refused(&ctx, e))?;
    let nodes = cluster.nodes.len();
    let cluster = request.cluster_id().map(|_| cluster.id);
    Ok(reply(
        &ctx,
        StatusCode::OK,
        &Planned {
            kind: request.kind(),
            cluster,
            nodes,
            request,
            plan,
        },
    ))
}

/// Submits an operation request: its quotas checked, it runs in the background.
#[utoipa::path(
    post,
    path = "/operations",
    tag = "operations",
    request_body = OperationRequest,
    responses(
        (status = 202, description = "Submitted; it runs in the background", body = Operation),
        (status = 413, description = "A body larger than 1 MiB", body = Refusal),
        (status = 400, description = "A bad body or value: `at` names it (its JSON path)", body = Refusal),
        (status = 404, description = "No cluster or app version of this tenant has the id", body = Refusal),
        (status = 409, description = "Refused in the state it is in", body = Refusal),
        (status = 429, description = "A quota is used up, named in `quota`", body = Refusal),
        Unauthorized,
    )
)]
async fn submit(axum::Extension(ctx): Tenant, body: Bytes) -> Result<Response, ApiError> {
    let request = tenant_request(&body)?;
    let op = {
        // One admission at a time per tenant: two requests cannot both pass a quota.
        let _admitting = ctx.admit.lock().await;
        check_quotas(&ctx, &request).await?;
        ctx.engine.submit(request).await.map_err(|e| refused(&ctx, e))?
    };
    run_in_background(&ctx, op.id.clone());
    Ok(reply(&ctx, StatusCode::ACCEPTED, &op))
}

/// Refuses with 429 a request that would take a tenant past a quota.
async fn check_quotas(ctx: &TenantCtx, request: &OperationRequest) -> Result<(), ApiError> {
    let quotas = ctx.quotas();
    let used = usage(ctx).map_err(|e| refused(ctx, e))?;
    if used.operations >= quotas.max_operations {
        return Err(ApiError::quota(
            "max_operations",
            format!(
                "{} operations are running; the quota is {}",
                used.operations, quotas.max_operations
            ),
        ));
    }
    let new_nodes = match request {
        OperationRequest::CreateCluster { .. } | OperationRequest::Restore { .. } => {
            let (cluster, _) = ctx.engine.plan(request).await.map_err(|e| refused(ctx, e))?;
            // A custom backup restores in place: its cluster exists and is counted already.
            let exists = ctx
                .engine
                .store()
                .cluster(&cluster.id)
                .map_err(|e| refused(ctx, e.into()))?;
            if exists.is_some() {
                0
            } else {
                if used.clusters >= quotas.max_clusters {
                    return Err(ApiError::quota(
                        "max_clusters",
                        format!(
                            "the tenant has {} clusters; the quota is {}",
                            used.clusters, quotas.max_clusters
                        ),
                    ));
                }
                cluster.nodes.len() as u32
            }
        }
        OperationRequest::AddNodes { cluster, role, count } => {
            // Each node comes with its role's replicas.
            let cluster = ctx.engine.cluster(cluster).map_err(|e| refused(ctx, e))?;
            let replicas = cluster.spec.role(role).map(|r| r.replica).unwrap_or(0);
            count.saturating_mul(1 + replicas)
        }
        _ => 0,
    };
    if new_nodes > 0 && used.nodes.saturating_add(new_nodes) > quotas.max_nodes {
        return Err(ApiError::quota(
            "max_nodes",
            format!(
                "{new_nodes} more nodes beside the {} held would pass the quota of {}",
                used.nodes, quotas.max_nodes
            ),
        ));
    }
    Ok(())
}

/// Runs an operation to its end in the background.
pub(super) fn run_in_background(ctx: &Arc<TenantCtx>, op_id: String) {
    let ctx = ctx.clone();
    tokio::spawn(async move {
        if let Err(e) = ctx.engine.run(&op_id).await {
            tracing::warn!(tenant = %ctx.name, operation = %op_id, "the operation stopped: {e}");
        }
    });
}

/// The tenant's operations, oldest first.
#[utoipa::path(
    get,
    path = "/operations",
    tag = "operations",
    params(ListQuery),
    responses(
        (status = 200, description = "Operations, oldest first; `full`: whole records", body = OperationList),
        (status = 400, description = "A bad query string", body = Refusal),
        Unauthorized,
    )
)]
async fn list_operations(axum::Extension(ctx): Tenant, Query(q): Query<ListQuery>) -> Result<Response, ApiError> {
    let ops = ctx.engine.store().operations().map_err(|e| refused(&ctx, e.into()))?;
    if q.full {
        let full: Vec<OperationState> = ops
            .into_iter()
            .map(|op| OperationState {
                interrupted: ctx.engine.is_interrupted(&op),
                operation: op,
            })
            .collect();
        return Ok(reply(&ctx, StatusCode::OK, &OperationList::Records(full)));
    }
    let summaries: Vec<OperationSummary> = ops
        .into_iter()
        .map(|op| OperationSummary {
            kind: op.kind(),
            id: op.id,
            cluster_id: op.cluster_id,
            status: op.status,
            error: op.error,
            created_at: op.created_at,
            ended_at: op.ended_at,
        })
        .collect();
    Ok(reply(&ctx, StatusCode::OK, &OperationList::Summaries(summaries)))
}

/// One operation with its journal.
#[utoipa::path(
    get,
    path = "/operations/{id}",
    tag = "operations",
    params(("id" = String, Path, description = "An operation id")),
    responses(
        (status = 200, description = "The operation", body = OperationShown),
        (status = 404, description = "No operation of this tenant has the id", body = Refusal),
        Unauthorized,
    )
)]
async fn show_operation(axum::Extension(ctx): Tenant, Path(id): Path<String>) -> Result<Response, ApiError> {
    let op = ctx.engine.operation(&id).map_err(|e| refused(&ctx, e))?;
    let steps = ctx.engine.store().steps(&id).map_err(|e| refused(&ctx, e.into()))?;
    let interrupted = ctx.engine.is_interrupted(&op);
    Ok(reply(
        &ctx,
        StatusCode::OK,
        &OperationShown {
            operation: op,
            steps,
            interrupted,
        },
    ))
}

/// Cancels an operation at its next step boundary.
#[utoipa::path(
    post,
    path = "/operations/{id}/cancel",
    tag = "operations",
    params(("id" = String, Path, description = "An operation id")),
    responses(
        (status = 200, description = "Cancel requested: it stops at the next step boundary", body = Operation),
        (status = 404, description = "No operation of this tenant has the id", body = Refusal),
        (status = 409, description = "Refused in the state it is in", body = Refusal),
        Unauthorized,
    )
)]
async fn cancel(axum::Extension(ctx): Tenant, Path(id): Path<String>) -> Result<Response, ApiError> {
    let op = ctx.engine.cancel(&id).await.map_err(|e| refused(&ctx, e))?;
    Ok(reply(&ctx, StatusCode::OK, &op))
}

/// An operation's hook invocations.
#[utoipa::path(
    get,
    path = "/operations/{id}/events",
    tag = "operations",
    params(("id" = String, Path, description = "An operation id")),
    responses(
        (status = 200, description = "Its hook invocations, in the order they started", body = [Event]),
        (status = 404, description = "No operation of this tenant has the id", body = Refusal),
        Unauthorized,
    )
)]
async fn events(axum::Extension(ctx): Tenant, Path(id): Path<String>) -> Result<Response, ApiError> {
    ctx.engine.operation(&id).map_err(|e| refused(&ctx, e))?;
    let events = ctx.engine.store().events(&id).map_err(|e| refused(&ctx, e.into()))?;
    Ok(reply(&ctx, StatusCode::OK, &events))
}
