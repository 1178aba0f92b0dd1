//! `service_params` as the spec declares them (`notes/appcenter-spec.md`
//! §2.3, §6.4): a service's `service_params` object names its parameters,
//! each with its default; a `null` default makes the parameter required.
//! The user's parameters are checked against it; the hook gets the defaults
//! with the user's values over them (the engine merges them, per node's role).

use serde_json::{Map, Value};

/// Why `given` does not fit what `service` declares (`declared`), if it does not.
pub(super) fn check(
    service: &str,
    declared: Option<&Map<String, Value>>,
    given: &Map<String, Value>,
) -> Result<(), String> {
    let empty = Map::new();
    let declared = declared.unwrap_or(&empty);
    let names = || {
        if declared.is_empty() {
            format!("{service} takes no parameters")
        } else {
            format!(
                "{service} takes {}",
                declared
                    .keys()
                    .map(|k| crate::text::clip(k, 64))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    };
    for (key, value) in given {
        let shown = crate::text::clip(key, 64);
        let Some(default) = declared.get(key) else {
            return Err(format!("service_params: unknown parameter {shown:?}; {}", names()));
        };
        if value.is_null() {
            return Err(format!("service_params.{shown}: give a value (null is no value)"));
        }
        if !default.is_null() && kind(default) != kind(value) {
            return Err(format!(
                "service_params.{shown}: {} is {}, but the parameter is {} (its default is {})",
                crate::text::clip(&value.to_string(), 64),
                kind(value),
                kind(default),
                crate::text::clip(&default.to_string(), 64)
            ));
        }
    }
    if let Some(missing) = declared.iter().find(|(k, v)| v.is_null() && !given.contains_key(*k)) {
        return Err(format!(
            "service_params.{0}: required (the spec gives it no default); give it with --params '{{\"{0}\": ...}}'",
            crate::text::clip(missing.0, 64)
        ));
    }
    Ok(())
}

/// A JSON value's type, in words.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn params_are_checked_against_the_declared_ones() {
        let declared = map(json!({"cmd": null, "db": 0, "flag": false}));
        assert_eq!(check("run", Some(&declared), &map(json!({"cmd": "INFO"}))), Ok(()));
        assert_eq!(
            check("run", Some(&declared), &map(json!({"cmd": "x", "nope": 1}))),
            Err("service_params: unknown parameter \"nope\"; run takes cmd, db, flag".into())
        );
        assert_eq!(
            check("run", Some(&declared), &map(json!({"db": 1}))),
            Err(
                "service_params.cmd: required (the spec gives it no default); give it with --params '{\"cmd\": ...}'"
                    .into()
            )
        );
        assert_eq!(
            check("run", Some(&declared), &map(json!({"cmd": "x", "db": "one"}))),
            Err("service_params.db: \"one\" is a string, but the parameter is a number (its default is 0)".into())
        );
        assert_eq!(
            check("run", Some(&declared), &map(json!({"cmd": null}))),
            Err("service_params.cmd: give a value (null is no value)".into())
        );
        assert_eq!(
            check("run", None, &map(json!({"a": 1}))),
            Err("service_params: unknown parameter \"a\"; run takes no parameters".into())
        );
        assert_eq!(check("run", None, &Map::new()), Ok(()));
    }
}
