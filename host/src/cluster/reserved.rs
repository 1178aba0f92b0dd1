//! A cluster's reserved IPs (`notes/appcenter-spec.md` §3.1): the spec
//! declares them by name, in `reserved_ips` and in `endpoints.reserved_ips`,
//! each as `{"value": ""}`; the system fills `value` from the cluster's
//! network (a user cannot choose it). A name declared in both places is one
//! address, shown in both.

use crate::spec::Spec;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The two places a spec declares reserved IPs.
fn places(spec: &Spec) -> [Option<&Map<String, Value>>; 2] {
    [
        Some(&spec.reserved_ips),
        spec.endpoints.get("reserved_ips").and_then(Value::as_object),
    ]
}

fn places_mut(spec: &mut Spec) -> [Option<&mut Map<String, Value>>; 2] {
    [
        Some(&mut spec.reserved_ips),
        spec.endpoints.get_mut("reserved_ips").and_then(Value::as_object_mut),
    ]
}

/// The reserved IPs by name, each with its address (empty until one is given).
pub fn reserved_ips(spec: &Spec) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for place in places(spec).into_iter().flatten() {
        for (name, entry) in place {
            let value = entry.get("value").and_then(Value::as_str).unwrap_or_default();
            let kept = out.entry(name.clone()).or_insert_with(String::new);
            if kept.is_empty() {
                *kept = value.to_string();
            }
        }
    }
    out
}

/// Gives the reserved IP `name` the address `ip` wherever it is declared.
pub fn set_reserved_ip(spec: &mut Spec, name: &str, ip: &str) {
    for place in places_mut(spec).into_iter().flatten() {
        if let Some(entry) = place.get_mut(name) {
            match entry.as_object_mut() {
                Some(object) => {
                    object.insert("value".into(), Value::String(ip.to_string()));
                }
                None => *entry = serde_json::json!({ "value": ip }),
            }
        }
    }
}

/// Takes every address back (a new cluster, a new network: the system gives them).
pub fn clear_reserved_ips(spec: &mut Spec) {
    for name in reserved_ips(spec).into_keys() {
        set_reserved_ip(spec, &name, "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_name_in_both_places_is_one_address_shown_in_both() {
        let mut spec: Spec = serde_json::from_value(json!({
            "name": "a", "vxnet": "v",
            "nodes": [{"role": "r", "count": 1, "plugin": "r.wasm"}],
            "reserved_ips": {"vip": {"value": ""}},
            "endpoints": {"client": {"port": 1}, "reserved_ips": {"vip": {"value": ""}, "read": {"value": "1.2.3.4"}}}
        }))
        .unwrap();
        assert_eq!(
            reserved_ips(&spec),
            BTreeMap::from([("read".into(), "1.2.3.4".into()), ("vip".into(), String::new())])
        );
        set_reserved_ip(&mut spec, "vip", "192.168.0.9");
        assert_eq!(spec.reserved_ips["vip"], json!({"value": "192.168.0.9"}));
        assert_eq!(spec.endpoints["reserved_ips"]["vip"], json!({"value": "192.168.0.9"}));
        clear_reserved_ips(&mut spec);
        assert!(reserved_ips(&spec).values().all(String::is_empty));
        assert_eq!(spec.endpoints["client"], json!({"port": 1}));
    }
}
