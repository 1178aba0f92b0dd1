//! Metadata paths: `/`-separated, absolute, no empty, `.` or `..` segments.

use thiserror::Error;

/// Longest path accepted, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("{0:?} is not absolute (it must start with /)")]
    NotAbsolute(String),
    /// A segment is empty, `.` or `..`, or holds a control character.
    #[error("{path:?} has a bad segment {segment:?}")]
    BadSegment {
        /// The whole path.
        path: String,
        /// The offending segment.
        segment: String,
    },
    /// The path is longer than [`MAX_PATH_LEN`].
    #[error("path is {0} bytes long; the limit is {MAX_PATH_LEN}")]
    TooLong(usize),
}

/// The segments of an absolute path; `/` has none, one trailing `/` is allowed.
pub fn segments(path: &str) -> Result<Vec<&str>, PathError> {
    let inner = checked(path)?;
    Ok(if inner.is_empty() {
        Vec::new()
    } else {
        inner.split('/').collect()
    })
}

/// The first segment of an absolute path and the rest after it (`""` when
/// none), checked like [`segments`] but without allocating; `None` for `/`.
pub fn split_first(path: &str) -> Result<Option<(&str, &str)>, PathError> {
    let inner = checked(path)?;
    Ok((!inner.is_empty()).then(|| inner.split_once('/').unwrap_or((inner, ""))))
}

/// The path without its leading and its one allowed trailing `/`, every segment checked.
fn checked(path: &str) -> Result<&str, PathError> {
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong(path.len()));
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathError::NotAbsolute(path.to_string()));
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(rest);
    }
    match rest.split('/').find(|segment| check_segment(segment).is_err()) {
        Some(segment) => Err(PathError::BadSegment {
            path: path.to_string(),
            segment: segment.to_string(),
        }),
        None => Ok(rest),
    }
}

/// Checks that `name` can be one path segment (a key in the tree).
pub fn is_valid_segment(name: &str) -> bool {
    check_segment(name).is_ok()
}

fn check_segment(segment: &str) -> Result<&str, ()> {
    let bad = segment.is_empty()
        || segment == "."
        || segment == ".."
        || segment.contains('/')
        || segment.chars().any(char::is_control);
    if bad { Err(()) } else { Ok(segment) }
}

/// Joins a base path and segments.
pub fn join<'a>(base: &str, segments: impl IntoIterator<Item = &'a str>) -> String {
    let mut path = base.trim_end_matches('/').to_string();
    for segment in segments {
        path.push('/');
        path.push_str(segment);
    }
    if path.is_empty() { "/".to_string() } else { path }
}

/// `path` with exactly one trailing `/`: the prefix of everything under it.
pub fn dir_prefix(path: &str) -> String {
    format!("{}/", path.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_refuses_traversal() {
        assert_eq!(segments("/").unwrap(), Vec::<&str>::new());
        assert_eq!(segments("/hosts/zk/").unwrap(), vec!["hosts", "zk"]);
        assert!(matches!(segments("hosts"), Err(PathError::NotAbsolute(_))));
        assert_eq!(split_first("/").unwrap(), None);
        assert_eq!(split_first("/env/").unwrap(), Some(("env", "")));
        assert_eq!(split_first("/hosts/zk/i-1/ip").unwrap(), Some(("hosts", "zk/i-1/ip")));
        assert!(matches!(split_first("/env/../x"), Err(PathError::BadSegment { .. })));
        for bad in ["/a/../b", "/a/./b", "//a", "/a//b", "/a/\u{0}"] {
            assert!(matches!(segments(bad), Err(PathError::BadSegment { .. })), "{bad}");
        }
        assert!(matches!(
            segments(&format!("/{}", "a".repeat(MAX_PATH_LEN))),
            Err(PathError::TooLong(_))
        ));
    }

    #[test]
    fn joins() {
        assert_eq!(join("/clusters/c1", ["hosts", "zk"]), "/clusters/c1/hosts/zk");
        assert_eq!(join("/", ["a"]), "/a");
        assert_eq!(join("/", []), "/");
    }
}
