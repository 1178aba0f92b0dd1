//! Hook errors: a numeric code and a message.

use crate::bindings::hookhost::hooks::{metadata::MetadataError, types::HookError};
use std::fmt;

/// A hook's failure, reported to the host as `(code, message)`.
///
/// Codes are the vendor's own (the spec's `err_code<N>` locale keys map
/// them to user messages); 0 is never sent, it becomes 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The non-zero numeric code.
    pub code: u32,
    /// A message for humans.
    pub message: String,
}

/// Code used for failures the SDK itself reports (bad metadata, bad params).
pub const SDK_ERROR_CODE: u32 = 1;

/// Builds an [`Error`] with `code` and `message`.
pub fn fail(code: u32, message: impl Into<String>) -> Error {
    Error {
        code: code.max(1),
        message: message.into(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for HookError {
    fn from(e: Error) -> Self {
        HookError {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<MetadataError> for Error {
    fn from(e: MetadataError) -> Self {
        match e {
            MetadataError::InvalidPath(p) => fail(SDK_ERROR_CODE, format!("invalid metadata path: {p}")),
            MetadataError::NotVisible(p) => fail(SDK_ERROR_CODE, format!("metadata path not visible: {p}")),
        }
    }
}
