//! No module of the library imports one that imports it back.
//!
//! The test reads every file of `host/src` (the binary's `cli/` aside),
//! finds the modules each one names (`use` trees and inline `crate::`,
//! `super::`, `self::` paths; comments and the trailing `mod tests` block
//! left out) and checks two graphs for cycles: the top-level modules
//! (`engine` → `flows` → `plan` ...), and the files of each folder among
//! themselves (`engine/executor.rs` → `engine/step.rs` ...). A folder's
//! `mod.rs` is its interface: its own files may use what it defines and it
//! may re-export theirs, so edges between a module and its own children are
//! not counted; an item named through a re-export (`use super::Claim`, with
//! `pub use claim::Claim` in `mod.rs`) counts as naming the file that
//! defines it (glob re-exports are not followed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Module = Vec<String>;

/// Every library file's module path, with its text.
fn modules(src: &Path) -> BTreeMap<Module, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel: Vec<String> = path
                .strip_prefix(src)
                .unwrap()
                .iter()
                .map(|s| s.to_string_lossy().into_owned())
                .collect();
            if rel[0] == "cli" || rel == ["main.rs"] {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Some(name) = rel.last().and_then(|n| n.strip_suffix(".rs")) else {
                continue;
            };
            let mut module: Module = rel[..rel.len() - 1].to_vec();
            if name != "mod" && name != "lib" {
                module.push(name.to_string());
            }
            out.insert(module, std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

/// The text that is code: no comment lines, no trailing `mod tests` block.
fn code(text: &str) -> String {
    let end = text.find("\nmod tests {").unwrap_or(text.len());
    text[..end]
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands a `use` tree (`a::{b, c::{d, e as f}}`) into its paths.
fn expand(tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path: Vec<String> = tree
            .split(" as ")
            .next()
            .unwrap_or_default()
            .split("::")
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && s != "self")
            .collect();
        return vec![path];
    };
    let prefix: Vec<String> = tree[..open]
        .split("::")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    // Split at top-level commas.
    let (mut depth, mut start, mut parts) = (0, 0, Vec::new());
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(expand)
        .map(|rest| prefix.iter().cloned().chain(rest).collect())
        .collect()
}

/// The paths a file names that start with `crate`, `super` or `self`.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    // `use` statements, whole trees.
    while let Some(at) = rest.find("use ") {
        let before = rest[..at].chars().last();
        let after = &rest[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if before.is_none_or(|c| c.is_whitespace() || c == ')') {
            out.extend(expand(&after[..end]));
        }
        rest = &after[end..];
    }
    // Inline paths.
    let bytes: Vec<char> = code.chars().collect();
    let text: String = bytes.iter().collect();
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in text.match_indices(start) {
            if at > 0 && (bytes[at - 1].is_alphanumeric() || bytes[at - 1] == '_' || bytes[at - 1] == ':') {
                continue;
            }
            let path: String = text[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(path.split("::").filter(|s| !s.is_empty()).map(String::from).collect());
        }
    }
    out
}

/// The module a path names, from `module`: the deepest module it goes
/// through, and the item it then names (if any). A path starting with a
/// child module's name is relative to `module` (as in `pub use child::Item`).
fn target(module: &Module, path: &[String], known: &BTreeSet<Module>) -> Option<(Module, Option<String>)> {
    let (mut base, rest): (Module, &[String]) = match path.first().map(String::as_str) {
        Some("crate") => (Vec::new(), &path[1..]),
        Some("self") => (module.clone(), &path[1..]),
        Some("super") => {
            let mut base = module.clone();
            let mut rest = path;
            while rest.first().map(String::as_str) == Some("super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        Some(first) if known.contains(&[module.as_slice(), &[first.to_string()]].concat()) => (module.clone(), path),
        _ => return None,
    };
    let mut found = known.contains(&base).then(|| (base.clone(), rest.first().cloned()));
    for (i, segment) in rest.iter().enumerate() {
        base.push(segment.clone());
        if !known.contains(&base) {
            break;
        }
        found = Some((base.clone(), rest.get(i + 1).cloned()));
    }
    found
}

/// What each module re-exports from its children, item by item
/// (`pub use child::Item`; glob re-exports are not followed).
fn reexports(files: &BTreeMap<Module, String>, known: &BTreeSet<Module>) -> BTreeMap<(Module, String), Module> {
    let mut out = BTreeMap::new();
    for (module, text) in files {
        for line in code(text).split(';') {
            let line = line.trim_start();
            let Some(tree) = line
                .strip_prefix("pub use ")
                .or_else(|| line.strip_prefix("pub(crate) use "))
            else {
                continue;
            };
            for path in expand(tree) {
                let alias = tree.split(',').find_map(|part| {
                    let (name, alias) = part.split_once(" as ")?;
                    (name.trim().rsplit("::").next()? == path.last()?.as_str())
                        .then(|| alias.trim().trim_end_matches('}').trim().to_string())
                });
                let Some((from, Some(item))) = target(module, &path, known) else {
                    continue;
                };
                if from != *module && item != "*" {
                    out.insert((module.clone(), alias.unwrap_or(item)), from);
                }
            }
        }
    }
    out
}

/// A cycle of the graph, if any.
fn cycle(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Option<Vec<Module>> {
    fn visit(
        at: &Module,
        edges: &BTreeMap<Module, BTreeSet<Module>>,
        path: &mut Vec<Module>,
        done: &mut BTreeSet<Module>,
    ) -> Option<Vec<Module>> {
        if let Some(i) = path.iter().position(|m| m == at) {
            let mut cycle = path[i..].to_vec();
            cycle.push(at.clone());
            return Some(cycle);
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.clone());
        for next in edges.get(at).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(at.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

/// The edges between siblings and between top-level modules, from each
/// file's references: `from` and `to` cut at their first differing level.
fn edges(files: &BTreeMap<Module, String>) -> BTreeMap<Module, BTreeSet<Module>> {
    let known: BTreeSet<Module> = files.keys().cloned().collect();
    let reexported = reexports(files, &known);
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (module, text) in files {
        for path in paths(&code(text)) {
            let Some((mut to, item)) = target(module, &path, &known) else {
                continue;
            };
            // An item a module re-exports comes from the child that defines it.
            for _ in 0..8 {
                match item.as_ref().and_then(|i| reexported.get(&(to.clone(), i.clone()))) {
                    Some(from) => to = from.clone(),
                    None => break,
                }
            }
            let common = module.iter().zip(&to).take_while(|(a, b)| a == b).count();
            // A module and its own ancestors or children: the folder's interface.
            if common == module.len() || common == to.len() {
                continue;
            }
            edges
                .entry(module[..=common].to_vec())
                .or_default()
                .insert(to[..=common].to_vec());
        }
    }
    edges
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = modules(&src);
    assert!(files.len() > 40, "read {} files", files.len());
    // Every file is a module some other file declares: no dead file lies around.
    for module in files.keys().filter(|m| !m.is_empty()) {
        let (name, parent) = module.split_last().unwrap();
        let declared = files.get(parent).is_some_and(|text| {
            text.lines().any(|l| {
                let l = l
                    .trim_start()
                    .trim_start_matches("pub(crate) ")
                    .trim_start_matches("pub ");
                l == format!("mod {name};")
            })
        });
        assert!(declared, "{} is declared by no module", module.join("::"));
    }
    let edges = edges(&files);
    if let Some(cycle) = cycle(&edges) {
        let shown: Vec<String> = cycle.iter().map(|m| m.join("::")).collect();
        panic!("a module cycle: {}", shown.join(" → "));
    }
    // The layers the design names hold.
    let imports = |from: &str, to: &str| {
        edges
            .get(&vec![from.to_string()])
            .is_some_and(|t| t.contains(&vec![to.to_string()]))
    };
    assert!(imports("engine", "flows") && imports("flows", "plan") && imports("store", "plan"));
    assert!(!imports("plan", "engine") && !imports("plan", "store") && !imports("plan", "flows"));
    assert!(!imports("runtime", "engine") && !imports("hook", "runtime") && !imports("metadata", "spec"));
}

#[test]
fn the_checker_sees_cycles() {
    let file = |m: &[&str], text: &str| (m.iter().map(|s| s.to_string()).collect::<Module>(), text.to_string());
    // x names y's item through the folder's re-export; y uses x: a cycle.
    let through: BTreeMap<Module, String> = [
        file(&["a"], "mod x;\nmod y;\npub use y::Y;"),
        file(&["a", "x"], "use super::Y;\npub struct X;"),
        file(&["a", "y"], "use super::x::X;\npub struct Y;"),
    ]
    .into();
    assert!(cycle(&edges(&through)).is_some(), "a cycle through a re-export");
    let files: BTreeMap<Module, String> = [
        file(&["a"], "mod x;\nmod y;\npub use x::X;"),
        file(&["a", "x"], "use super::y::Y;\npub struct X;"),
        file(
            &["a", "y"],
            "use super::{super::b, x::X};\npub struct Y;\nfn f() { crate::b::g() }",
        ),
        file(
            &["b"],
            "use crate::a::{X, y::{Y}};\n// crate::c::nothing\npub fn g() {}",
        ),
    ]
    .into();
    let edges = edges(&files);
    let cycle = cycle(&edges).expect("a ↔ b and x ↔ y");
    assert!(cycle.len() >= 3, "{cycle:?}");
    let a_x: Module = vec!["a".into(), "x".into()];
    let a_y: Module = vec!["a".into(), "y".into()];
    assert!(edges[&a_x].contains(&a_y) && edges[&a_y].contains(&a_x));
    assert!(edges[&vec!["b".to_string()]].contains(&vec!["a".to_string()]));
    assert!(edges[&vec!["a".to_string()]].contains(&vec!["b".to_string()]));
    assert_eq!(
        expand("a::{b, c::{d, e as f}, self}"),
        [vec!["a", "b"], vec!["a", "c", "d"], vec!["a", "c", "e"], vec!["a"]]
    );
}
