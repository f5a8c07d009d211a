//! A mix of trouble, drawn from its seed: the tenant's latency and faults, the strikes that befall
//! the sessions, the journal's damage, and the inputs (aliases, an exclusion file, a shard, a
//! profile file) the run is given.

use std::path::{Path, PathBuf};
use std::time::Duration;

use remediate_sim::SimConfig;
use serde_json::Value;

use super::MAILBOXES;
use crate::support::{fix_args, roomy};

/// One seeded mix of trouble.
#[derive(Debug, Clone)]
pub(super) struct Mix {
    pub(super) seed: u64,
    latency_ms: u64,
    grace_ms: u64,
    fault_rate: f64,
    /// For each disturbed session: kill it (SIGKILL) or interrupt it (SIGINT) after this many
    /// more writes.
    pub(super) strikes: Vec<(Strike, u64)>,
    pub(super) damage_journal: bool,
    aliases: usize,
    excluded_every: Option<usize>,
    pub(super) shard: Option<(u32, u32)>,
    /// Some writes lose their connection at once and land 300 ms later (the client's request
    /// timeout is 1 s).
    late_landing: bool,
    /// The desired state comes from a profile file, which is edited after the first session that
    /// dies: the resume must refuse it until it is put back.
    pub(super) profile_file: bool,
    /// After the fix: per-user MFA enabled, enforced, and that rolled back.
    pub(super) enforce_then_rollback: bool,
}

/// What befalls a session after some number of further writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Strike {
    /// SIGKILL.
    Kill,
    /// SIGINT.
    Interrupt,
    /// The journal is cut short or replaced while the run goes on.
    DamageJournal,
    /// A run of another shard count starts on the same tenant while this one holds it.
    RivalShard,
}

impl Mix {
    pub(super) fn draw(seed: u64) -> Mix {
        let mut rng = fastrand::Rng::with_seed(seed);
        let latency_ms = [1, 5, 20, 100][rng.usize(..4)];
        let kinds = [Strike::Kill, Strike::Interrupt, Strike::DamageJournal, Strike::RivalShard];
        let strikes = (0..rng.usize(0..3)).map(|_| (kinds[rng.usize(..4)], rng.u64(1..300))).collect();
        Mix {
            seed,
            latency_ms,
            // Above the latency or below it: in-flight work finishes, or is abandoned unfinished.
            grace_ms: if rng.bool() { latency_ms / 2 + 1 } else { 5_000 },
            fault_rate: [0.0, 0.05, 0.2, 0.5][rng.usize(..4)],
            strikes,
            damage_journal: rng.bool(),
            aliases: [0, 25][rng.usize(..2)],
            excluded_every: [None, Some(17)][rng.usize(..2)],
            shard: [None, Some((0, 2)), Some((2, 3))][rng.usize(..3)],
            late_landing: rng.bool(),
            profile_file: rng.bool(),
            enforce_then_rollback: rng.usize(..3) == 0,
        }
    }

    pub(super) fn config(&self) -> SimConfig {
        SimConfig {
            fault_rate: self.fault_rate,
            slow_reply: Duration::from_millis(1500),
            late_landing: self.late_landing.then_some(Duration::from_millis(300)),
            seed: 7,
            ..roomy(MAILBOXES, self.latency_ms)
        }
    }
}

/// The CSV of a mix (UPNs, then the aliases of some users) and its exclusion file.
pub(super) fn inputs(mix: &Mix, users: &Value, dir: &Path) -> (PathBuf, Option<PathBuf>) {
    let users = users["users"].as_array().unwrap();
    // Mailboxes whose sign-in is allowed: the fix ends done only where the device can send.
    let users: Vec<&Value> = users.iter().filter(|u| u["accountEnabled"] != false).collect();
    let mut rows: Vec<String> = users.iter().map(|u| u["userPrincipalName"].as_str().unwrap().to_string()).collect();
    let aliases = users.iter().filter(|u| u["mail"] != u["userPrincipalName"]).take(mix.aliases);
    rows.extend(aliases.map(|u| u["mail"].as_str().unwrap().to_string()));
    let csv = crate::support::write_csv(dir, "mailboxes.csv", "UserPrincipalName", &rows);
    let exclude = mix.excluded_every.map(|every| {
        let path = dir.join("exclude.txt");
        let excluded: Vec<String> = rows.iter().step_by(every).cloned().collect();
        std::fs::write(&path, format!("# chaos\n{}\n", excluded.join("\n"))).unwrap();
        path
    });
    (csv, exclude)
}

/// The fix as a profile file, the same settings as the built-in `smtp-auth-fix`.
pub(super) const FIX_PROFILE: &str = "description = \"the fix, as a file\"\n[settings]\nsecurity-defaults = \"disabled\"\nsmtp-auth = \"enabled\"\nper-user-mfa = \"disabled\"\n";

pub(super) fn new_run_args(mix: &Mix, csv: &Path, exclude: Option<&Path>, report: &Path) -> Vec<String> {
    let mut args = fix_args(csv, report);
    if mix.profile_file {
        let profile = profile_path(csv);
        std::fs::write(&profile, FIX_PROFILE).unwrap();
        let at = args.iter().position(|a| a == "smtp-auth-fix").unwrap();
        args[at] = profile.display().to_string();
    }
    if let Some(exclude) = exclude {
        args.extend(["--exclude".into(), exclude.display().to_string()]);
    }
    if let Some((k, n)) = mix.shard {
        args.extend(["--shard".into(), format!("{k}/{n}")]);
    }
    if mix.seed % 2 == 1 {
        // Half the mixes change a protocol switch and forwarding too: settings of the two
        // Exchange listings, under the same trouble.
        args.extend(["--set", "pop=disabled", "--set", "forwarding=none"].map(String::from));
    }
    args.extend(["--grace".into(), format!("{}ms", mix.grace_ms), "--request-timeout".into(), "1s".into()]);
    args
}

pub(super) fn profile_path(csv: &Path) -> PathBuf {
    csv.with_file_name("fix.toml")
}
