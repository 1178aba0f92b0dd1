//! The operations' arguments, one struct for both `cluster <op>` (which runs
//! it) and `plan <op>` (which prints its plan): each becomes an
//! [`OperationRequest`].

use clap::Subcommand;
use hookhost::apps::AppRef;
use hookhost::request::{OperationRequest, ResourceChange};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum OperationCommand {
    /// A new cluster from an app spec or a registered app version: resources, metadata,
    /// config, then init/start by role order.
    ///
    /// A spec file is registered as a version of its app (the directory's name) when its
    /// content is new. Examples:
    ///   hookhost cluster create app/spec.json --name zk
    ///   hookhost cluster create --app zookeeper --version 1.0
    /// (and `hookhost plan create ...` prints its steps without running them)
    Create {
        /// The app spec (cluster.json keys; each role names its component with "plugin").
        #[arg(required_unless_present = "app", conflicts_with = "app")]
        spec: Option<PathBuf>,
        /// A registered app (see `hookhost app list`); needs --version.
        #[arg(long, requires = "version")]
        app: Option<String>,
        /// The registered version of --app.
        #[arg(long, requires = "app")]
        version: Option<String>,
        /// The cluster's name, 1 to 128 characters [default: the spec's name].
        #[arg(long)]
        name: Option<String>,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// A cluster's deletion: destroy (the data-loss guard), stop, then its resources and metadata.
    Delete {
        /// The cluster id (cl-...).
        cluster: String,
        /// Go on when destroy refuses, where the role's allow_force permits.
        #[arg(long)]
        force: bool,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// A cluster's stop: stop by role order, then its instances go (volumes stay).
    Stop {
        /// The cluster id (cl-...).
        cluster: String,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// A stopped cluster's start: new instances, metadata, config, then start by role order.
    Start {
        /// The cluster id (cl-...).
        cluster: String,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// New nodes for a role (scale_horizontal): scale_out pre-check, resources,
    /// /adding-hosts, config, init/start on the new nodes, scale_out on the others.
    ///
    /// Runs on an active cluster. A failure leaves the new nodes in place, marked not
    /// joined: delete them with delete-nodes.
    ///
    /// Example: hookhost cluster add-nodes cl-abc --role zk_node --count 2
    AddNodes {
        /// The cluster id (cl-...).
        cluster: String,
        /// The role that grows (its replicas come with each node).
        #[arg(long)]
        role: String,
        /// How many nodes.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// Nodes leave (scale_horizontal): scale_in pre-check, /deleting-hosts, destroy
    /// (the data-loss guard), scale_in on the others, stop, then their resources go.
    ///
    /// Runs on an active cluster. --force overrides a refusing destroy where the role's
    /// allow_force permits, never a refusing scale_in pre-check.
    ///
    /// Example: hookhost cluster delete-nodes cl-abc --nodes cln-a,cln-b
    DeleteNodes {
        /// The cluster id (cl-...).
        cluster: String,
        /// The nodes, comma separated (node ids, cln-...); replicas leave with their node.
        #[arg(long, value_delimiter = ',', required = true)]
        nodes: Vec<String>,
        /// Go on when destroy refuses, where the role's allow_force permits.
        #[arg(long)]
        force: bool,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// A role's new size (vertical scaling): volume-only growth online; otherwise
    /// stop, resize, start, node after node or all at once (vertical_scaling_policy).
    ///
    /// Runs on an active cluster. Hooks see the new sizes in /host once every node is
    /// done.
    ///
    /// Example: hookhost cluster resize cl-abc --role zk_node --cpu 2 --memory 4096
    Resize {
        /// The cluster id (cl-...).
        cluster: String,
        /// The role resized (its replicas with it).
        #[arg(long)]
        role: String,
        /// CPU cores per node.
        #[arg(long)]
        cpu: Option<u32>,
        /// Memory per node, MiB.
        #[arg(long)]
        memory: Option<u64>,
        /// Data volume per node, GiB (volumes only grow).
        #[arg(long)]
        volume_size: Option<u64>,
        /// Instance class.
        #[arg(long)]
        instance_class: Option<u32>,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// Another version of the cluster's app, the way that version's upgrading_policy says.
    ///
    /// parallel: on a stopped cluster, every node boots the new version, renders, runs start
    /// and upgrade. sequential (rolling): on an active cluster, one node at a time (stop,
    /// boot the new version, render, start and upgrade), in get_nodes_order's order when
    /// the role asks for it. in-place-parallel / in-place-sequential: on an active cluster,
    /// no reboot: the version's payload is copied in, then upgrade runs.
    ///
    /// A failed upgrade says how to recover: run it again, or `cluster downgrade`. While it is
    /// unfinished only stop, start, delete, the same upgrade and downgrade run on the cluster.
    /// After an in-place upgrade the nodes keep the old version's image (and its hooks for
    /// stop, reload, ...) until their next start.
    ///
    /// Example: hookhost cluster upgrade cl-abc --version 2.0 --canaries 1 --max-in-flight 2
    Upgrade {
        /// The cluster id (cl-...).
        cluster: String,
        /// The version of the cluster's app to upgrade to (see `hookhost app show <app>`).
        #[arg(long)]
        version: String,
        /// Rolling upgrades: upgrade this many nodes of each role first, one at a time; the first
        /// failure stops.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        canaries: Option<u32>,
        /// Rolling upgrades: after the canaries, upgrade at most this many nodes at once [default: 1].
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        max_in_flight: Option<u32>,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// Back from a failed upgrade to the version it started from.
    ///
    /// After a parallel or rolling upgrade: on the stopped cluster, every node boots the old
    /// version, renders and runs start. After an in-place upgrade: on the active cluster,
    /// the new version's rollback hook runs.
    ///
    /// Example: hookhost cluster stop cl-abc && hookhost cluster downgrade cl-abc
    Downgrade {
        /// The cluster id (cl-...).
        cluster: String,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// New env values, in one metadata revision; every node re-renders its config and
    /// reloads where it changed.
    ///
    /// Only keys the spec declares (in its env, or with --role in the role's) change, and
    /// not those its unchangeable_env lists. Runs on an active or stopped cluster (a
    /// stopped one renders when it starts), and fixes a cluster whose last update-env
    /// failed. A role's own env key shadows the cluster's for that role's nodes.
    ///
    /// Example: hookhost cluster update-env cl-abc tickTime=3000 syncLimit=10
    UpdateEnv {
        /// The cluster id (cl-...).
        cluster: String,
        /// KEY=VALUE pairs; VALUE is JSON when it parses as written (3000, true,
        /// {"a":1}), else text (1.10 stays 1.10).
        #[arg(required = true, value_parser = env_pair)]
        pairs: Vec<(String, serde_json::Value)>,
        /// Change this role's own env instead of the cluster's.
        #[arg(long)]
        role: Option<String>,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// Run one of the app's custom services ("type": "custom" in the spec).
    ///
    /// Runs on the nodes of the roles that define it (nodes_to_execute_on keeps each role's
    /// first nodes), or on --role's, or on --nodes; roles in ascending order. Its pre_check,
    /// when the spec sets one, asks the nodes first. --params is checked against the
    /// service's service_params (unknown or missing required ones are bad input); the hook
    /// gets the spec's defaults with yours over them. A failure shows the hook's code with
    /// the spec's locale message for it (err_code<N>); the cluster stays active.
    ///
    /// Example: hookhost cluster run cl-abc run_command --params '{"cmd": "INFO"}'
    Run {
        /// The cluster id (cl-...).
        cluster: String,
        /// The custom service's name (as the spec's services key).
        service: String,
        /// Its parameters, one JSON object.
        #[arg(long, value_parser = json_object, default_value = "{}")]
        params: serde_json::Map<String, serde_json::Value>,
        /// Only this role's nodes.
        #[arg(long)]
        role: Option<String>,
        /// Only these nodes, comma separated (node ids, cln-...).
        #[arg(long, value_delimiter = ',')]
        nodes: Vec<String>,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// Back a cluster up, the way its spec's backup_policy says.
    ///
    /// device: the backup hook prepares the nodes of the roles that define it (by role order,
    /// nodes_to_execute_on, a role's selector), then every node's volume is copied, with a
    /// checksum per file; --incremental stores only what changed since the cluster's latest
    /// backup (incremental_backup_supported). A stopped cluster is backed up without hooks.
    /// custom: the backup hook runs with {"snapshot_id": ...} and --params; it keeps the data.
    ///
    /// Example: hookhost cluster backup cl-abc --name nightly --incremental
    Backup {
        /// The cluster id (cl-...).
        cluster: String,
        /// The backup's name, 1 to 128 characters [default: its id].
        #[arg(long)]
        name: Option<String>,
        /// Parameters of the backup hook, one JSON object (checked against its service_params).
        #[arg(long, value_parser = json_object, default_value = "{}")]
        params: serde_json::Map<String, serde_json::Value>,
        /// Store only what changed since the cluster's latest backup.
        #[arg(long)]
        incremental: bool,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup: a device backup into a new cluster, a custom one in place.
    ///
    /// device: the whole backup is checked (each file's checksum) first; then a new cluster of
    /// the same app version, roles, node sizes, sids and env is made, every volume becomes the
    /// backup's copy, and each role runs restore with {"snapshot_id": ...} where it defines it,
    /// else start (init does not run). custom: the cluster the backup was taken of runs its
    /// restore hook with {"snapshot_id": ...}.
    ///
    /// Example: hookhost cluster restore s-abc --name zk-restored
    Restore {
        /// The backup id (s-..., see `hookhost backup list`).
        backup: String,
        /// The new cluster's name (a device backup) [default: the backed-up cluster's name].
        #[arg(long)]
        name: Option<String>,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// Restart the app: its restart service on every node (or --role's), roles in
    /// ascending order.
    ///
    /// Example: hookhost cluster restart cl-abc --role zk_node
    Restart {
        /// The cluster id (cl-...).
        cluster: String,
        /// Only this role's nodes.
        #[arg(long)]
        role: Option<String>,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// Move a cluster to another network (its app lists change_vxnet in advanced_actions).
    ///
    /// The change_vxnet pre-check asks the nodes first (a refusal changes nothing); then every
    /// node takes an address of the new network (pinned with --ip, else the lowest free one),
    /// the reserved IPs new ones too, and the old ones go back; the metadata changes, every
    /// node re-renders (reload where its files changed), and change_vxnet runs after. Nodes
    /// are not restarted. A cluster whose last change-vxnet failed may run it again.
    ///
    /// Example: hookhost cluster change-vxnet cl-abc --vxnet vxnet-prod --ip cln-x=192.168.0.20
    ChangeVxnet {
        /// The cluster id (cl-...).
        cluster: String,
        /// The network it moves to.
        #[arg(long)]
        vxnet: String,
        /// NODE=IP: pin a node's address in the new network (repeat for more nodes).
        #[arg(long = "ip", value_name = "NODE=IP", value_parser = node_ip)]
        ips: Vec<(String, String)>,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
    /// Swap the reserved IPs of two active clusters of one app version in one network.
    ///
    /// The other cluster is held read-only (every other operation on it is refused) until
    /// the exchange ends. Both records, then both metadata trees in one revision, take the
    /// swapped addresses; every node of both re-renders (reload where its files changed). A
    /// failure or a cancel gives both their own addresses back.
    ///
    /// Example: hookhost cluster exchange-ips cl-primary cl-standby
    ExchangeIps {
        /// The cluster id (cl-...).
        cluster: String,
        /// The other cluster's id (cl-...).
        with: String,
        /// Print one JSON object: the outcome (`cluster ...`), or the plan (`plan ...`).
        #[arg(long)]
        json: bool,
    },
}

/// `NODE=IP`.
fn node_ip(text: &str) -> Result<(String, String), String> {
    let (node, ip) = text.split_once('=').ok_or_else(|| format!("{text:?} is not NODE=IP"))?;
    Ok((node.to_string(), ip.to_string()))
}

/// `KEY=VALUE`, the value as JSON when it parses, else as text.
fn env_pair(text: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    // A number that JSON would change (1.10, a 30-digit id) stays text.
    let parsed = serde_json::from_str::<serde_json::Value>(value)
        .ok()
        .filter(|v| !v.is_number() || serde_json::to_string(v).is_ok_and(|text| text == value));
    let value = parsed.unwrap_or_else(|| serde_json::Value::String(value.to_string()));
    Ok((key.to_string(), value))
}

/// A JSON object, as the hooks' `service_params` are.
pub fn json_object(text: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("give a JSON object ({{\"key\": value}}), not {other}")),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

impl OperationCommand {
    /// Whether JSON output was asked for.
    pub fn json(&self) -> bool {
        match self {
            OperationCommand::Create { json, .. }
            | OperationCommand::Delete { json, .. }
            | OperationCommand::Stop { json, .. }
            | OperationCommand::Start { json, .. }
            | OperationCommand::AddNodes { json, .. }
            | OperationCommand::DeleteNodes { json, .. }
            | OperationCommand::Resize { json, .. }
            | OperationCommand::UpdateEnv { json, .. }
            | OperationCommand::Run { json, .. }
            | OperationCommand::Restart { json, .. }
            | OperationCommand::ChangeVxnet { json, .. }
            | OperationCommand::ExchangeIps { json, .. }
            | OperationCommand::Backup { json, .. }
            | OperationCommand::Restore { json, .. }
            | OperationCommand::Upgrade { json, .. }
            | OperationCommand::Downgrade { json, .. } => *json,
        }
    }

    /// The request it makes; a key given twice to `update-env` (a node to
    /// `change-vxnet --ip`) is bad input.
    pub fn request(self) -> anyhow::Result<OperationRequest> {
        Ok(match self {
            OperationCommand::Create {
                spec,
                app,
                version,
                name,
                ..
            } => OperationRequest::CreateCluster {
                spec,
                app: app.zip(version).map(|(app, version)| AppRef { app, version }),
                name,
            },
            OperationCommand::Upgrade {
                cluster,
                version,
                canaries,
                max_in_flight,
                ..
            } => OperationRequest::Upgrade {
                cluster,
                version,
                policy: None,
                canaries: canaries.unwrap_or(0),
                max_in_flight: max_in_flight.unwrap_or(0),
            },
            OperationCommand::Downgrade { cluster, .. } => OperationRequest::Downgrade { cluster },
            OperationCommand::Delete { cluster, force, .. } => OperationRequest::DeleteCluster { cluster, force },
            OperationCommand::Stop { cluster, .. } => OperationRequest::StopCluster { cluster },
            OperationCommand::Start { cluster, .. } => OperationRequest::StartCluster { cluster },
            OperationCommand::AddNodes {
                cluster, role, count, ..
            } => OperationRequest::AddNodes { cluster, role, count },
            OperationCommand::DeleteNodes {
                cluster, nodes, force, ..
            } => OperationRequest::DeleteNodes { cluster, nodes, force },
            OperationCommand::Resize {
                cluster,
                role,
                cpu,
                memory,
                volume_size,
                instance_class,
                ..
            } => OperationRequest::Resize {
                cluster,
                role,
                change: ResourceChange {
                    cpu,
                    memory,
                    volume_size,
                    instance_class,
                },
            },
            OperationCommand::Run {
                cluster,
                service,
                params,
                role,
                nodes,
                ..
            } => OperationRequest::RunService {
                cluster,
                service,
                params,
                role,
                nodes,
            },
            OperationCommand::Restart { cluster, role, .. } => OperationRequest::Restart { cluster, role },
            OperationCommand::ChangeVxnet {
                cluster, vxnet, ips, ..
            } => {
                let mut pinned = std::collections::BTreeMap::new();
                for (node, ip) in ips {
                    if pinned.insert(node.clone(), ip).is_some() {
                        anyhow::bail!(
                            "change-vxnet: node {:?} is pinned twice",
                            hookhost::text::clip(&node, 64)
                        );
                    }
                }
                OperationRequest::ChangeVxnet {
                    cluster,
                    vxnet,
                    ips: pinned,
                }
            }
            OperationCommand::ExchangeIps { cluster, with, .. } => OperationRequest::ExchangeIps {
                cluster,
                with,
                with_last: None,
            },
            OperationCommand::Backup {
                cluster,
                name,
                params,
                incremental,
                ..
            } => OperationRequest::Backup {
                cluster,
                name,
                params,
                incremental,
                order: None,
            },
            OperationCommand::Restore { backup, name, .. } => OperationRequest::Restore {
                backup,
                name,
                cluster: None,
            },
            OperationCommand::UpdateEnv {
                cluster, pairs, role, ..
            } => {
                let mut env = serde_json::Map::new();
                for (key, value) in pairs {
                    if env.insert(key.clone(), value).is_some() {
                        anyhow::bail!("update-env: key {:?} is given twice", hookhost::text::clip(&key, 64));
                    }
                }
                OperationRequest::UpdateEnv { cluster, env, role }
            }
        })
    }
}
