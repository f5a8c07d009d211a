//! The CSV corpus (tests/corpus): every kind of file an administrator's export produces, each with
//! the targets it must yield and the problems (line and reason) it must report.

use std::path::PathBuf;

use proptest::prelude::*;
use remediate::testing::targets::{self, Entry};

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(name)
}

/// (identities, (line, reason) problems) of a corpus file, read as `validate` lists it.
fn read(name: &str) -> (Vec<String>, Vec<(u64, String)>) {
    let reader = targets::open_to_list(&corpus(name), None).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut found = (Vec::new(), Vec::new());
    for entry in reader {
        match entry {
            Entry::Target(t) => found.0.push(t.identity),
            Entry::Problem(p) => found.1.push((p.line, p.message)),
        }
    }
    found
}

fn open_error(name: &str) -> String {
    targets::open(&corpus(name), None).expect_err(name).to_string()
}

const BOTH: [&str; 2] = ["adele@contoso.com", "alex@contoso.com"];

#[test]
fn well_formed_variants_yield_their_targets() {
    for name in ["bom-crlf.csv", "lone-cr.csv", "semicolon.csv", "tab.csv", "quoted-newlines.csv", "blank-lines.csv"] {
        let (identities, problems) = read(name);
        assert_eq!(identities, BOTH, "{name}");
        assert!(problems.is_empty(), "{name}: {problems:?}");
    }
}

#[test]
fn line_numbers_count_every_kind_of_line_break() {
    let lines = |name: &str| -> Vec<u64> {
        targets::open(&corpus(name), None)
            .unwrap()
            .filter_map(|e| if let Entry::Target(t) = e { Some(t.line) } else { None })
            .collect()
    };
    assert_eq!(lines("bom-crlf.csv"), [2, 3]);
    assert_eq!(lines("lone-cr.csv"), [2, 3]);
    assert_eq!(lines("quoted-newlines.csv"), [2, 4]);
    assert_eq!(lines("blank-lines.csv"), [3, 6]);
}

#[test]
fn an_unbalanced_quote_is_reported_where_it_opens() {
    let (identities, problems) = read("unbalanced-quote.csv");
    assert_eq!(identities, ["adele@contoso.com"]);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, 2);
    assert!(problems[0].1.contains("never closed"), "{problems:?}");
    // A run refuses the file before anything happens, rather than stop reading silently.
    let refused = open_error("unbalanced-quote.csv");
    assert!(
        refused.contains("unbalanced-quote.csv:2:") && refused.contains("nothing was read or changed"),
        "{refused}"
    );
}

#[test]
fn a_stray_quote_inside_a_field_is_just_a_character() {
    assert_eq!(read("stray-quote.csv"), (BOTH.map(String::from).to_vec(), vec![]));
}

#[test]
fn duplicates_in_any_letter_case_are_processed_once() {
    let (identities, problems) = read("duplicates.csv");
    assert_eq!(identities, BOTH);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].0, 3);
    assert!(problems[0].1.contains("duplicate of line 2"));
}

#[test]
fn addresses_that_are_not_addresses() {
    let (identities, problems) = read("not-addresses.csv");
    assert_eq!(identities, ["alex@contoso.com"]);
    let lines: Vec<u64> = problems.iter().map(|p| p.0).collect();
    assert_eq!(lines, [2, 3, 4, 5, 6]);
    assert!(problems[0].1.contains("no '@'"));
    assert!(problems[3].1.contains("contains a space"));
    assert!(problems[4].1.contains("not a domain name"));
}

#[test]
fn windows_1252_and_nul_bytes_are_named() {
    let (identities, problems) = read("windows-1252.csv");
    assert_eq!(identities, ["alex@contoso.com"]);
    assert_eq!(problems[0].0, 2);
    assert!(problems[0].1.contains("Windows-1252") && problems[0].1.contains("UTF-8"));
    let (identities, problems) = read("nul-byte.csv");
    assert_eq!(identities, ["alex@contoso.com"]);
    assert!(problems[0].1.contains("control character"));
}

#[test]
fn files_that_cannot_be_read_at_all_say_why() {
    let missing = open_error("no-identity-column.csv");
    assert!(
        missing.contains("'Name', 'Department'")
            && missing.contains("UserPrincipalName")
            && missing.contains("--column"),
        "{missing}"
    );
    assert!(open_error("empty.csv").contains("empty"));
    assert!(open_error("utf16.csv").contains("UTF-16"));
    let (identities, problems) = read("header-only.csv");
    assert!(identities.is_empty() && problems.is_empty());
    let named = targets::open(&corpus("no-identity-column.csv"), Some("Mail")).unwrap_err().to_string();
    assert!(named.contains("no column named 'Mail'"), "{named}");
}

#[test]
fn a_multi_megabyte_line_or_field_is_an_error_not_memory_growth() {
    let dir = tempfile::tempdir().unwrap();
    let long_line = dir.path().join("long-line.csv");
    let mut text = b"UserPrincipalName,Note\nadele@contoso.com,".to_vec();
    text.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
    text.extend(b"\nalex@contoso.com,y\n");
    std::fs::write(&long_line, &text).unwrap();
    let refused = targets::open(&long_line, None).unwrap_err().to_string();
    assert!(refused.contains("long-line.csv:2:") && refused.contains("longer than"), "{refused}");
    let entries: Vec<Entry> = targets::open_to_list(&long_line, None).unwrap().collect();
    assert_eq!(entries.len(), 1, "listing stops at the broken line and says so");
    let Entry::Problem(problem) = &entries[0] else { panic!("{entries:?}") };
    assert!(problem.message.contains("longer than") && problem.message.contains("cannot be read"), "{problem:?}");

    let long_field = dir.path().join("long-field.csv");
    let mut text = b"UserPrincipalName,Note\nadele@contoso.com,\"".to_vec();
    for _ in 0..100_000 {
        text.extend(b"a short line inside one quoted field\n");
    }
    text.extend(b"\"\n");
    std::fs::write(&long_field, &text).unwrap();
    assert!(targets::open(&long_field, None).unwrap_err().to_string().contains("row is longer than"));
    let entries: Vec<Entry> = targets::open_to_list(&long_field, None).unwrap().collect();
    let Some(Entry::Problem(problem)) = entries.last() else { panic!("{entries:?}") };
    assert!(problem.message.contains("row is longer than"), "{problem:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_reader(body in proptest::collection::vec(any::<u8>(), 0..2048), header in "[A-Za-z;,\t\"]{0,40}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fuzz.csv");
        let mut text = format!("UserPrincipalName{header}\n").into_bytes();
        text.extend(body);
        std::fs::write(&path, &text).unwrap();
        if let Ok(reader) = targets::open(&path, None) {
            for entry in reader {
                if let Entry::Target(target) = entry {
                    prop_assert!(targets::check_address(&target.identity).is_ok());
                }
            }
        }
    }
}

#[test]
fn powershells_type_line_is_skipped_and_still_counted() {
    let (identities, problems) = read("powershell-type-line.csv");
    assert_eq!(identities, BOTH);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, 4, "the #TYPE line is line 1, the header line 2: {problems:?}");
    let reader = targets::open(&corpus("powershell-type-line.csv"), None).unwrap();
    assert!(reader.note().is_some_and(|note| note.contains("#TYPE") && note.contains("-NoTypeInformation")));
    let lines: Vec<u64> = reader.filter_map(Entry::into_target).map(|t| t.line).collect();
    assert_eq!(lines, [3, 5]);
    let input = targets::Input::read(&corpus("powershell-type-line.csv"), None).unwrap();
    assert_eq!(input.rows, 3, "the #TYPE line is not a row");
    assert_eq!(input.sha256, remediate::testing::fingerprint(&corpus("powershell-type-line.csv")).unwrap());
}

/// `remediate ARGS…` with `stdin` as its standard input: (exit code, stdout, stderr).
fn with_stdin(args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    let output = assert_cmd::Command::cargo_bin("remediate")
        .unwrap()
        .args(args)
        .env_remove("RUST_LOG")
        .write_stdin(stdin)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.code(), text(&output.stdout), text(&output.stderr))
}

#[test]
fn validate_reads_a_dash_from_standard_input() {
    let csv = std::fs::read(corpus("powershell-type-line.csv")).unwrap();
    let (code, stdout, _) = with_stdin(&["validate", "-"], &csv);
    assert_eq!(code, Some(1), "one bad row: {stdout}");
    assert!(stdout.contains("-: line 1 is PowerShell's #TYPE line"), "{stdout}");
    assert!(
        stdout.contains("-:4: 'not an address' is not an address") && stdout.contains("2 valid targets"),
        "{stdout}"
    );
}

/// A run keeps what came through standard input as input.csv, and a resume reads that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_from_standard_input_keeps_it_for_the_resume() {
    use remediate_sim::{Population, SimConfig};
    let identities = std::sync::Arc::new(BOTH.map(String::from).to_vec());
    let sim =
        crate::support::start(SimConfig { population: Population::Identities(identities), ..SimConfig::default() })
            .await;
    let dir = crate::support::scratch();
    let csv = std::fs::read(corpus("powershell-type-line.csv")).unwrap();
    let report = dir.path().join("report");
    let report_arg = report.display().to_string();
    let connection = crate::support::connection_args(&sim, dir.path());
    let mut run: Vec<&str> = vec!["apply", "-", "--set", "per-user-mfa=disabled", "--yes", "--report-dir", &report_arg];
    run.extend(connection.iter().map(String::as_str));
    let (code, _, stderr) = tokio::task::block_in_place(|| with_stdin(&run, &csv));
    assert_eq!(code, Some(0), "the row that is not an address is rejected, the rest done: {stderr}");
    assert_eq!(std::fs::read(report.join("input.csv")).unwrap(), csv);
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(report.join("run.json")).unwrap()).unwrap();
    let kept = std::fs::canonicalize(report.join("input.csv")).unwrap();
    assert_eq!(record["input"], kept.display().to_string(), "{record}");
    let mut resume = vec!["apply", "--resume", &report_arg, "--yes"];
    resume.extend(connection.iter().map(String::as_str));
    let (code, _, stderr) = tokio::task::block_in_place(|| with_stdin(&resume, b""));
    assert_eq!(code, Some(0), "the same input, found again: {stderr}");
    let rows = crate::support::results(&report);
    let done: Vec<_> = rows.iter().filter(|r| r["setting"] == "per-user-mfa").map(|r| r["line"].as_str()).collect();
    assert_eq!(done, ["3", "5"], "the lines of the file, the #TYPE line counted");
}
