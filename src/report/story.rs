//! What the end of a run tells a person at a terminal, from `results.csv`: the changes a plan
//! found, Terraform-style (`identity  setting  before → desired`, the first few, then how many
//! more), and the failures grouped by cause, each with what to grant or fix and the command that
//! retries them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::engine::Reason;
use crate::engine::events::{Outcome, Row};
use crate::logging::{printable, printable_lines};
use crate::settings::Setting;

/// Changes listed one by one before the rest are counted.
const LISTED: usize = 20;

/// What to do about a refused request, by setting and error code, as far as known: a read-only
/// run needs the read permission, a run that changes needs both.
fn advice(setting: Setting, code: &Reason, read_only: bool) -> Option<&'static str> {
    if !code.is_permission_refusal() {
        return None;
    }
    // The words are the setting's own (its spec's advice).
    let advice = &setting.spec().advice;
    Some(if read_only { advice.read_only } else { advice.changing })
}

fn value(value: Option<crate::settings::Value>) -> &'static str {
    value.map_or("(unknown)", |v| v.name())
}

/// The lines to print: the changes found (for a read-only run) and the failures by cause.
pub(crate) fn tell(directory: &Path, read_only: bool, retry: Option<&str>) -> String {
    let Ok(mut reader) = csv::Reader::from_path(directory.join("results.csv")) else { return String::new() };
    let mut changes = Vec::new();
    let mut more = 0usize;
    let mut failures: BTreeMap<(Setting, Reason), (usize, String)> = BTreeMap::new();
    for row in reader.deserialize::<Row>().map_while(Result::ok) {
        match row.outcome {
            Outcome::WouldChange if read_only => {
                if changes.len() < LISTED {
                    changes.push(row);
                } else {
                    more += 1;
                }
            }
            Outcome::Failed => {
                let entry = failures.entry((row.setting, row.error_code.clone())).or_insert((0, row.error_message));
                entry.0 += 1;
            }
            _ => {}
        }
    }
    let mut text = String::new();
    if !changes.is_empty() {
        let width = changes.iter().map(|row| row.identity.chars().count()).max().unwrap_or(0);
        let _ = writeln!(text, "would change:");
        for row in &changes {
            let (setting, before, desired) = (row.setting.name(), value(row.before), row.desired.name());
            let identity = printable(&row.identity);
            let control =
                if row.control.is_empty() { String::new() } else { format!("  ({})", printable(&row.control)) };
            let _ = writeln!(text, "  {identity:<width$}  {setting:<17} {before} → {desired}{control}");
        }
        if more > 0 {
            let _ = writeln!(text, "  … and {more} more in results.csv");
        }
    }
    for ((setting, code), (count, message)) in &failures {
        // The code and the message are the service's words: written out, never obeyed.
        let cause = if *code == Reason::None { "failed".to_string() } else { printable(code.as_str()).into_owned() };
        let rows = if *count == 1 { "row" } else { "rows" };
        let _ = write!(text, "{count} {rows} failed: {cause} on {}", setting.name());
        match advice(*setting, code, read_only) {
            Some(fix) => {
                let _ = write!(text, ": {fix}");
            }
            None => {
                let _ = write!(text, " ({})", printable(message));
            }
        }
        match retry {
            Some(command) => {
                let _ = writeln!(text, ", then {command}");
            }
            None => text.push('\n'),
        }
    }
    printable_lines(&text)
}
