//! Hookhost runs the lifecycle of cluster applications and calls each role's
//! lifecycle hooks as sandboxed WebAssembly components.
//!
//! The data path is one-way: a request becomes a plan, the engine runs the
//! plan, and every hook call goes through the [`runtime`], which reads the
//! cluster through a scoped [`metadata`] view.

pub mod config;
pub mod engine;
pub mod files;
pub mod flows;
pub mod hook;
pub mod metadata;
pub mod provider;
pub mod runtime;
pub mod spec;
pub mod state;
