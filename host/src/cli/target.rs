//! Where the `cluster`, `op`, `plan`, `app` and `backup` commands go: the
//! engine of the local state directory, or a `hookhost serve` (`--server`,
//! `--token`). Both give the same records, so each command prints the same
//! thing and exits the same way in either mode.

use super::remote::Remote;
use anyhow::bail;
use hookhost::apps::AppVersion;
use hookhost::backups::Backup;
use hookhost::cluster::Cluster;
use hookhost::engine::{Engine, Round};
use hookhost::request::OperationRequest;
use hookhost::server::bodies::{BackupShown, MetadataView, OperationShown, OperationState, Planned};
use hookhost::store::{Event, Operation, StepRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use std::path::Path;

/// The local engine or a server.
pub enum Target {
    /// The state directory's engine, in this process.
    Local(Engine),
    /// A `hookhost serve`, as one tenant.
    Server(Box<Remote>),
}

#[derive(Deserialize)]
struct Uploaded {
    app: String,
    version: String,
    new: bool,
}

/// A path segment or query value, percent-encoded.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Target {
    /// Every cluster (deleted ones too), oldest first.
    pub async fn clusters(&self) -> anyhow::Result<Vec<Cluster>> {
        match self {
            Target::Local(engine) => Ok(engine.store().clusters()?),
            Target::Server(remote) => remote.get("/api/v1/clusters?all=true&full=true").await,
        }
    }

    /// One cluster.
    pub async fn cluster(&self, id: &str) -> anyhow::Result<Cluster> {
        match self {
            Target::Local(engine) => Ok(engine.cluster(id)?),
            Target::Server(remote) => remote.get(&format!("/api/v1/clusters/{}", enc(id))).await,
        }
    }

    /// Every operation, oldest first.
    pub async fn operations(&self) -> anyhow::Result<Vec<OperationState>> {
        match self {
            Target::Local(engine) => Ok(engine
                .store()
                .operations()?
                .into_iter()
                .map(|operation| OperationState {
                    interrupted: engine.is_interrupted(&operation),
                    operation,
                })
                .collect()),
            Target::Server(remote) => remote.get("/api/v1/operations?full=true").await,
        }
    }

    /// One operation and its journal.
    pub async fn operation(&self, id: &str) -> anyhow::Result<(OperationState, Vec<StepRecord>)> {
        match self {
            Target::Local(engine) => {
                let operation = engine.operation(id)?;
                let steps = engine.store().steps(&operation.id)?;
                let interrupted = engine.is_interrupted(&operation);
                Ok((OperationState { operation, interrupted }, steps))
            }
            Target::Server(remote) => {
                let reply: OperationShown = remote.get(&format!("/api/v1/operations/{}", enc(id))).await?;
                let shown = OperationState {
                    operation: reply.operation,
                    interrupted: reply.interrupted,
                };
                Ok((shown, reply.steps))
            }
        }
    }

    /// An operation's hook invocations, in order.
    pub async fn events(&self, id: &str) -> anyhow::Result<Vec<Event>> {
        match self {
            Target::Local(engine) => {
                let op = engine.operation(id)?;
                Ok(engine.store().events(&op.id)?)
            }
            Target::Server(remote) => remote.get(&format!("/api/v1/operations/{}/events", enc(id))).await,
        }
    }

    /// Starts an operation (a server runs it at once; locally, [`super::op::foreground`] does).
    /// A create from a spec file uploads its app to a server first.
    pub async fn submit(&self, request: OperationRequest) -> anyhow::Result<Operation> {
        match self {
            Target::Local(engine) => Ok(engine.submit(request).await?),
            Target::Server(remote) => {
                let request = self.uploaded(remote, request).await?;
                remote.post("/api/v1/operations", &json!(request)).await
            }
        }
    }

    /// A create from a spec file becomes a create of the app version uploaded from it.
    async fn uploaded(&self, remote: &Remote, request: OperationRequest) -> anyhow::Result<OperationRequest> {
        Ok(match request {
            OperationRequest::CreateCluster {
                spec: Some(file),
                app: None,
                name,
            } => {
                let file = hookhost::engine::spec_file(&file);
                let app = hookhost::engine::app_id_of(&file);
                let up: Uploaded = serde_json::from_value(remote.upload(&file, &app, None).await?)?;
                OperationRequest::CreateCluster {
                    spec: None,
                    app: Some(hookhost::apps::AppRef {
                        app: up.app,
                        version: up.version,
                    }),
                    name,
                }
            }
            other => other,
        })
    }

    /// The plan a request would run (nothing run).
    pub async fn plan(&self, request: OperationRequest) -> anyhow::Result<Planned> {
        match self {
            Target::Local(engine) => {
                let (cluster, plan) = engine.plan(&request).await?;
                Ok(Planned {
                    kind: request.kind(),
                    cluster: request.cluster_id().map(|_| cluster.id),
                    nodes: cluster.nodes.len(),
                    request,
                    plan,
                })
            }
            Target::Server(remote) => {
                if request.spec().is_some() {
                    bail!(
                        "a server plans app versions it has, not spec files: register it first (`hookhost app add <spec> --version <name>`) and plan with --app/--version"
                    );
                }
                remote.post("/api/v1/plans", &json!(request)).await
            }
        }
    }

    /// Asks an operation to stop at its next step boundary (ends an interrupted one).
    pub async fn cancel(&self, id: &str) -> anyhow::Result<Operation> {
        match self {
            Target::Local(engine) => Ok(engine.cancel(id).await?),
            Target::Server(remote) => {
                remote
                    .post(&format!("/api/v1/operations/{}/cancel", enc(id)), &json!({}))
                    .await
            }
        }
    }

    /// A cluster's metadata at `path`, as `node` sees it; with its revision.
    pub async fn metadata(&self, cluster: &str, path: &str, node: Option<&str>) -> anyhow::Result<(u64, Value)> {
        match self {
            Target::Local(engine) => Ok(engine.metadata_at(cluster, Some(path), node).await?),
            Target::Server(remote) => {
                let mut url = format!("/api/v1/clusters/{}/metadata?path={}", enc(cluster), enc(path));
                if let Some(node) = node {
                    url.push_str(&format!("&node={}", enc(node)));
                }
                let reply: MetadataView = remote.get(&url).await?;
                Ok((reply.revision, reply.tree))
            }
        }
    }

    /// One health round now.
    pub async fn check(&self, cluster: &str, roles: Option<Vec<String>>) -> anyhow::Result<Round> {
        match self {
            Target::Local(engine) => Ok(engine.check_health(cluster, roles.as_deref()).await?),
            Target::Server(remote) => {
                remote
                    .post(
                        &format!("/api/v1/clusters/{}/check", enc(cluster)),
                        &json!({"roles": roles}),
                    )
                    .await
            }
        }
    }

    /// Registers the app of a spec file; true when it is new.
    pub async fn add_app(&self, path: &Path, app: Option<&str>, version: &str) -> anyhow::Result<(AppVersion, bool)> {
        match self {
            Target::Local(engine) => Ok(engine.add_app(path, app, Some(version)).await?),
            Target::Server(remote) => {
                let file = hookhost::engine::spec_file(path);
                let app = app.map_or_else(|| hookhost::engine::app_id_of(&file), str::to_string);
                let up: Uploaded = serde_json::from_value(remote.upload(&file, &app, Some(version)).await?)?;
                Ok((self.app_version(&up.app, &up.version).await?, up.new))
            }
        }
    }

    /// Every registered version of every app, by app, oldest first.
    pub async fn app_versions_all(&self) -> anyhow::Result<Vec<AppVersion>> {
        match self {
            Target::Local(engine) => {
                let catalog = engine.catalog();
                let mut all = Vec::new();
                for app in catalog.apps()? {
                    all.extend(catalog.versions(&app)?);
                }
                Ok(all)
            }
            Target::Server(remote) => remote.get("/api/v1/apps?full=true").await,
        }
    }

    /// An app's versions, oldest first (none when it is unknown).
    pub async fn app_versions(&self, app: &str) -> anyhow::Result<Vec<AppVersion>> {
        match self {
            Target::Local(engine) => Ok(engine.catalog().versions(app)?),
            Target::Server(remote) => remote.get(&format!("/api/v1/apps/{}", enc(app))).await,
        }
    }

    /// One app version.
    pub async fn app_version(&self, app: &str, version: &str) -> anyhow::Result<AppVersion> {
        match self {
            Target::Local(engine) => Ok(engine.catalog().get(app, version)?),
            Target::Server(remote) => remote.get(&format!("/api/v1/apps/{}/{}", enc(app), enc(version))).await,
        }
    }

    /// Every backup, oldest first.
    pub async fn backups(&self) -> anyhow::Result<Vec<Backup>> {
        match self {
            Target::Local(engine) => Ok(engine.backups().list()?),
            Target::Server(remote) => remote.get("/api/v1/backups").await,
        }
    }

    /// One backup, with the later points that build on it.
    pub async fn backup(&self, id: &str) -> anyhow::Result<(Backup, Vec<String>)> {
        match self {
            Target::Local(engine) => {
                let backup = engine.backups().get(id)?;
                let later = engine.backups().later_in_chain(&backup.id)?;
                Ok((backup, later))
            }
            Target::Server(remote) => {
                let reply: BackupShown = remote.get(&format!("/api/v1/backups/{}", enc(id))).await?;
                Ok((reply.backup, reply.later))
            }
        }
    }
}
