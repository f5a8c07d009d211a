//! Drift since a previous run (`--baseline DIR`): which mailboxes became non-compliant, which were
//! fixed, which are new and which are gone, from the two runs' `results.csv`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// A setting's state at the end of a run, as far as its row tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Compliant,
    NonCompliant,
    Unknown,
}

fn end_of(outcome: &str) -> End {
    match outcome {
        "compliant" | "changed" => End::Compliant,
        "would-change" => End::NonCompliant,
        _ => End::Unknown,
    }
}

/// (identity, setting) → end state, of one report.
type Ends = HashMap<(String, String), End>;

/// The end states and the identities of one report.
fn load(directory: &Path) -> Result<(Ends, BTreeSet<String>)> {
    let path = directory.join("results.csv");
    let mut reader = csv::Reader::from_path(&path).map_err(|e| {
        Error::Config(format!("--baseline {}: cannot read {}: {e}", directory.display(), path.display()))
    })?;
    let mut ends = HashMap::new();
    let mut identities = BTreeSet::new();
    for row in reader.deserialize::<HashMap<String, String>>() {
        let row = row.map_err(|e| Error::Config(format!("--baseline {}: {e}", path.display())))?;
        let (Some(identity), Some(setting), Some(outcome)) =
            (row.get("identity"), row.get("setting"), row.get("outcome"))
        else {
            continue;
        };
        if identity == "(tenant)" {
            continue;
        }
        let identity = identity.to_lowercase();
        identities.insert(identity.clone());
        ends.insert((identity, setting.clone()), end_of(outcome));
    }
    Ok((ends, identities))
}

/// One difference from the baseline.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub kind: &'static str,
    pub identity: String,
    pub setting: String,
}

/// Compares this run's report with the baseline's; writes `drift.csv` and returns the summary part.
pub fn compare(baseline: &Path, current: &Path) -> Result<(Value, Vec<Change>)> {
    let (before, before_identities) = load(baseline)?;
    let (now, now_identities) = load(current)?;
    let mut changes = Vec::new();
    for ((identity, setting), end) in &now {
        let was = before.get(&(identity.clone(), setting.clone()));
        let kind = match (was, end) {
            (Some(End::Compliant), End::NonCompliant) => "newly-non-compliant",
            (Some(End::NonCompliant), End::Compliant) => "fixed",
            _ => continue,
        };
        changes.push(Change { kind, identity: identity.clone(), setting: setting.clone() });
    }
    for identity in now_identities.difference(&before_identities) {
        changes.push(Change { kind: "new-mailbox", identity: identity.clone(), setting: String::new() });
    }
    for identity in before_identities.difference(&now_identities) {
        changes.push(Change { kind: "removed-mailbox", identity: identity.clone(), setting: String::new() });
    }
    changes.sort();
    let mut writer = super::create_csv(current, "drift.csv", &["change", "identity", "setting"])?;
    let io = |e: csv::Error| Error::Io { context: "cannot write drift.csv".into(), source: e.into() };
    for change in &changes {
        writer.write_record([change.kind, &super::safe(&change.identity), &change.setting]).map_err(io)?;
    }
    super::close_csv(current, "drift.csv", writer)?;
    let count = |kind: &str| changes.iter().filter(|c| c.kind == kind).count();
    let summary = json!({
        "baseline": baseline.display().to_string(),
        "newly_non_compliant": count("newly-non-compliant"),
        "fixed": count("fixed"),
        "new_mailboxes": count("new-mailbox"),
        "removed_mailboxes": count("removed-mailbox"),
    });
    Ok((summary, changes))
}
