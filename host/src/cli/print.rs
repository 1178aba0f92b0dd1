//! How outcomes look: aligned text for people, one JSON object for machines.
//!
//! Everything a hook wrote is untrusted: in text mode its control characters
//! are escaped, so it can neither fake a `result` line nor drive the terminal.

use hookhost::hook::{ConfigFile, operation_name};
use hookhost::runtime::{Call, Captured, Failure, Outcome, human_bytes};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;

/// A result as JSON, a summary line and a body printed last.
pub type Shown = (Value, String, String);

/// The reply of `run`.
pub fn run_value(reply: &Option<String>) -> Shown {
    match reply {
        Some(text) => (json!(text), format!("reply     {}\n", clean(text)), String::new()),
        None => (Value::Null, String::new(), String::new()),
    }
}

/// The files of `render`.
pub fn render_value(files: &Vec<ConfigFile>) -> Shown {
    let json = files
        .iter()
        .map(|f| json!({"path": f.path, "mode": format!("{:04o}", f.mode), "content": String::from_utf8_lossy(&f.content)}))
        .collect();
    let mut body = String::new();
    for f in files {
        let _ = writeln!(
            body,
            "\n# {} (mode {:04o}, {} bytes)",
            clean(&f.path),
            f.mode,
            f.content.len()
        );
        for line in String::from_utf8_lossy(&f.content).lines() {
            let _ = writeln!(body, "{}", clean(line));
        }
    }
    (Value::Array(json), format!("files     {}\n", files.len()), body)
}

/// Formats an outcome as text or JSON.
pub fn outcome<T>(
    call: &Call,
    workdir: &Path,
    outcome: &Outcome<T>,
    value: impl Fn(&T) -> Shown,
    as_json: bool,
) -> String {
    let (reply_json, reply_line, body) = match &outcome.result {
        Ok(v) => value(v),
        Err(_) => (Value::Null, String::new(), String::new()),
    };
    if as_json {
        return outcome_json(call, workdir, outcome, reply_json);
    }
    let node = &call.node;
    let report = &outcome.report;
    let mut out = format!(
        "{} · node {} ({}/{}) · cluster {} · {}\n",
        clean(&outcome.call),
        node.node_id,
        node.role,
        node.instance_id,
        node.cluster_id,
        operation_name(node.operation)
    );
    let _ = writeln!(out, "plugin    {}", outcome.plugin.display());
    match &outcome.result {
        Ok(_) => out.push_str("result    ok\n"),
        Err(failure) => {
            let _ = writeln!(out, "result    FAILED: {}", clean(&failure.to_string()));
            if let Failure::Trap { backtrace, .. } = failure {
                for frame in backtrace {
                    let _ = writeln!(out, "          {}", clean(frame));
                }
            }
        }
    }
    out.push_str(&reply_line);
    let _ = writeln!(
        out,
        "elapsed   {} · peak memory {} · metadata revision {}{}",
        millis(report.elapsed.as_secs_f64() * 1000.0),
        human_bytes(report.peak_memory),
        report.revision,
        report.fuel_consumed.map(|f| format!(" · fuel {f}")).unwrap_or_default()
    );
    let _ = writeln!(out, "workdir   {} (the hook's /)", workdir.display());
    for (i, line) in report.logs.iter().take(SHOWN_LINES).enumerate() {
        let label = if i == 0 { "log" } else { "" };
        let _ = writeln!(out, "{label:<10}{:<6}{}", line.level, clip(&clean(&line.message)));
    }
    if report.logs.len() > SHOWN_LINES {
        let _ = writeln!(
            out,
            "          [... {} more log lines; use --json for all]",
            report.logs.len() - SHOWN_LINES
        );
    }
    stream(&mut out, "stdout", &report.stdout);
    stream(&mut out, "stderr", &report.stderr);
    out.push_str(&body);
    out
}

/// An outcome as one JSON object.
fn outcome_json<T>(call: &Call, workdir: &Path, outcome: &Outcome<T>, result: Value) -> String {
    let node = &call.node;
    let doc = json!({
        "plugin": outcome.plugin,
        "call": outcome.call,
        "ok": outcome.result.is_ok(),
        "result": result,
        "failure": outcome.result.as_ref().err(),
        "error": outcome.result.as_ref().err().map(|f| f.to_string()),
        "node": {
            "cluster_id": node.cluster_id, "node_id": node.node_id, "role": node.role,
            "instance_id": node.instance_id, "operation": operation_name(node.operation),
            "operation_id": node.operation_id, "attempt": node.attempt,
        },
        "workdir": workdir,
        "report": outcome.report,
    });
    format!("{doc:#}\n")
}

fn stream(out: &mut String, name: &str, captured: &Captured) {
    if captured.bytes.is_empty() && !captured.truncated {
        return;
    }
    let truncated = if captured.truncated { ", truncated" } else { "" };
    let _ = writeln!(out, "{name}    ({} bytes{truncated})", captured.bytes.len());
    let text = captured.text();
    for line in text.lines().take(SHOWN_LINES) {
        let _ = writeln!(out, "  | {}", clip(&clean(line)));
    }
    if text.lines().count() > SHOWN_LINES {
        let _ = writeln!(
            out,
            "  | [... {} more lines; use --json for all]",
            text.lines().count() - SHOWN_LINES
        );
    }
}

/// Lines of a stream or log shown in text mode.
const SHOWN_LINES: usize = 40;
/// Characters of one line shown in text mode.
const SHOWN_CHARS: usize = 200;

fn clip(line: &str) -> String {
    hookhost::text::clip(line, SHOWN_CHARS)
}

/// One line of untrusted text, safe to print: control characters escaped.
pub fn clean(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if hookhost::text::is_hidden(c) {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn millis(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_fake_lines_or_drive_the_terminal() {
        assert_eq!(
            clean("line1\nresult    ok\u{1b}[31m\u{7}"),
            "line1\\nresult    ok\\u{1b}[31m\\u{7}"
        );
        assert_eq!(clean("plain text · ünïcode"), "plain text · ünïcode");
    }
}
