//! The journal: a damaged one loses no intact row and repeats no write on the resume, and a
//! rollback undoes even the writes whose outcome was never recorded.

use std::collections::HashMap;
use std::path::Path;

use remediate_sim::Population;

use super::fix_on;
use crate::support::{
    TUNING, assert_every_row_once, connection_args, results, resume_args, roomy, run, scratch, settings_of, start,
    state, stats, upns, write_csv,
};

/// Rows of results.csv by (line, setting).
fn rows_by_key(report: &Path) -> HashMap<(String, String), HashMap<String, String>> {
    results(report).into_iter().map(|r| ((r["line"].clone(), r["setting"].clone()), r)).collect()
}

/// Copies a finished run's record and journal into a new directory, for damaging.
fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for name in ["run.json", "journal.jsonl"] {
        std::fs::copy(from.join(name), to.join(name)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_journal_loses_no_intact_row_and_repeats_no_write() {
    let dir = scratch();
    let mut config = roomy(40, 1);
    config.population =
        Population::Identities(std::sync::Arc::new((0..40).map(|i| format!("zoë.ñúñez{i}@contoso.com")).collect()));
    let sim = start(config).await;
    let initial = state(&sim);
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&initial));
    let report = dir.path().join("report");
    assert_eq!(run(&fix_on(&sim, dir.path(), &csv, &report)).await, 0);
    let pristine = std::fs::read(report.join("journal.jsonl")).unwrap();
    let original = rows_by_key(&report);
    let changed: Vec<_> = original.iter().filter(|(_, r)| r["outcome"] == "changed").map(|(k, _)| k.clone()).collect();

    // A flipped byte inside a multi-byte character of a middle record, and a line of garbage.
    let middle = pristine.len() / 2;
    let at = middle + pristine[middle..].windows(2).position(|w| w == "ñ".as_bytes()).unwrap();
    let mut damaged = pristine.clone();
    damaged[at + 1] ^= 0x40;
    damaged.splice(middle..middle, b"\xff\xfe not a record\n".iter().copied());
    let mut rng = fastrand::Rng::with_seed(11);
    let mut cases = vec![("flip and garbage".to_string(), damaged)];
    for _ in 0..12 {
        let offset = rng.usize(1..pristine.len());
        let mut flipped = pristine.clone();
        flipped[offset] ^= 1 << rng.u8(0..8);
        cases.push((format!("flip at {offset}"), flipped));
        let cut = rng.usize(1..pristine.len());
        cases.push((format!("cut at {cut}"), pristine[..cut].to_vec()));
    }
    let writes = stats(&sim)["writes_total"].clone();
    for (i, (case, journal)) in cases.into_iter().enumerate() {
        let copy = dir.path().join(format!("damaged-{i}"));
        copy_run(&report, &copy);
        std::fs::write(copy.join("journal.jsonl"), &journal).unwrap();
        let mut resume = resume_args(&copy);
        resume.extend(connection_args(&sim, dir.path()));
        assert_eq!(run(&resume).await, 0, "{case}");
        assert_every_row_once(&copy, 40);
        assert_eq!(stats(&sim)["noop_writes"], 0, "{case}: no write repeated");
        assert_eq!(stats(&sim)["writes_total"], writes, "{case}: every value was already as wanted");
        let now = rows_by_key(&copy);
        if !case.starts_with("cut") {
            for key in &changed {
                assert_eq!(now[key]["outcome"], "changed", "{case}: the change to {key:?} is still reported");
                assert_eq!(now[key]["before"], original[key]["before"], "{case}: {key:?}");
            }
        }
    }
    // Rollback from the first damaged copy restores every change (its resume recorded them again),
    // but cannot claim so: what the damaged places held is unknown.
    let mut rollback = vec!["rollback".to_string(), dir.path().join("damaged-0").display().to_string(), "--yes".into()];
    rollback.extend(["--report-dir".into(), dir.path().join("rollback").display().to_string()]);
    rollback.extend(connection_args(&sim, dir.path()));
    rollback.extend(TUNING.map(String::from));
    assert_eq!(run(&rollback).await, 1, "a rollback of a damaged journal never claims it restored everything");
    let said = crate::support::summary(&dir.path().join("rollback"))["unfinished"].to_string();
    assert!(said.contains("damaged places"), "{said}");
    assert_eq!(settings_of(&state(&sim)), settings_of(&initial), "every change undone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_undoes_writes_whose_outcome_was_never_recorded() {
    let dir = scratch();
    let sim = start(roomy(60, 1)).await;
    let initial = state(&sim);
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &upns(&initial));
    let report = dir.path().join("apply");
    assert_eq!(run(&fix_on(&sim, dir.path(), &csv, &report)).await, 0);
    // As if the run had been killed right after five writes: their intents stay, their rows go.
    let journal = std::fs::read_to_string(report.join("journal.jsonl")).unwrap();
    let mut dropped = 0;
    let kept: Vec<&str> = journal
        .lines()
        .filter(|line| {
            let drop = dropped < 5 && line.contains(r#""record":"row""#) && line.contains(r#""outcome":"changed""#);
            dropped += usize::from(drop);
            !drop
        })
        .collect();
    std::fs::write(report.join("journal.jsonl"), kept.join("\n") + "\n").unwrap();
    let mut rollback =
        vec!["rollback".to_string(), report.display().to_string(), "--yes".into(), "--report-dir".into()];
    rollback.push(dir.path().join("rollback").display().to_string());
    rollback.extend(connection_args(&sim, dir.path()));
    rollback.extend(TUNING.map(String::from));
    assert_eq!(run(&rollback).await, 0);
    assert_eq!(settings_of(&state(&sim)), settings_of(&initial), "the five unrecorded writes were undone too");
}
