//! Drift since a previous run (`--baseline DIR`): which mailboxes became non-compliant, which were
//! fixed, which are new and which are gone, from the two runs' `results.csv`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::engine::events::{Outcome, Row};
use crate::error::{Error, Result};
use crate::settings::Setting;

/// A setting's state at the end of a run, as far as its row tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Compliant,
    NonCompliant,
    Unknown,
}

fn end_of(outcome: Outcome) -> End {
    match outcome {
        Outcome::Compliant | Outcome::Changed | Outcome::Excepted => End::Compliant,
        Outcome::WouldChange | Outcome::Blocked => End::NonCompliant,
        _ => End::Unknown,
    }
}

/// (identity, setting) → end state, of one report.
type Ends = HashMap<(String, Setting), End>;

/// The end states and the identities of one report.
fn load(directory: &Path) -> Result<(Ends, BTreeSet<String>)> {
    let path = directory.join("results.csv");
    let unreadable = |e: csv::Error| {
        Error::ReportDirectory(format!("--baseline {}: cannot read {}: {e}", directory.display(), path.display()))
    };
    let mut reader = csv::Reader::from_path(&path).map_err(unreadable)?;
    let mut ends = HashMap::new();
    let mut identities = BTreeSet::new();
    for row in reader.deserialize::<Row>() {
        let row = row.map_err(unreadable)?;
        if row.setting.is_tenant_wide() {
            continue;
        }
        let identity = row.identity.to_lowercase();
        identities.insert(identity.clone());
        ends.insert((identity, row.setting), end_of(row.outcome));
    }
    Ok((ends, identities))
}

/// The kinds of difference from the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ChangeKind {
    NewlyNonCompliant,
    Fixed,
    NewMailbox,
    RemovedMailbox,
}

impl ChangeKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ChangeKind::NewlyNonCompliant => "newly-non-compliant",
            ChangeKind::Fixed => "fixed",
            ChangeKind::NewMailbox => "new-mailbox",
            ChangeKind::RemovedMailbox => "removed-mailbox",
        }
    }
}

/// One difference from the baseline; a mailbox that came or went has no setting.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Change {
    pub kind: ChangeKind,
    pub identity: String,
    pub setting: Option<Setting>,
}

/// The summary's part about drift.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct DriftSummary {
    pub baseline: String,
    pub newly_non_compliant: usize,
    pub fixed: usize,
    pub new_mailboxes: usize,
    pub removed_mailboxes: usize,
}

/// Compares this run's report with the baseline's; writes `drift.csv` and returns the summary part.
pub(crate) fn compare(baseline: &Path, current: &Path) -> Result<(DriftSummary, Vec<Change>)> {
    let (before, before_identities) = load(baseline)?;
    let (now, now_identities) = load(current)?;
    let mut changes = Vec::new();
    for ((identity, setting), end) in &now {
        let kind = match (before.get(&(identity.clone(), *setting)), end) {
            (Some(End::Compliant), End::NonCompliant) => ChangeKind::NewlyNonCompliant,
            (Some(End::NonCompliant), End::Compliant) => ChangeKind::Fixed,
            _ => continue,
        };
        changes.push(Change { kind, identity: identity.clone(), setting: Some(*setting) });
    }
    for identity in now_identities.difference(&before_identities) {
        changes.push(Change { kind: ChangeKind::NewMailbox, identity: identity.clone(), setting: None });
    }
    for identity in before_identities.difference(&now_identities) {
        changes.push(Change { kind: ChangeKind::RemovedMailbox, identity: identity.clone(), setting: None });
    }
    changes.sort();
    let mut writer = super::create_csv(current, "drift.csv", &["change", "identity", "setting"])?;
    let io = |e: csv::Error| Error::Io { context: "cannot write drift.csv".into(), source: e.into() };
    for change in &changes {
        let setting = change.setting.map(Setting::name).unwrap_or_default();
        writer.write_record([change.kind.name(), &super::safe(&change.identity), setting]).map_err(io)?;
    }
    super::close_csv(current, "drift.csv", writer)?;
    let count = |kind: ChangeKind| changes.iter().filter(|c| c.kind == kind).count();
    let summary = DriftSummary {
        baseline: baseline.display().to_string(),
        newly_non_compliant: count(ChangeKind::NewlyNonCompliant),
        fixed: count(ChangeKind::Fixed),
        new_mailboxes: count(ChangeKind::NewMailbox),
        removed_mailboxes: count(ChangeKind::RemovedMailbox),
    };
    Ok((summary, changes))
}
