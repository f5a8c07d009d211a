//! Which targets a run covers: exclusions (addresses or `*@domain` patterns that are reported but
//! never touched) and shards (a stable share of the targets for one of N machines).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use crate::engine::Reason;
use crate::error::Result;

/// Addresses and domains a run must leave alone.
#[derive(Debug, Default)]
pub(crate) struct Exclusions {
    addresses: HashSet<String>,
    domains: HashSet<String>,
    source: String,
    /// The entries that excluded a target, as [`Exclusions::entries`] writes them: shared by the
    /// run's workers (the exclusions are in an `Arc`), read at the end for those that matched
    /// nothing, most likely a typo.
    matched: Mutex<HashSet<String>>,
}

/// An exclusion file that cannot be used: where, and why.
#[derive(Debug, thiserror::Error)]
#[error("--exclude {place}: {problem}")]
pub struct ExclusionError {
    pub place: String,
    pub problem: String,
}

impl Exclusions {
    /// Reads one address or `*@domain` a line; blank lines and lines starting with `#` are
    /// skipped, and so is a comment after an entry (` # the scanner`: a `#` after a space or a
    /// tab). A `#` inside an entry is part of it: guest UPNs hold `#EXT#`. Each entry is checked
    /// as the CSV's identities are.
    pub(crate) fn load(path: &Path) -> Result<Exclusions> {
        let text = crate::support::files::read_text_capped(path, crate::support::files::cap::MEDIUM).map_err(|e| {
            ExclusionError { place: path.display().to_string(), problem: format!("cannot read it: {e}") }
        })?;
        let mut exclusions = Exclusions { source: path.display().to_string(), ..Exclusions::default() };
        for (number, line) in text.lines().enumerate() {
            let entry = without_comment(line).trim();
            if entry.is_empty() || entry.starts_with('#') {
                continue;
            }
            exclusions
                .add(entry)
                .map_err(|problem| ExclusionError { place: format!("{}:{}", path.display(), number + 1), problem })?;
        }
        Ok(exclusions)
    }

    pub(crate) fn add(&mut self, entry: &str) -> Result<(), String> {
        let fix = "write an address (scanner@contoso.com) or *@domain (*@relay.contoso.com), or start the line with # to keep it as a comment";
        match entry.strip_prefix("*@") {
            Some(domain) if !domain.is_empty() && !domain.contains(['@', '*']) => {
                // The domain is checked as an address's would be.
                crate::targets::check_address(&format!("x@{domain}")).map_err(|_| {
                    format!("'{entry}' is not a *@domain pattern: '{domain}' is not a domain name; {fix}")
                })?;
                self.domains.insert(domain.to_lowercase());
            }
            Some(_) => return Err(format!("'{entry}' is not a *@domain pattern; {fix}")),
            None if entry.contains('@') && !entry.contains('*') => {
                crate::targets::check_address(entry).map_err(|problem| format!("{problem}; {fix}"))?;
                self.addresses.insert(entry.to_lowercase());
            }
            None => return Err(format!("'{entry}' is neither an address nor a *@domain pattern; {fix}")),
        }
        Ok(())
    }

    /// Exclusions from a list of entries (a profile's, or a run record's), said to come from `source`.
    pub(crate) fn from_entries(entries: &[String], source: &str) -> Result<Exclusions, String> {
        let mut exclusions = Exclusions { source: source.to_string(), ..Exclusions::default() };
        for entry in entries {
            exclusions.add(entry)?;
        }
        Ok(exclusions)
    }

    /// Every entry, sorted: addresses, then `*@domain` patterns.
    pub(crate) fn entries(&self) -> Vec<String> {
        let mut addresses: Vec<String> = self.addresses.iter().cloned().collect();
        addresses.sort();
        let mut domains: Vec<String> = self.domains.iter().map(|d| format!("*@{d}")).collect();
        domains.sort();
        addresses.extend(domains);
        addresses
    }

    /// Adds every entry of `other`; its own source is named where `self` has none.
    pub(crate) fn merge(&mut self, other: Exclusions) {
        self.addresses.extend(other.addresses);
        self.domains.extend(other.domains);
        if self.source.is_empty() {
            self.source = other.source;
        } else if !other.source.is_empty() {
            self.source = format!("{} and {}", self.source, other.source);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.domains.is_empty()
    }

    /// Why `address` is excluded, if it is; the entry that excludes it counts as used.
    pub(crate) fn reason(&self, address: &str) -> Option<String> {
        let lower = address.to_lowercase();
        if self.addresses.contains(&lower) {
            let reason = format!("excluded by {}", self.source);
            self.note_match(lower);
            return Some(reason);
        }
        let domain = lower.rsplit_once('@')?.1;
        let reason = self.domains.contains(domain).then(|| format!("excluded by {} (*@{domain})", self.source))?;
        self.note_match(format!("*@{domain}"));
        Some(reason)
    }

    fn note_match(&self, entry: String) {
        self.matched.lock().unwrap_or_else(|e| e.into_inner()).insert(entry);
    }

    /// The entries that excluded no target so far, as [`Exclusions::entries`] writes them.
    pub(crate) fn unused(&self) -> Vec<String> {
        let matched = self.matched.lock().unwrap_or_else(|e| e.into_inner());
        self.entries().into_iter().filter(|entry| !matched.contains(entry)).collect()
    }

    /// Where the entries came from (`--exclude FILE`, a profile).
    pub(crate) fn source(&self) -> &str {
        &self.source
    }
}

/// `line` without a comment after its entry: from the first `#` that follows a space or a tab.
fn without_comment(line: &str) -> &str {
    let cut = line.char_indices().find(|&(i, c)| {
        c == '#' && line[..i].chars().next_back().is_some_and(|before| before == ' ' || before == '\t')
    });
    cut.map_or(line, |(i, _)| &line[..i])
}

/// Targets chosen by the SMTP AUTH sign-ins of a window (see [`crate::sign_ins`]): only the users
/// seen signing in with it (any result), or all but those still signing in successfully. Users are
/// matched by directory object id, whatever address the CSV names them by.
#[derive(Debug)]
pub(crate) struct SignInScope {
    pub mode: SignInMode,
    /// "30d": how the window was given, for the reasons.
    pub window: String,
    /// User id (lower case) → the newest successful sign-in's date, if any.
    users: std::collections::HashMap<String, Option<String>>,
    /// Targets this scope skipped.
    pub affected: std::sync::atomic::AtomicU64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SignInMode {
    /// `--only-smtp-auth-seen`: keep only users with an SMTP AUTH sign-in.
    OnlySeen,
    /// `--spare-smtp-auth-seen`: leave alone users with a successful one.
    SpareSeen,
}

impl SignInMode {
    pub(crate) fn flag(self) -> &'static str {
        match self {
            SignInMode::OnlySeen => "--only-smtp-auth-seen",
            SignInMode::SpareSeen => "--spare-smtp-auth-seen",
        }
    }
}

impl SignInScope {
    /// `users`: user id → the newest successful sign-in (RFC 3339), if any.
    pub(crate) fn new(
        mode: SignInMode,
        window: String,
        users: impl IntoIterator<Item = (String, Option<String>)>,
    ) -> SignInScope {
        let users = users.into_iter().map(|(id, success)| (id.to_lowercase(), success)).collect();
        SignInScope { mode, window, users, affected: Default::default() }
    }

    /// Why the user with this id is left alone (an error code and a reason), if it is.
    pub(crate) fn skip(&self, user_id: &str) -> Option<(Reason, String)> {
        let found = self.users.get(&user_id.to_lowercase());
        match (self.mode, found) {
            (SignInMode::OnlySeen, None) => Some((
                Reason::NoSmtpAuthSignIn,
                format!("no SMTP AUTH sign-in in the last {} ({})", self.window, self.mode.flag()),
            )),
            (SignInMode::SpareSeen, Some(Some(success))) => Some((
                Reason::SmtpAuthInUse,
                format!(
                    "signed in with SMTP AUTH on {} ({} {})",
                    success.get(..10).unwrap_or(success),
                    self.mode.flag(),
                    self.window
                ),
            )),
            _ => None,
        }
    }
}

/// Whether a CSV entry belongs to `shard`: a target by its identity, a rejected row by
/// its line (so each is reported by one shard only).
pub(crate) fn entry_in_shard(entry: &crate::targets::Entry, shard: crate::run::shard::Shard) -> bool {
    match entry {
        crate::targets::Entry::Target(target) => shard.holds(&target.identity),
        crate::targets::Entry::Problem(problem) => shard.holds_line(problem.line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_domain_patterns() {
        let mut exclusions = Exclusions::default();
        exclusions.add("Scanner@Contoso.com").unwrap();
        exclusions.add("*@relay.contoso.com").unwrap();
        assert!(exclusions.reason("scanner@contoso.com").is_some());
        assert!(exclusions.reason("printer@RELAY.contoso.com").is_some());
        assert!(exclusions.reason("adele@contoso.com").is_none());
        assert!(exclusions.add("*@").is_err());
        assert!(exclusions.add("not-an-address").is_err());
    }

    #[test]
    fn a_hash_inside_a_line_is_part_of_a_guest_address() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exclude.txt");
        std::fs::write(
            &path,
            "# service accounts\njo_fabrikam.com#EXT#@contoso.onmicrosoft.com\n  # indented comment\n",
        )
        .unwrap();
        let exclusions = Exclusions::load(&path).unwrap();
        assert_eq!(exclusions.entries(), ["jo_fabrikam.com#ext#@contoso.onmicrosoft.com"]);
        assert!(exclusions.reason("JO_fabrikam.com#EXT#@contoso.onmicrosoft.com").is_some());
    }

    #[test]
    fn a_comment_after_an_entry_follows_a_space_or_a_tab() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exclude.txt");
        let text = "scanner@contoso.com  # the scanner\n*@relay.contoso.com\t# the relay\nx#EXT#@contoso.onmicrosoft.com #guest\n";
        std::fs::write(&path, text).unwrap();
        let exclusions = Exclusions::load(&path).unwrap();
        assert_eq!(
            exclusions.entries(),
            ["scanner@contoso.com", "x#ext#@contoso.onmicrosoft.com", "*@relay.contoso.com"]
        );
    }

    #[test]
    fn a_bad_entry_is_named_with_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exclude.txt");
        for (text, problem) in [
            ("# ok\nscanner@contoso.com\nscan ner@contoso.com\n", "it contains a space"),
            ("\n\nprinter@contoso\n", "'contoso' is not a domain name"),
            ("a\u{200B}@contoso.com\n", "invisible character U+200B"),
            ("*@relay..contoso.com\n", "'relay..contoso.com' is not a domain name"),
            ("*@*.contoso.com\n", "is not a *@domain pattern"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = Exclusions::load(&path).expect_err(text).to_string();
            let line = text.lines().count();
            assert!(error.starts_with(&format!("--exclude {}:{line}: ", path.display())), "{error}");
            assert!(error.contains(problem), "{error}");
            assert!(error.contains("or start the line with # to keep it as a comment"), "what to do: {error}");
        }
    }

    #[test]
    fn entries_that_excluded_nothing_are_the_unused_ones() {
        let entries = ["Scanner@contoso.com", "*@relay.contoso.com", "typo@contoso.com"].map(String::from);
        let exclusions = Exclusions::from_entries(&entries, "exclude.txt").unwrap();
        assert_eq!(exclusions.unused().len(), 3);
        assert!(exclusions.reason("SCANNER@contoso.com").is_some());
        assert!(exclusions.reason("printer@relay.contoso.com").is_some());
        assert!(exclusions.reason("adele@contoso.com").is_none());
        assert_eq!(exclusions.unused(), ["typo@contoso.com"]);
    }
}
