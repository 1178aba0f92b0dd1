//! What the API's requests and replies hold: the shapes the OpenAPI
//! document ([`super::openapi`]) names, and the CLI's `--server` mode
//! reads. Records (clusters, operations, events, backups) are the engine's
//! own types.

use super::health::Point;
use super::tenants::Quotas;
use crate::apps::{AppRef, AppVersion};
use crate::backups::Backup;
use crate::cluster::{Cluster, ClusterStatus};
use crate::plan::Plan;
use crate::request::{OperationKind, OperationRequest};
use crate::store::{Operation, OperationStatus, StepRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use utoipa::{IntoParams, ToSchema};

/// A refused or failed request: `ok` is always false.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Refusal {
    /// Always `false`.
    pub ok: bool,
    /// `bad-input`, `not-found`, `conflict`, `quota`, `unauthorized`, `too-large`,
    /// `method-not-allowed` or `internal`.
    pub kind: String,
    /// What went wrong, for people.
    pub error: String,
    /// The JSON path of the bad value (400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The quota reached (429): `max_operations`, `max_clusters` or `max_nodes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
}

/// No token, or not a tenant's (every route's 401).
#[derive(utoipa::IntoResponses)]
#[response(status = 401, description = "No token, or not a tenant's")]
#[expect(dead_code, reason = "it documents the reply the token check gives, never built")]
pub(super) struct Unauthorized(Refusal);

/// The tenant of the token, its quotas and what it uses.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Whoami {
    /// The tenant's name.
    pub tenant: String,
    /// What it may use.
    pub quotas: Quotas,
    /// What it uses now.
    pub usage: Usage,
}

/// What a tenant holds and runs now.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub(super) struct Usage {
    /// Clusters not deleted.
    pub clusters: u32,
    /// Their nodes.
    pub nodes: u32,
    /// Operations running.
    pub operations: u32,
}

/// An app version in one request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Upload {
    /// The app id.
    pub app: String,
    /// The version name; the spec's digest names it when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// The app spec (as `spec.json`); each role's `plugin` names one of `components`.
    #[schema(value_type = Object)]
    pub spec: Value,
    /// The components, by plain file name ending in `.wasm`, in base64.
    pub components: BTreeMap<String, String>,
}

/// The version an upload registered.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Uploaded {
    /// The app id.
    pub app: String,
    /// The version name.
    pub version: String,
    /// The SHA-256 of the spec and components.
    pub digest: String,
    /// Whether the version is new (201) or was there already with the same digest (200).
    pub new: bool,
}

/// An app and its versions.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AppSummary {
    /// The app id.
    pub app: String,
    /// Its versions, oldest first.
    pub versions: Vec<VersionSummary>,
}

/// One version of an app, in a list.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct VersionSummary {
    /// The version name.
    pub version: String,
    /// The SHA-256 of the spec and components.
    pub digest: String,
    /// When it was registered (RFC 3339).
    pub added_at: String,
}

/// Options of the lists.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ListQuery {
    /// Whole records, not summaries (the CLI's `--server` mode reads these).
    #[serde(default)]
    pub full: bool,
}

/// Options of the cluster list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ClusterListQuery {
    /// Deleted clusters too.
    #[serde(default)]
    pub all: bool,
    /// Whole records, not summaries (the CLI's `--server` mode reads these).
    #[serde(default)]
    pub full: bool,
}

/// The apps: summaries, or every version's record with `full=true`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum AppList {
    /// Each app with its versions.
    Summaries(Vec<AppSummary>),
    /// Every version's record.
    Records(Vec<AppVersion>),
}

/// The clusters: summaries, or whole records with `full=true`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum ClusterList {
    /// One line each.
    Summaries(Vec<ClusterSummary>),
    /// The records.
    Records(Vec<Cluster>),
}

/// The operations, oldest first: summaries, or whole records with `full=true`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub(super) enum OperationList {
    /// One line each.
    Summaries(Vec<OperationSummary>),
    /// The records, each with whether it waits to be resumed.
    Records(Vec<OperationState>),
}

/// A cluster, in a list.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ClusterSummary {
    /// The cluster id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The app version it runs.
    pub app: AppRef,
    /// Its status.
    pub status: ClusterStatus,
    /// How many nodes it has.
    pub nodes: usize,
    /// The operation that holds it.
    pub operation: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// Which part of the metadata tree, as whom.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct MetadataQuery {
    /// A path in the cluster's tree (`/` when absent).
    pub path: Option<String>,
    /// A node id: the tree as that node's hooks see it (its `host` subtree).
    pub node: Option<String>,
}

/// A part of a cluster's metadata tree at one revision.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetadataView {
    /// The store's revision the tree was read at.
    pub revision: u64,
    /// The path read.
    pub path: String,
    /// The tree under it: objects of objects with string leaves.
    #[schema(value_type = Object)]
    pub tree: Value,
}

/// The nodes' latest monitor samples.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Monitor {
    /// The items the spec names for the cluster's roles.
    pub items: BTreeSet<String>,
    /// Samples by node id, oldest first.
    #[schema(value_type = BTreeMap<String, Vec<Point>>)]
    pub nodes: BTreeMap<String, VecDeque<Point>>,
}

/// Which roles a health round checks (all watched roles when absent).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckBody {
    /// Role names.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
}

/// A backup and the later points of its chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BackupShown {
    /// The backup.
    pub backup: Backup,
    /// Ids of the incremental points built on it.
    pub later: Vec<String>,
}

/// The plan a request would run.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Planned {
    /// The operation's kind.
    pub kind: OperationKind,
    /// The cluster it works on (none for a new cluster).
    pub cluster: Option<String>,
    /// The cluster's nodes once planned.
    pub nodes: usize,
    /// The request.
    pub request: OperationRequest,
    /// Its steps.
    pub plan: Plan,
}

/// An operation, in a list.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct OperationSummary {
    /// The operation id.
    pub id: String,
    /// What it does.
    pub kind: OperationKind,
    /// The cluster it works on.
    pub cluster_id: String,
    /// Its status.
    pub status: OperationStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was submitted (RFC 3339).
    pub created_at: String,
    /// When it ended.
    pub ended_at: Option<String>,
}

/// An operation's record and whether it waits to be resumed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperationState {
    /// The record.
    pub operation: Operation,
    /// Running, but no process runs it (it resumes when the server starts).
    pub interrupted: bool,
}

impl OperationState {
    /// `running`, `interrupted`, or how it ended.
    pub fn status(&self) -> String {
        if self.interrupted {
            "interrupted".into()
        } else {
            self.operation.status.to_string()
        }
    }
}

/// An operation with its journal.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct OperationShown {
    /// The record.
    pub operation: Operation,
    /// The journal: each step that started, with how it ended.
    pub steps: Vec<StepRecord>,
    /// Running, but no process runs it.
    pub interrupted: bool,
}
