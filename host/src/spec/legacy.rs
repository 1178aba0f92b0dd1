//! The original platform's shell commands in a spec (`notes/appcenter-spec.md`
//! §2.3, §2.8–2.9): here a role's component runs every service, so each
//! command is refused with the service that replaces it — never silently
//! ignored. `hookhost app import` reads the same list to convert an app.

use super::Problem;
use serde_json::Value;

/// A shell command of a spec and what replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    /// Its JSON path (`nodes[0].services.start.cmd`).
    pub at: String,
    /// The command, as written.
    pub command: String,
    /// The role whose component replaces it (its index); `None` for every role.
    pub role: Option<usize>,
    /// Its keys beneath the role (or the cluster).
    place: Vec<String>,
    /// What replaces it.
    pub becomes: Replacement,
}

/// What replaces a shell command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replacement {
    /// The role's service of this name.
    Service(String),
    /// `pre_check: true` on this service: the component answers the pre-check.
    PreCheck(String),
    /// A display tab: a custom service of this name replying the table.
    Tab(String),
    /// A selector command of the first service: the custom service of the
    /// second name replies the node id, and the selector names it.
    Selector(String, String),
}

impl ShellCommand {
    /// The problem a spec that still holds it has.
    pub fn problem(&self) -> Problem {
        let whose = match self.role {
            Some(_) => "the role's component",
            None => "each role's component",
        };
        let message = match &self.becomes {
            Replacement::Service(service) => format!(
                "shell commands do not run here: the `{service}` service of {whose} replaces this one (port the command into it; `hookhost app import` writes the service)"
            ),
            Replacement::PreCheck(service) => format!(
                "a pre-check is `\"pre_check\": true` here: {whose} answers it in its `{service}` service when `ctx.is_pre_check()` (port the command there)"
            ),
            Replacement::Selector(service, selector) => format!(
                "a selector names a service here: declare `{selector}` with \"type\": \"custom\" (its reply is the node id that runs `{service}`), give \"selector\": \"{selector}\" and port the command into it"
            ),
            Replacement::Tab(service) => format!(
                "shell commands do not run here: a display tab is a custom service replying the table; declare `{service}` with \"type\": \"custom\" and port the command into it"
            ),
        };
        Problem {
            at: self.at.clone(),
            message,
        }
    }
}

/// The name a display tab's service gets: the tab's name in letters,
/// digits and `_`, starting with a letter.
pub fn tab_service(tab: &str) -> String {
    let name: String = tab
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(60)
        .collect();
    format!("tab_{}", name.trim_matches('_'))
}

/// Every shell command of a spec document.
pub fn shell_commands(doc: &Value) -> Vec<ShellCommand> {
    let mut found = Vec::new();
    for (owner, prefix, role) in owners(doc) {
        let mut add = |place: &[&str], becomes: Replacement| {
            let command = place.iter().try_fold(owner, |v, k| v.get(k));
            if let Some(command) = command.and_then(Value::as_str) {
                found.push(ShellCommand {
                    at: format!("{prefix}{}", place.join(".")),
                    command: command.to_string(),
                    role,
                    place: place.iter().map(|k| k.to_string()).collect(),
                    becomes,
                });
            }
        };
        let service = |name: &str| Replacement::Service(name.to_string());
        add(&["health_check", "check_cmd"], service("health_check"));
        add(&["health_check", "action_cmd"], service("health_action"));
        add(&["monitor", "cmd"], service("monitor"));
        if role.is_some() {
            add(&["custom_metadata", "cmd"], service("custom_metadata"));
        }
        let services = owner.get("services").and_then(Value::as_object);
        for name in services.into_iter().flat_map(|s| s.keys()) {
            add(&["services", name, "cmd"], service(name));
            add(&["services", name, "pre_check"], Replacement::PreCheck(name.clone()));
            let selector = services.and_then(|s| s[name].get("selector")).and_then(Value::as_str);
            if selector.is_some_and(|sel| crate::hook::parse_service(sel).is_err()) {
                add(
                    &["services", name, "selector"],
                    Replacement::Selector(name.clone(), format!("{name}_selector")),
                );
            }
        }
        if role.is_none() {
            let tabs = owner.get("display_tabs").and_then(Value::as_object);
            for tab in tabs.into_iter().flat_map(|t| t.keys()) {
                add(&["display_tabs", tab, "cmd"], Replacement::Tab(tab_service(tab)));
            }
        }
    }
    found
}

/// The cluster and each role, with the prefix of their paths and the role's index.
fn owners(doc: &Value) -> Vec<(&Value, String, Option<usize>)> {
    let mut owners = vec![(doc, String::new(), None)];
    for (i, role) in doc
        .get("nodes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        owners.push((role, format!("nodes[{i}]."), Some(i)));
    }
    owners
}

/// What replaces `advanced_services` (the original platform's services of
/// the cluster run by shell command).
pub const ADVANCED_SERVICES: &str = "not supported: declare each as a custom service (\"type\": \"custom\") of the role whose component runs it, and run it with `hookhost cluster run`";

/// Takes every shell command out of `doc` (a string `pre_check` becomes
/// `true`) and `advanced_services`, returning the problem of each.
pub(super) fn refuse(doc: &mut Value) -> Vec<Problem> {
    let commands = shell_commands(doc);
    for command in &commands {
        remove(doc, command);
    }
    let mut problems: Vec<Problem> = commands.iter().map(ShellCommand::problem).collect();
    if let Some(map) = doc.as_object_mut()
        && map.remove("advanced_services").is_some()
    {
        problems.push(Problem {
            at: "advanced_services".into(),
            message: ADVANCED_SERVICES.into(),
        });
    }
    problems
}

/// Takes one command out of `doc` (a string `pre_check` becomes `true`).
pub(crate) fn remove(doc: &mut Value, command: &ShellCommand) {
    let owner = match command.role {
        Some(i) => doc.get_mut("nodes").and_then(|n| n.get_mut(i)),
        None => Some(doc),
    };
    let Some((key, up)) = command.place.split_last() else {
        return;
    };
    if let Some(Value::Object(map)) = owner.and_then(|o| up.iter().try_fold(o, |v, k| v.get_mut(k))) {
        if matches!(command.becomes, Replacement::PreCheck(_)) {
            map.insert(key.clone(), Value::Bool(true));
        } else {
            map.remove(key);
        }
    }
}
