//! What a package installs beside the binary, and the help it is made from: completions and
//! manual pages from the command line's own definition.

use assert_cmd::Command;

use crate::support::scratch;

fn remediate(args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("remediate").unwrap().args(args).output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (output.status.code().unwrap_or(-1), text(output.stdout), text(output.stderr))
}

#[test]
fn completions_cover_the_commands_and_their_flags() {
    let (code, bash, _) = remediate(&["completions", "bash"]);
    assert_eq!(code, 0);
    for word in ["_remediate()", "apply", "rollback", "--profile", "--retry-failed"] {
        assert!(bash.contains(word), "bash completion lacks {word}");
    }
    let (code, zsh, _) = remediate(&["completions", "zsh"]);
    assert_eq!(code, 0);
    assert!(zsh.starts_with("#compdef remediate"), "{}", &zsh[..zsh.len().min(200)]);
    let (code, _, stderr) = remediate(&["completions", "tcsh"]);
    assert_eq!(code, 2, "an unknown shell is a usage error");
    assert!(stderr.contains("bash") && stderr.contains("zsh"), "the shells on offer: {stderr}");
}

#[test]
fn the_manual_has_a_page_for_the_tool_and_each_command() {
    let (code, page, _) = remediate(&["man"]);
    assert_eq!(code, 0);
    assert!(page.starts_with(".ie") || page.contains(".TH remediate 1"), "{}", &page[..page.len().min(300)]);
    assert!(page.contains("apply") && page.contains("rollback"));
    let dir = scratch();
    let (code, _, stderr) = remediate(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    for page in ["remediate.1", "remediate-apply.1", "remediate-audit.1", "remediate-rollback.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page} is a manual page");
    }
    let apply = std::fs::read_to_string(dir.path().join("remediate-apply.1")).unwrap();
    assert!(apply.contains("\\-\\-retry\\-failed") || apply.contains("--retry-failed"), "apply's page has its flags");
}

#[test]
fn help_groups_flags_and_offers_only_what_a_command_takes() {
    let (code, apply, _) = remediate(&["apply", "--help"]);
    assert_eq!(code, 0);
    let headings = ["Input:", "Output:", "Connection:", "Tuning:", "Safety:", "Global options:"];
    for heading in headings {
        assert_eq!(apply.matches(heading).count(), 1, "{heading} once in apply --help");
    }
    for flag in ["--verbose", "--quiet", "--log-format"] {
        let after_global = apply.split("Global options:").nth(1).unwrap();
        assert!(after_global.contains(flag), "{flag} under Global options");
        assert_eq!(apply.matches(flag).count(), 1, "{flag} listed once");
    }
    let (_, rollback, _) = remediate(&["rollback", "--help"]);
    assert!(!rollback.contains("--simulate"), "rollback refuses a simulated tenant, so it does not offer one");
    let (code, _, stderr) = remediate(&["rollback", "x", "--simulate"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--simulate"), "{stderr}");
}
