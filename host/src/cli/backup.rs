//! `hookhost backup ...`: list, show and delete backups.

use super::op::foreground;
use super::{Global, print::clean, print::emit};
use clap::Subcommand;
use hookhost::backups::{Backup, EntryKind};
use hookhost::request::OperationRequest;
use serde_json::json;
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum BackupCommand {
    /// List backups, oldest first (take one with `hookhost cluster backup`).
    List {
        /// Only this cluster's.
        #[arg(long)]
        cluster: Option<String>,
        /// One JSON object per backup.
        #[arg(long)]
        json: bool,
    },
    /// Show a backup: its cluster, app version, chain and nodes.
    Show {
        /// The backup id (s-...).
        backup: String,
        /// Print it as JSON (its record, each file listed).
        #[arg(long)]
        json: bool,
    },
    /// Delete a backup: delete_snapshot runs where the app defines it, then its data goes.
    ///
    /// A point that later incremental points build on is deleted only with them (--chain);
    /// without it the deletion is refused and names them.
    ///
    /// Example: hookhost backup delete s-abc --chain
    Delete {
        /// The backup id (s-...).
        backup: String,
        /// Delete the later points that build on it too.
        #[arg(long)]
        chain: bool,
        /// Print one JSON object: the outcome.
        #[arg(long)]
        json: bool,
    },
}

impl BackupCommand {
    /// Whether the command was asked for JSON output.
    pub fn wants_json(&self) -> bool {
        match self {
            BackupCommand::List { json, .. }
            | BackupCommand::Show { json, .. }
            | BackupCommand::Delete { json, .. } => *json,
        }
    }
}

/// Runs a `backup` subcommand.
pub async fn run(global: &Global, cmd: BackupCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BackupCommand::List { cluster, json } => {
            let target = global.target(true)?;
            let all: Vec<Backup> = target
                .backups()
                .await?
                .into_iter()
                .filter(|b| cluster.as_ref().is_none_or(|c| &b.cluster == c))
                .collect();
            let mut out = String::new();
            if !json {
                let _ = writeln!(
                    out,
                    "{:<12} {:<20} {:<12} {:<7} {:<12} {:>10}  CREATED",
                    "BACKUP", "NAME", "CLUSTER", "POLICY", "BUILDS ON", "STORED"
                );
            }
            for b in all {
                if json {
                    let _ = writeln!(out, "{}", summary(&b));
                } else {
                    let _ = writeln!(
                        out,
                        "{:<12} {:<20} {:<12} {:<7} {:<12} {:>10}  {}",
                        b.id,
                        clean(&b.name),
                        b.cluster,
                        hookhost::request::kebab_name(&b.policy),
                        b.parent.as_deref().unwrap_or("-"),
                        b.copied.stored,
                        b.created_at
                    );
                }
            }
            emit(&out);
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Show { backup, json } => {
            let (b, later) = global.target(true)?.backup(&backup).await?;
            if json {
                emit(&format!("{:#}\n", json!(b)));
                return Ok(ExitCode::SUCCESS);
            }
            let mut out = format!("backup    {} ({})\n", b.id, clean(&b.name));
            let _ = writeln!(out, "cluster   {} ({})", b.cluster, clean(&b.cluster_name));
            let _ = writeln!(out, "app       {} version {}", b.app.app, b.app.version);
            let _ = writeln!(
                out,
                "policy    {}{}",
                hookhost::request::kebab_name(&b.policy),
                match &b.parent {
                    Some(parent) => format!(", incremental: builds on {parent}"),
                    None => ", full".into(),
                }
            );
            if !later.is_empty() {
                let _ = writeln!(out, "later     {} build on it", later.join(", "));
            }
            let _ = writeln!(
                out,
                "size      {} bytes, {} stored anew · taken {}",
                b.copied.bytes, b.copied.stored, b.created_at
            );
            let _ = writeln!(
                out,
                "\n{:<14} {:<14} {:>4} {:>7} {:>12}",
                "NODE", "ROLE", "SID", "FILES", "BYTES"
            );
            for n in &b.nodes {
                let (files, bytes) = n.files.iter().fold((0, 0), |(c, s), e| match e.kind {
                    EntryKind::File { size, .. } => (c + 1, s + size),
                    _ => (c, s),
                });
                let _ = writeln!(
                    out,
                    "{:<14} {:<14} {:>4} {:>7} {:>12}",
                    n.node_id, n.role, n.sid, files, bytes
                );
            }
            emit(&out);
            Ok(ExitCode::SUCCESS)
        }
        BackupCommand::Delete { backup, chain, json } => {
            let target = global.target(false)?;
            let op = target
                .submit(OperationRequest::DeleteBackup {
                    backup,
                    chain,
                    cluster: String::new(),
                    backups: Vec::new(),
                })
                .await?;
            foreground(&target, &op.id, json).await
        }
    }
}

/// One line of `backup list --json`.
fn summary(b: &Backup) -> serde_json::Value {
    json!({
        "id": b.id, "name": b.name, "cluster": b.cluster, "app": b.app, "policy": b.policy,
        "parent": b.parent, "nodes": b.nodes.len(), "bytes": b.copied.bytes, "stored": b.copied.stored,
        "created_at": b.created_at,
    })
}
