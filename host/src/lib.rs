//! Hookhost runs the lifecycle of cluster applications and calls each role's
//! lifecycle hooks as sandboxed WebAssembly components.
//!
//! The data path is one-way: a [`request`] goes to its flow ([`flows`]),
//! which admits it and makes a [`plan`]; the [`engine`] runs the plan, and
//! every hook call goes through the [`runtime`], which reads the cluster
//! through a scoped [`metadata`] view. Modules, from the leaves up:
//! `files`, [`durable`], [`etcd`], [`metadata`], [`hook`], [`spec`], [`apps`], [`request`],
//! [`cluster`], [`backups`], [`plan`], [`store`], [`runtime`], [`config`], [`provider`],
//! [`flows`], [`engine`]; no module imports one that imports it back
//! (checked by a test).

pub mod apps;
pub mod backups;
pub mod cluster;
pub mod config;
pub mod durable;
pub mod engine;
pub mod etcd;
pub mod files;
pub mod flows;
pub mod hook;
pub mod import;
pub mod metadata;
pub mod plan;
pub mod provider;
pub mod request;
pub mod runtime;
pub mod server;
pub mod spec;
pub mod store;
pub mod text;

#[cfg(test)]
mod layering;
