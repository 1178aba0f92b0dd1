//! The context a hook runs in, and the config files it renders.

use crate::bindings::hookhost::hooks::types as wit;
use crate::{NodeContext, Operation, Result, Service, fail};
use serde::de::DeserializeOwned;
use std::cell::RefCell;

// The service names, from the one table the host reads too.
include!("../../wit/services.rs");

/// One hook call: the service, its parameters and the calling node.
pub struct Context {
    raw: wit::HookContext,
    reply: RefCell<Option<String>>,
}

impl Context {
    pub(crate) fn new(raw: wit::HookContext) -> Self {
        Context {
            raw,
            reply: RefCell::new(None),
        }
    }

    pub(crate) fn take_reply(&self) -> Option<String> {
        self.reply.take()
    }

    /// The service to run.
    pub fn service(&self) -> &Service {
        &self.raw.service
    }

    /// The service's spec name (`scale_out`, or the custom name).
    pub fn service_name(&self) -> String {
        service_name(&self.raw.service)
    }

    /// True when the host only asks whether the service may run: change nothing.
    pub fn is_pre_check(&self) -> bool {
        self.raw.pre_check
    }

    /// The calling node and operation.
    pub fn node(&self) -> &NodeContext {
        &self.raw.node
    }

    /// The operation this call belongs to.
    pub fn operation(&self) -> Operation {
        self.raw.node.operation
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> &str {
        &self.raw.node.cluster_id
    }

    /// The node's stable id.
    pub fn node_id(&self) -> &str {
        &self.raw.node.node_id
    }

    /// The node's role.
    pub fn role(&self) -> &str {
        &self.raw.node.role
    }

    /// 1 on the first try, higher on retries.
    pub fn attempt(&self) -> u32 {
        self.raw.node.attempt
    }

    /// The raw `service_params` JSON object.
    pub fn params_json(&self) -> &str {
        &self.raw.service_params
    }

    /// The `service_params` decoded into `T`.
    pub fn params<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.raw.service_params)
            .map_err(|e| fail(crate::error::SDK_ERROR_CODE, format!("bad service_params: {e}")))
    }

    /// Sets the reply for services whose output the host uses
    /// (`get_nodes_order`, `custom_metadata`, `monitor`).
    pub fn reply(&self, value: impl Into<String>) {
        *self.reply.borrow_mut() = Some(value.into());
    }
}

/// A config file this node should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Absolute path in the node's filesystem.
    pub path: String,
    /// The full content.
    pub content: Vec<u8>,
    /// Unix permission bits.
    pub mode: u32,
}

impl ConfigFile {
    /// A text file with mode 0o644.
    pub fn text(path: impl Into<String>, content: impl Into<String>) -> Self {
        ConfigFile {
            path: path.into(),
            content: content.into().into_bytes(),
            mode: 0o644,
        }
    }

    /// The same file with other permission bits.
    pub fn with_mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

impl From<ConfigFile> for wit::ConfigFile {
    fn from(f: ConfigFile) -> Self {
        wit::ConfigFile {
            path: f.path,
            content: f.content,
            mode: f.mode,
        }
    }
}
