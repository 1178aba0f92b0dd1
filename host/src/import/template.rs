//! The original platform's `cluster.json.mustache` and `config.json`
//! (`notes/appcenter-spec.md` §2–3): the config's defaults, by the full
//! path a template names them (`cluster.zk_node.count`, `env.tickTime`,
//! `env.es_node.discovery.zen.no_master_block`), and the template rendered
//! with them. The platform's "improved mustache" puts each value where a
//! JSON value goes, as a JSON literal (a string with its quotes); real
//! templates use no other tag, so any other is refused by name.

use serde_json::Value;
use std::collections::BTreeMap;

/// The defaults of a `config.json`, by full path; entries without a default are left out.
pub fn defaults(config: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    if let Some(sections) = config.get("properties").and_then(Value::as_array) {
        for section in sections {
            collect(section, "", &mut out);
        }
    }
    out
}

fn collect(entry: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    let Some(key) = entry.get("key").and_then(Value::as_str) else {
        return;
    };
    let path = if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    };
    match entry.get("properties").and_then(Value::as_array) {
        Some(children) => children.iter().for_each(|c| collect(c, &path, out)),
        None => {
            if let Some(default) = entry.get("default") {
                out.insert(path, default.clone());
            }
        }
    }
}

/// A template that cannot be rendered.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TemplateError {
    /// 1-based line of the tag.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Renders `template` with `values`; a tag no value has renders `""` and
/// is listed in the second part of the result.
pub fn render(template: &str, values: &BTreeMap<String, Value>) -> Result<(String, Vec<String>), TemplateError> {
    let mut out = String::with_capacity(template.len());
    let mut missing = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let line = template.len() - rest.len() + start;
        let line = template[..line].matches('\n').count() + 1;
        let tag = &rest[start + 2..];
        let Some(end) = tag.find("}}") else {
            return Err(TemplateError {
                line,
                message: "a tag opened with `{{` is never closed".into(),
            });
        };
        let name = tag[..end].trim();
        if name.starts_with(['#', '^', '/', '!', '>', '=', '{', '&']) {
            return Err(TemplateError {
                line,
                message: format!(
                    "`{{{{{name}}}}}`: only value tags (`{{{{cluster.name}}}}`) are supported, as on the original platform"
                ),
            });
        }
        match values.get(name) {
            Some(value) => out.push_str(&value.to_string()),
            None => {
                out.push_str("\"\"");
                if !missing.iter().any(|m| m == name) {
                    missing.push(name.to_string());
                }
            }
        }
        rest = &tag[end + 2..];
    }
    out.push_str(rest);
    Ok((out, missing))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_go_in_as_json_literals_by_their_full_path() {
        let config = json!({"type": "array", "properties": [
            {"key": "cluster", "type": "array", "properties": [
                {"key": "name", "type": "string", "default": "ZK"},
                {"key": "zk_node", "type": "array", "properties": [{"key": "count", "default": 3}]}]},
            {"key": "env", "type": "array", "properties": [
                {"key": "-p", "default": 11211},
                {"key": "access_key_id", "type": "accesskey"},
                {"key": "es_node", "type": "array", "properties": [{"key": "a.b-c", "default": true}]}]}]});
        let values = defaults(&config);
        assert_eq!(
            values.keys().collect::<Vec<_>>(),
            ["cluster.name", "cluster.zk_node.count", "env.-p", "env.es_node.a.b-c"]
        );
        let (text, missing) = render(
            "{\"name\": {{cluster.name}}, \"n\":{{ cluster.zk_node.count }}, \"p\": {{env.-p}}, \"x\": {{env.es_node.a.b-c}}, \"k\": {{env.access_key_id}}}",
            &values,
        )
        .unwrap();
        assert_eq!(text, r#"{"name": "ZK", "n":3, "p": 11211, "x": true, "k": ""}"#);
        assert_eq!(missing, ["env.access_key_id"]);
        let err = render("{\n{{#env.x}}", &values).unwrap_err().to_string();
        assert!(err.starts_with("line 2: `{{#env.x}}`: only value tags"), "{err}");
        assert!(render("{{cluster.name", &values).is_err());
    }
}
