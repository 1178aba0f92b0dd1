//! What the API answers when it refuses: a status and one JSON object,
//! `{"ok": false, "kind", "error"}` (and `at`, the JSON path of a bad
//! value; `quota`, the quota reached).

use super::bodies::Refusal;
use crate::apps::CatalogError;
use crate::backups::BackupError;
use crate::engine::EngineError;
use crate::store::StoreError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A refused or failed request.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// `bad-input`, `not-found`, `conflict`, `quota`, `unauthorized`, `internal`.
    pub kind: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// The JSON path of the bad value.
    pub at: Option<String>,
    /// The quota reached.
    pub quota: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            at: None,
            quota: None,
        }
    }

    /// Any status, with its kind.
    pub(super) fn with_kind(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(status, kind, message)
    }

    /// 400: the request itself is wrong.
    pub fn bad_input(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-input", message)
    }

    /// 400 at a JSON path of the body.
    pub fn bad_json(at: String, message: impl Into<String>) -> ApiError {
        ApiError {
            at: Some(at),
            ..ApiError::bad_input(message)
        }
    }

    /// 404: nothing of this tenant has the id.
    pub fn not_found(what: &str, id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("no {what} {id}"))
    }

    /// 401: no token, or not a tenant's.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 429: a quota of the tenant is used up.
    pub fn quota(quota: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            quota: Some(quota),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "quota", message)
        }
    }

    /// 500: the server failed.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        let message = e.to_string();
        if let EngineError::Refused(refusal) = &e
            && let Some(at) = refusal.input()
        {
            return ApiError::bad_json(at, message);
        }
        match &e {
            EngineError::Store(StoreError::NotFound { .. })
            | EngineError::Catalog(CatalogError::Unknown { .. })
            | EngineError::Backup(BackupError::NotFound(_)) => {
                ApiError::new(StatusCode::NOT_FOUND, "not-found", message)
            }
            EngineError::Catalog(CatalogError::Taken { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            EngineError::Catalog(CatalogError::Io { .. }) | EngineError::Backup(BackupError::Io { .. }) => {
                ApiError::internal(message)
            }
            EngineError::Store(StoreError::Db(_) | StoreError::Lock { .. } | StoreError::Etcd(_))
            | EngineError::Metadata(_)
            | EngineError::Open(_)
            | EngineError::Etcd(_)
            | EngineError::Task(_) => ApiError::internal(message),
            EngineError::Store(_) | EngineError::Refused(_) | EngineError::Elsewhere { .. } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            EngineError::Images { .. } | EngineError::Provider { .. } | EngineError::Incomplete(_) => {
                ApiError::internal(message)
            }
            _ => ApiError::bad_input(message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let doc = Refusal {
            ok: false,
            kind: self.kind.to_string(),
            error: self.message,
            at: self.at,
            quota: self.quota.map(str::to_string),
        };
        let mut response = (self.status, axum::Json(doc)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        response
    }
}
