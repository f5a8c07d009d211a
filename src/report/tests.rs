//! Server text never executes: whatever a service sends in a request id, an error code or a
//! message comes out of the CSV neutralised and out of the terminal written out.

use std::time::Duration;

use super::summary::{RunInfo, recap};
use super::{Tally, columns, story, write_row};
use crate::engine::events::{Outcome, Row};
use crate::run::record::RunKind;
use crate::settings::{Setting, Value};

/// What a hostile endpoint (or one behind a hostile proxy) could answer with.
const FORMULA: &str = "=cmd|' /C calc'!A0";
const COLOUR: &str = "\x1b[31mred\x1b[0m";
const OVERWRITE: &str = "all good\r\x1b[2Kfine\x07";

fn hostile_row(outcome: Outcome) -> Row {
    Row {
        line: 2,
        identity: "adele@contoso.com".into(),
        user_id: format!("@{COLOUR}"),
        setting: Setting::SmtpAuth,
        before: Some(Value::Disabled),
        desired: Value::Enabled,
        after: None,
        outcome,
        attempts: 1,
        error_code: crate::engine::Reason::Service(format!("+{COLOUR}")),
        error_message: format!("{FORMULA} {OVERWRITE}\u{202e}"),
        request_id: FORMULA.into(),
        client_request_id: format!("-{OVERWRITE}"),
        duration_ms: 12,
        tenant: format!("={COLOUR}"),
        control: format!("={COLOUR}"),
    }
}

/// Nothing a terminal or a spreadsheet would obey: no control character but the line break,
/// no reordering character.
fn assert_inert(text: &str) {
    let bad: Vec<char> = text.chars().filter(|&c| c != '\n' && crate::logging::unprintable(c)).collect();
    assert!(bad.is_empty(), "{bad:?} in {text:?}");
}

#[test]
fn every_cell_a_server_sent_is_neutralised() {
    let mut results = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    write_row(&mut results, &hostile_row(Outcome::Failed)).unwrap();
    let written = results.into_inner().unwrap();
    let record = csv::ReaderBuilder::new().has_headers(false).from_reader(written.as_slice()).records().next();
    let cells: Vec<String> = record.unwrap().unwrap().iter().map(str::to_string).collect();
    let header = columns::results_header();
    assert_eq!(cells.len(), header.len(), "a cell a column");
    for (name, cell) in header.iter().zip(&cells) {
        assert!(!cell.starts_with(['=', '+', '-', '@']), "{name}: {cell:?} would run as a formula");
        assert_inert(cell);
    }
    assert_eq!(cells[11], format!("'{FORMULA}"), "request_id");
    assert!(cells[12].starts_with("'-all good") && cells[12].contains("\\x1b[2K"), "{}", cells[12]);
}

/// Writes `results.csv` (serde writes the header) as it is, server text untouched (as a report of an older version has it).
fn raw_results(rows: &[Row]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut writer = csv::Writer::from_path(dir.path().join("results.csv")).expect("results.csv");
    for row in rows {
        writer.serialize(row).expect("a row");
    }
    writer.flush().expect("written");
    dir
}

#[test]
fn the_grouped_failures_and_the_plan_listing_write_server_text_out() {
    let mut change = hostile_row(Outcome::WouldChange);
    change.identity = format!("adele{COLOUR}@contoso.com");
    let dir = raw_results(&[hostile_row(Outcome::Failed), change]);
    let told = story::tell(dir.path(), true, Some("remediate apply --resume DIR --retry-failed"));
    assert_inert(&told);
    assert!(told.contains("1 row failed: +\\x1b[31mred"), "{told}");
    assert!(told.contains("all good\\x0d\\x1b[2Kfine\\x07"), "{told}");
    assert!(told.contains("adele\\x1b[31mred"), "the plan listing: {told}");
}

#[test]
fn the_recap_writes_out_what_is_left_to_do() {
    let info = RunInfo {
        command: RunKind::Apply,
        profile: None,
        desired: "smtp-auth=enabled".into(),
        input: None,
        tenant_id: "contoso.com",
        simulated: false,
        resumed: false,
        started_at: time::OffsetDateTime::UNIX_EPOCH,
        elapsed: Duration::from_secs(1),
        requests: std::collections::BTreeMap::new(),
        throttled: 0,
        pacing: Vec::new(),
        journal_records: 0,
        journal_syncs: 0,
        outcome: crate::error::FinalOutcome::Unfinished,
        interrupted: false,
        stopped_because: None,
        not_started: 0,
        unfinished: vec![format!("authentication: the service said {OVERWRITE}\nto finish: rm -rf ~")],
        finish_command: Some(format!("remediate apply --resume {COLOUR}")),
        input_problems: 0,
    };
    let tally = Tally { targets: 1, ..Tally::default() };
    let text = recap(&info, &tally, std::path::Path::new("report\x1b]0;title\x07"));
    assert_inert(&text);
    assert_eq!(text.lines().filter(|line| line.starts_with("to finish:")).count(), 1, "no line forged: {text}");
    assert!(text.contains("the service said all good\\x0d\\x1b[2Kfine\\x07\\x0ato finish: rm -rf ~"), "{text}");
}
