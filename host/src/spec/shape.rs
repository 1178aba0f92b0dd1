//! Every shape problem of a spec in one run. serde stops at the first
//! problem; here each one is recorded at its JSON path and taken out of the
//! document (a bad value removed, a missing required key given a
//! placeholder), and the document is parsed again, until it parses. The
//! paths are always those of the user's document, even after an element of
//! a list was taken out.

use super::Problem;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_path_to_error::Segment;

/// Most shape problems reported at once (a file of garbage stops here).
const MAX_PROBLEMS: usize = 200;

/// Values tried, in turn, in place of a missing required key.
const PLACEHOLDERS: [fn() -> Value; 5] = [
    || Value::from(1),
    || Value::from(""),
    || Value::Array(Vec::new()),
    || Value::Object(Default::default()),
    || Value::Bool(false),
];

/// One step of a path in the document.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// What was parsed, with every shape problem.
pub(super) struct Parsed<T> {
    /// The value, when the document parsed once its problems were taken out.
    pub value: Option<T>,
    /// Every shape problem.
    pub problems: Vec<Problem>,
    /// Places (paths of the user's document) whose content is ours now: a
    /// placeholder, or a key taken out.
    altered: Vec<String>,
    /// Elements taken out of lists, in order: (list path then, index).
    removed: Vec<(String, usize)>,
}

impl<T> Parsed<T> {
    /// Where a problem the rules found in the parsed value is in the
    /// user's document; `None` where the document is not the user's there.
    pub fn place(&self, at: &str) -> Option<String> {
        let at = original_str(at, &self.removed);
        let beneath = |place: &String| {
            at.strip_prefix(place.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        };
        (!self.altered.iter().any(beneath)).then_some(at)
    }
}

/// Parses `doc` as `T`, collecting every shape problem.
pub(super) fn parse_all<T: DeserializeOwned>(mut doc: Value) -> Parsed<T> {
    let mut problems = Vec::new();
    let mut altered: Vec<Vec<Step>> = Vec::new();
    let mut removed: Vec<(Vec<Step>, usize)> = Vec::new();
    // A placeholder being tried: its path and which one.
    let mut trying: Option<(Vec<Step>, usize)> = None;
    // Keys no placeholder fitted (their object went once).
    let mut exhausted: Vec<Vec<Step>> = Vec::new();
    let mut rounds = 0;
    let value = loop {
        rounds += 1;
        if problems.len() >= MAX_PROBLEMS || rounds > 10 * MAX_PROBLEMS {
            problems.push(Problem {
                at: ".".into(),
                message: format!("more problems may follow; fix these {} first", problems.len()),
            });
            break None;
        }
        let error = match serde_path_to_error::deserialize::<_, T>(&doc) {
            Ok(value) => break Some(value),
            Err(e) => e,
        };
        let mut path: Vec<Step> = error
            .path()
            .iter()
            .filter_map(|s| match s {
                Segment::Seq { index } => Some(Step::Index(*index)),
                Segment::Map { key } => Some(Step::Key(key.clone())),
                Segment::Enum { .. } | Segment::Unknown => None,
            })
            .collect();
        let message = error.into_inner().to_string();
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string);
        if let Some(key) = &missing {
            path.push(Step::Key(key.clone()));
        }
        // The next placeholder when the last one did not fit.
        let next = match &trying {
            Some((at, n)) if *at == path && missing.is_none() => n + 1,
            _ => 0,
        };
        // Places are kept in the user's indices: compare in those.
        let here = original(&path, &removed);
        let ours = altered.iter().any(|a| here.starts_with(a));
        if next == 0 && !ours {
            let message = match &missing {
                Some(key) => format!("required key `{key}` is missing"),
                None => shape_message(&message),
            };
            problems.push(Problem {
                at: display(&here),
                message,
            });
        }
        trying = None;
        if missing.is_some() || next > 0 {
            if next < PLACEHOLDERS.len() && set(&mut doc, &path, PLACEHOLDERS[next]()) {
                trying = Some((path.clone(), next));
                altered.push(original(&path, &removed));
                continue;
            }
            // No placeholder fits: the object holding the key goes, once.
            if exhausted.contains(&path) {
                break None;
            }
            exhausted.push(path.clone());
            path.pop();
        }
        match take_out(&mut doc, &path, &mut removed) {
            Some(TakenOut::Key(at)) => altered.push(original(&at, &removed)),
            Some(TakenOut::Element) => {}
            None => break None,
        }
    };
    Parsed {
        value,
        problems,
        altered: altered.iter().map(|p| display(p)).collect(),
        removed: removed.iter().map(|(list, i)| (display(list), *i)).collect(),
    }
}

/// serde's message without its position, in the spec's words.
pub(super) fn shape_message(raw: &str) -> String {
    let message = raw.split(" at line ").next().unwrap_or(raw);
    message.replacen("unknown field", "unknown key", 1)
}

/// The path as the user reads it: `nodes[0].services.init`, `.` for the whole.
fn display(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() { ".".into() } else { out }
}

/// A path of the altered document as a path of the user's: undoes each
/// removal of a list element, latest first.
fn original(path: &[Step], removed: &[(Vec<Step>, usize)]) -> Vec<Step> {
    let mut path = path.to_vec();
    for (list, index) in removed.iter().rev() {
        if path.len() > list.len()
            && path.starts_with(list)
            && let Step::Index(i) = &mut path[list.len()]
            && *i >= *index
        {
            *i += 1;
        }
    }
    path
}

/// [`original`] of a displayed path (`nodes[2].cpu`).
fn original_str(at: &str, removed: &[(String, usize)]) -> String {
    let mut at = at.to_string();
    for (list, index) in removed.iter().rev() {
        let Some(rest) = at.strip_prefix(list.as_str()).and_then(|r| r.strip_prefix('[')) else {
            continue;
        };
        let Some((i, tail)) = rest.split_once(']') else {
            continue;
        };
        if let Ok(i) = i.parse::<usize>()
            && i >= *index
        {
            at = format!("{list}[{}]{tail}", i + 1);
        }
    }
    at
}

/// The value at `path`'s parent, to change its child.
fn parent<'a>(doc: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    let (_, up) = path.split_last()?;
    up.iter().try_fold(doc, |v, step| match (v, step) {
        (Value::Object(map), Step::Key(k)) => map.get_mut(k),
        (Value::Array(list), Step::Index(i)) => list.get_mut(*i),
        _ => None,
    })
}

/// Sets the key at `path` (an object's key only).
fn set(doc: &mut Value, path: &[Step], value: Value) -> bool {
    match (parent(doc, path), path.last()) {
        (Some(Value::Object(map)), Some(Step::Key(k))) => {
            map.insert(k.clone(), value);
            true
        }
        _ => false,
    }
}

/// What [`take_out`] took out: an object's key, or a list's element.
enum TakenOut {
    Key(Vec<Step>),
    Element,
}

/// Takes the value at `path` out (the whole document cannot be).
fn take_out(doc: &mut Value, path: &[Step], removed: &mut Vec<(Vec<Step>, usize)>) -> Option<TakenOut> {
    let (last, up) = path.split_last()?;
    match (parent(doc, path)?, last) {
        (Value::Object(map), Step::Key(k)) => {
            map.remove(k)?;
            Some(TakenOut::Key(path.to_vec()))
        }
        (Value::Array(list), Step::Index(i)) if *i < list.len() => {
            list.remove(*i);
            removed.push((up.to_vec(), *i));
            Some(TakenOut::Element)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        items: Vec<Item>,
        #[serde(default)]
        flag: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: String,
        #[serde(default)]
        size: u32,
    }

    fn run(json: &str) -> (Option<Doc>, Vec<String>) {
        let parsed: Parsed<Doc> = parse_all(serde_json::from_str(json).unwrap());
        (parsed.value, parsed.problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn every_problem_is_found_at_the_users_path() {
        let (parsed, found) = run(
            r#"{"items": [{"name": "a", "sise": 1}, 7, {"size": "x"}, {"name": "d", "size": -1}], "flag": "yes", "extra": 1}"#,
        );
        let doc = parsed.unwrap();
        let items: Vec<(&str, u32)> = doc.items.iter().map(|i| (i.name.as_str(), i.size)).collect();
        assert_eq!(items, [("a", 0), ("", 0), ("d", 0)], "bad values out, placeholders in");
        assert!(!doc.flag);
        assert_eq!(
            found,
            [
                // A document's keys are read in sorted order.
                "extra: unknown key `extra`, expected `items` or `flag`",
                "flag: invalid type: string \"yes\", expected a boolean",
                "items[0].sise: unknown key `sise`, expected `name` or `size`",
                "items[1]: invalid type: integer `7`, expected struct Item",
                "items[2].size: invalid type: string \"x\", expected u32",
                "items[2].name: required key `name` is missing",
                "items[3].size: invalid value: integer `-1`, expected u32",
            ]
        );
    }

    #[test]
    fn a_missing_list_gets_a_placeholder_and_garbage_ends() {
        let (parsed, found) = run(r#"{"flag": true}"#);
        assert!(parsed.is_some_and(|d| d.items.is_empty()));
        assert_eq!(found, ["items: required key `items` is missing"]);
        let (parsed, found) = run(r#""spec""#);
        assert!(parsed.is_none());
        assert_eq!(found, [".: invalid type: string \"spec\", expected struct Doc"]);
    }
}
