use std::io::Write;
use std::sync::atomic::Ordering;

use super::format::{PREFIX_LEN, encode};
use super::*;
use crate::engine::events::{Outcome, Row};
use crate::settings::{Setting, Value};

fn row(line: u64, setting: Setting) -> Row {
    Row {
        line,
        identity: format!("u{line}@contoso.com"),
        user_id: String::new(),
        setting,
        before: Some(Value::Disabled),
        desired: Value::Enabled,
        after: Some(Value::Enabled),
        outcome: Outcome::Changed,
        attempts: 1,
        error_code: crate::engine::Reason::None,
        error_message: String::new(),
        request_id: String::new(),
        client_request_id: String::new(),
        duration_ms: 1,
        tenant: String::new(),
        control: String::new(),
    }
}

#[tokio::test]
async fn records_survive_a_torn_line_and_tell_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let intent = |line| Record::Intent {
        line,
        identity: String::new(),
        user_id: String::new(),
        setting: Setting::SmtpAuth,
        before: Some(Value::Inherit),
        desired: Value::Enabled,
    };
    journal.append(&intent(2)).await.unwrap();
    journal.append(&Record::Row(row(2, Setting::SmtpAuth))).await.unwrap();
    journal.append(&intent(3)).await.unwrap();
    journal.append(&Record::Rejected { line: 4, reason: "bad".into() }).await.unwrap();
    drop(journal);
    // A crash in the middle of a line.
    let mut file = std::fs::OpenOptions::new().append(true).open(dir.path().join(FILE_NAME)).unwrap();
    file.write_all(br#"{"record":"row","line":9"#).unwrap();
    let done = Done::load(&dir.path().join(FILE_NAME), false).unwrap();
    assert!(done.is_finished(2, Setting::SmtpAuth));
    assert!(!done.is_finished(2, Setting::PerUserMfa));
    assert_eq!(done.pending_before(3, Setting::SmtpAuth), Some(Some(Value::Inherit)));
    assert_eq!(done.pending_before(2, Setting::SmtpAuth), None);
    assert!(done.was_rejected(4));
    // Appending after the torn line starts a fresh line.
    let journal = Journal::open(dir.path()).unwrap();
    journal.append(&Record::Row(row(5, Setting::PerUserMfa))).await.unwrap();
    assert!(Done::load(&dir.path().join(FILE_NAME), false).unwrap().is_finished(5, Setting::PerUserMfa));
}

/// A small journal: intents and rows with non-ASCII identities, each record's bytes.
fn sample() -> (Vec<u8>, Vec<(std::ops::Range<usize>, String)>) {
    let mut bytes = Vec::new();
    let mut spans = Vec::new();
    for line in 2..8u64 {
        let mut finished = row(line, Setting::SmtpAuth);
        finished.identity = format!("zoë.ñúñez{line}@contoso.com");
        let records = [
            Record::Intent {
                line,
                identity: finished.identity.clone(),
                user_id: format!("id-{line}"),
                setting: Setting::SmtpAuth,
                before: Some(Value::Inherit),
                desired: Value::Enabled,
            },
            Record::Row(finished),
        ];
        for record in records {
            let encoded = encode(&record);
            spans.push((bytes.len()..bytes.len() + encoded.len(), serde_json::to_string(&record).unwrap()));
            bytes.extend_from_slice(&encoded);
        }
    }
    (bytes, spans)
}

fn read_all(bytes: &[u8]) -> (Vec<String>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, bytes).unwrap();
    let mut records = read(&path).unwrap();
    let all = records.by_ref().map(|r| serde_json::to_string(&r).unwrap()).collect();
    (all, records.damaged)
}

#[test]
fn damage_at_any_byte_costs_only_the_record_it_hits() {
    let (bytes, spans) = sample();
    let (all, damaged) = read_all(&bytes);
    assert_eq!(all, spans.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>());
    assert_eq!(damaged, 0);
    for offset in 0..bytes.len() {
        let hit = spans.iter().position(|(range, _)| range.contains(&offset)).unwrap();
        // Cut there (a full disk): every record wholly before the cut is read (its line break
        // aside), nothing else.
        let (read, _) = read_all(&bytes[..offset]);
        let before: Vec<String> =
            spans.iter().take_while(|(range, _)| range.end - 1 <= offset).map(|(_, r)| r.clone()).collect();
        assert_eq!(read, before, "truncated at {offset}");
        // One byte flipped: every other record is read, the hit one only if it is intact.
        for flip in [0x01u8, 0xFF] {
            let mut damaged_bytes = bytes.clone();
            damaged_bytes[offset] ^= flip;
            let (read, damaged) = read_all(&damaged_bytes);
            let others: Vec<String> =
                spans.iter().enumerate().filter(|(i, _)| *i != hit).map(|(_, (_, r))| r.clone()).collect();
            let all: Vec<String> = spans.iter().map(|(_, r)| r.clone()).collect();
            assert!(read == others || read == all, "flip {flip:#x} at {offset}: {read:#?}");
            assert!(damaged >= 1 || read == all, "flip at {offset} counted");
        }
    }
}

#[test]
fn a_resume_after_damage_redoes_only_what_was_lost() {
    let (bytes, spans) = sample();
    // Damage the row of line 4: its intent says a write was under way, so the resume reads
    // the value again before writing (nothing twice), and line 5 still counts as done.
    let row_of_4 = &spans[5].0;
    let mut damaged = bytes.clone();
    // In the record's JSON, not its checksum: a hex digit's case flipped still reads the same.
    damaged[row_of_4.start + PREFIX_LEN + 5] ^= 0x20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, &damaged).unwrap();
    let done = Done::load(&path, false).unwrap();
    assert_eq!(done.damaged, 1);
    assert!(!done.is_finished(4, Setting::SmtpAuth));
    assert_eq!(done.pending_before(4, Setting::SmtpAuth), Some(Some(Value::Inherit)));
    for line in [2, 3, 5, 6, 7] {
        assert!(done.is_finished(line, Setting::SmtpAuth), "line {line}");
    }
}

#[test]
fn unfinished_and_retried_rows_are_not_done() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let mut unfinished = row(2, Setting::SmtpAuth);
    unfinished.outcome = Outcome::Unfinished;
    let mut failed = row(3, Setting::SmtpAuth);
    failed.outcome = Outcome::Failed;
    let bytes: Vec<u8> = [Record::Row(unfinished), Record::Row(failed)].iter().flat_map(encode).collect();
    std::fs::write(&path, bytes).unwrap();
    assert!(!Done::load(&path, false).unwrap().is_finished(2, Setting::SmtpAuth));
    assert!(Done::load(&path, false).unwrap().is_finished(3, Setting::SmtpAuth));
    assert!(!Done::load(&path, true).unwrap().is_finished(3, Setting::SmtpAuth), "--retry-failed");
}

#[tokio::test]
async fn records_queued_without_waiting_reach_the_disk_with_the_next_sync_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    journal.append_later(&Record::Rejected { line: 2, reason: "bad".into() }).unwrap();
    journal.append_later(&Record::Row(row(3, Setting::SmtpAuth))).unwrap();
    journal.append(&Record::Row(row(4, Setting::SmtpAuth))).await.unwrap();
    let lines: Vec<u64> = read(&dir.path().join(FILE_NAME))
        .unwrap()
        .map(|record| match record {
            Record::Rejected { line, .. } | Record::Intent { line, .. } => line,
            Record::Row(row) => row.line,
        })
        .collect();
    assert_eq!(lines, [2, 3, 4], "queued records first, in the order they came");
    assert_eq!(journal.records.load(Ordering::Relaxed), 3);
    assert_eq!(journal.syncs.load(Ordering::Relaxed), 1, "one sync for all three");
}

#[tokio::test]
async fn a_record_an_earlier_sync_covered_is_durable_without_another() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let first = journal.append_later(&Record::Row(row(2, Setting::SmtpAuth))).unwrap();
    let second = journal.append_later(&Record::Row(row(3, Setting::SmtpAuth))).unwrap();
    journal.durable(second).await.unwrap();
    journal.durable(first).await.unwrap();
    journal.flush().await.unwrap();
    assert_eq!(journal.syncs.load(Ordering::Relaxed), 1, "the intents in line share the sync of the first to go");
}

#[tokio::test]
async fn records_queued_when_the_journal_is_dropped_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    journal.append_later(&Record::Row(row(2, Setting::SmtpAuth))).unwrap();
    journal.append_later(&Record::Row(row(3, Setting::SmtpAuth))).unwrap();
    drop(journal);
    let rows = read(&dir.path().join(FILE_NAME)).unwrap().count();
    assert_eq!(rows, 2, "a run that ends early keeps the rows it queued");
}

#[tokio::test]
async fn one_sync_ends_the_wait_of_everybody_it_covered() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let numbers: Vec<u64> =
        (2..12).map(|line| journal.append_later(&Record::Row(row(line, Setting::SmtpAuth))).unwrap()).collect();
    // One waiter is woken from the syncing thread; it must wake the others.
    let waits = numbers.iter().map(|&number| journal.durable(number));
    let done = tokio::time::timeout(std::time::Duration::from_secs(30), futures_util::future::join_all(waits)).await;
    assert!(done.expect("every waiter woken").iter().all(Result::is_ok));
    assert_eq!(journal.syncs.load(Ordering::Relaxed), 1, "the waiters shared one sync");
}

#[test]
fn every_kind_of_record_reads_back_as_written() {
    let intent = Record::Intent {
        line: 7,
        identity: "user7@contoso.com".into(),
        user_id: "u7".into(),
        setting: Setting::PerUserMfa,
        before: None,
        desired: Value::Disabled,
    };
    let mut failed = row(8, Setting::SmtpAuth);
    (failed.outcome, failed.error_code, failed.tenant) =
        (Outcome::Failed, crate::engine::Reason::Service("Forbidden".into()), "t".into());
    let records = [intent, Record::Row(failed), Record::Rejected { line: 9, reason: "no identity".into() }];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::write(&path, records.iter().flat_map(encode).collect::<Vec<u8>>()).unwrap();
    let read: Vec<String> = read(&path).unwrap().map(|record| format!("{record:?}")).collect();
    assert_eq!(read, records.iter().map(|record| format!("{record:?}")).collect::<Vec<_>>());
}

#[test]
fn every_setting_of_the_catalog_has_a_bit_of_its_own() {
    assert!(Setting::ALL.len() <= super::resume::BITS, "widen resume's Bits for {} settings", Setting::ALL.len());
    let bits: std::collections::HashSet<_> = Setting::ALL.iter().map(|s| super::resume::bit(*s)).collect();
    assert_eq!(bits.len(), Setting::ALL.len());
}
