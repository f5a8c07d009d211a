//! The CSV corpus (tests/corpus): every kind of file an administrator's export produces, each with
//! the targets it must yield and the problems (line and reason) it must report.

use std::path::PathBuf;

use proptest::prelude::*;
use remediate::targets::{self, Entry};

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
