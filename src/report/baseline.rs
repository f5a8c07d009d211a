//! Which earlier report a sweep compares itself with (`--baseline`), and which old reports it
//! may prune (`--keep`). A night that did not finish (interrupted, crashed, or with rows it
//! could not read) never becomes the baseline: its `summary.json` says `"complete": false`, or
//! it has none.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Whether the report in `directory` finished: its summary exists and says so.
pub(crate) fn is_complete(directory: &Path) -> bool {
    let Ok(text) =
        crate::support::files::read_text_capped(&directory.join("summary.json"), crate::support::files::cap::MEDIUM)
    else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|summary| summary["complete"] == true)
}

fn is_report(directory: &Path) -> bool {
    ["run.json", "journal.jsonl", "summary.json"].iter().any(|name| directory.join(name).is_file())
}

/// The report directories under `parent`, oldest first (by name: the default names and the
/// README's sort by time), leaving out `except`.
fn reports_in(parent: &Path, except: &Path) -> Vec<PathBuf> {
    let except = std::fs::canonicalize(except).unwrap_or_else(|_| except.to_path_buf());
    let Ok(entries) = std::fs::read_dir(parent) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir() && is_report(path))
        .filter(|path| std::fs::canonicalize(path).map_or(true, |p| p != except))
        .collect();
    found.sort();
    found
}

/// The baseline `--baseline PATH` names: PATH itself when it is a report (refused when it did not
/// finish), else the newest complete report under it (none on the first night).
pub(crate) fn choose(path: &Path, current: &Path) -> Result<Option<PathBuf>> {
    if path.join("results.csv").exists() || path.join("summary.json").exists() {
        if !is_complete(path) {
            return Err(Error::Usage(format!(
                "--baseline {}: that run did not finish (it was interrupted, or some targets could not be read), so it is no baseline; name the directory that holds the reports, and the newest complete one is taken",
                path.display()
            )));
        }
        return Ok(Some(path.to_path_buf()));
    }
    if !path.exists() {
        // The first night: the directory the reports go to is made by this run.
        tracing::info!("--baseline {}: no reports there yet; no drift this time", path.display());
        return Ok(None);
    }
    if !path.is_dir() {
        return Err(Error::Usage(format!(
            "--baseline {}: not a directory; give an earlier run's report directory, or the directory that holds them",
            path.display()
        )));
    }
    let newest = reports_in(path, current).into_iter().rev().find(|report| is_complete(report));
    if newest.is_none() {
        tracing::info!("--baseline {}: no complete report there yet; no drift this time", path.display());
    }
    Ok(newest)
}

/// Removes the report directories beside `current` but the newest `keep` (the current one is
/// never counted or removed); says how many went.
pub(crate) fn prune(current: &Path, keep: usize) -> Result<usize> {
    let parent = current.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let reports = reports_in(parent, current);
    let old = reports.len().saturating_sub(keep);
    for report in &reports[..old] {
        std::fs::remove_dir_all(report).map_err(Error::io(format!("--keep: cannot remove {}", report.display())))?;
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(parent: &Path, name: &str, complete: Option<bool>) -> PathBuf {
        let dir = parent.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("run.json"), "{}").unwrap();
        if let Some(complete) = complete {
            std::fs::write(dir.join("summary.json"), format!("{{\"complete\": {complete}}}")).unwrap();
            std::fs::write(dir.join("results.csv"), "line\n").unwrap();
        }
        dir
    }

    #[test]
    fn a_failed_night_is_never_the_baseline() {
        let root = tempfile::tempdir().unwrap();
        let good = report(root.path(), "audit-20261201T023000", Some(true));
        let failed = report(root.path(), "audit-20261202T023000", Some(false));
        let crashed = report(root.path(), "audit-20261203T023000", None);
        let tonight = report(root.path(), "audit-20261204T023000", None);
        assert_eq!(choose(root.path(), &tonight).unwrap(), Some(good.clone()), "the newest complete one");
        assert!(choose(&failed, &tonight).unwrap_err().to_string().contains("did not finish"));
        assert_eq!(choose(&good, &tonight).unwrap(), Some(good.clone()));
        let _ = crashed;
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(choose(empty.path(), &tonight).unwrap(), None, "the first night has none");
    }

    #[test]
    fn keep_prunes_the_oldest_but_never_tonight() {
        let root = tempfile::tempdir().unwrap();
        for day in 1..=5 {
            report(root.path(), &format!("2026-12-0{day}"), Some(true));
        }
        let tonight = root.path().join("2026-12-09");
        std::fs::create_dir_all(&tonight).unwrap();
        assert_eq!(prune(&tonight, 2).unwrap(), 3);
        let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left.len(), 3, "two kept and tonight's: {left:?}");
        assert!(root.path().join("2026-12-05").exists() && root.path().join("2026-12-04").exists());
    }
}
