//! What `diagnose` leaves: `smtp-auth-diagnosis.csv` (a row per mailbox: both verdicts, each
//! layer's state and evidence, the fix), a `blocked-by-<layer>.csv` per blocking layer (the input
//! of that layer's fix command), `diagnosis.json`, the section of `report.html`, and the story on
//! the terminal: the mailboxes grouped by the layer that blocks them, with the fix and the
//! permission it needs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::cells::safe;
use super::html::escape;
use crate::diagnosis::{ClientKind, Diagnosis, Layer, Verdict};
use crate::error::{Error, Result};
use crate::logging::{printable, printable_lines};
use crate::sign_ins::UserUsage;

pub(crate) const FILE: &str = "smtp-auth-diagnosis.csv";

/// One diagnosed mailbox.
pub(crate) struct Diagnosed {
    pub line: u64,
    pub identity: String,
    pub user_id: String,
    pub diagnosis: Diagnosis,
    /// A group the blocking Conditional Access policies already exclude, by its name.
    pub exclusion_group: Option<String>,
    pub sign_in: Option<UserUsage>,
}

/// The `diagnosis.json` counts.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Counts {
    pub mailboxes: u64,
    /// Per client, mailboxes per verdict.
    pub verdicts: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Per client, mailboxes each layer blocks (a mailbox can be blocked by several).
    pub blocked_by: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
    /// Why verdicts are unknown, each reason once.
    pub unknown_because: Vec<String>,
}

impl Counts {
    pub(crate) fn of(rows: &[Diagnosed]) -> Counts {
        let mut counts = Counts { mailboxes: rows.len() as u64, ..Counts::default() };
        for row in rows {
            for client in ClientKind::BOTH {
                let verdicts = counts.verdicts.entry(client.name()).or_default();
                *verdicts.entry(row.diagnosis.verdict(client).name()).or_default() += 1;
                for layer in row.diagnosis.blocking(client) {
                    *counts.blocked_by.entry(client.name()).or_default().entry(layer.name()).or_default() += 1;
                }
                for (_, why) in row.diagnosis.unknowns(client) {
                    if !counts.unknown_because.iter().any(|known| known == why) && counts.unknown_because.len() < 20 {
                        counts.unknown_because.push(why.to_string());
                    }
                }
            }
        }
        counts
    }

    pub(crate) fn count(&self, client: ClientKind, verdict: Verdict) -> u64 {
        self.verdicts.get(client.name()).and_then(|v| v.get(verdict.name())).copied().unwrap_or(0)
    }
}

/// The file of the mailboxes `layer` blocks for the asked client: the input of its fix.
pub(crate) fn layer_file(layer: Layer) -> String {
    format!("blocked-by-{}.csv", layer.name())
}

/// The way out of `layer` for `row`, with the file and group filled in.
fn fix(layer: Layer, directory: &Path, group: Option<&str>) -> String {
    let (text, _) = layer.fix();
    let file = directory.join(layer_file(layer)).display().to_string();
    let group = group.map_or_else(|| "GROUP".to_string(), |name| format!("'{}'", name.replace('\'', "'\\''")));
    text.replace("FILE", &file).replace("GROUP", &group)
}

fn layer_cell(diagnosis: &Diagnosis, layer: Layer) -> String {
    let Some(finding) = diagnosis.finding(layer) else { return String::new() };
    let state = if finding.basic == finding.oauth {
        finding.basic.name().to_string()
    } else {
        format!("{} (oauth {})", finding.basic.name(), finding.oauth.name())
    };
    format!("{state}: {}", finding.evidence)
}

const HEADER: [&str; 20] = [
    "line",
    "identity",
    "user_id",
    "basic",
    "basic_blocked_by",
    "oauth",
    "oauth_blocked_by",
    "fix",
    "unknown_because",
    "mailbox",
    "smtp_auth_switch",
    "authentication_policy",
    "basic_authentication",
    "security_defaults",
    "conditional_access",
    "per_user_mfa",
    "sign_in_blocked",
    "last_sign_in",
    "last_result",
    "last_policies",
];

fn record(row: &Diagnosed, asked: ClientKind, directory: &Path) -> Vec<String> {
    let diagnosis = &row.diagnosis;
    let names = |client| diagnosis.blocking(client).iter().map(|l| l.name()).collect::<Vec<_>>().join(" ");
    let fixes: Vec<String> =
        diagnosis.blocking(asked).into_iter().map(|l| fix(l, directory, row.exclusion_group.as_deref())).collect();
    let unknown: Vec<&str> = diagnosis.unknowns(asked).into_iter().map(|(_, why)| why).collect();
    let mut record = vec![
        row.line.to_string(),
        safe(&row.identity).into_owned(),
        safe(&row.user_id).into_owned(),
        diagnosis.verdict(ClientKind::Basic).name().into(),
        names(ClientKind::Basic),
        diagnosis.verdict(ClientKind::Oauth).name().into(),
        names(ClientKind::Oauth),
        safe(&fixes.join(" | ")).into_owned(),
        safe(&unknown.join(" | ")).into_owned(),
    ];
    record.extend(Layer::ALL.iter().map(|&layer| safe(&layer_cell(diagnosis, layer)).into_owned()));
    let sign_in = row.sign_in.as_ref();
    record.push(safe(sign_in.map(|s| s.last_seen.as_str()).unwrap_or_default()).into_owned());
    record.push(
        sign_in.map(|s| crate::diagnosis::sign_in_codes::describe(s.last_error_code).0.to_string()).unwrap_or_default(),
    );
    record.push(safe(&sign_in.map(|s| s.last_policies.join("; ")).unwrap_or_default()).into_owned());
    record
}

fn io(directory: &Path, name: &str) -> impl Fn(csv::Error) -> Error {
    let context = format!("cannot write {}", directory.join(name).display());
    move |e| Error::Io { context: context.clone(), source: e.into() }
}

/// Writes the CSV of every mailbox and one file per layer that blocks the asked client.
pub(crate) fn write_files(directory: &Path, rows: &[Diagnosed], asked: ClientKind) -> Result<()> {
    let mut writer = super::create_csv(directory, FILE, &HEADER)?;
    for row in rows {
        writer.write_record(record(row, asked, directory)).map_err(io(directory, FILE))?;
    }
    super::close_csv(directory, FILE, writer)?;
    for layer in Layer::ALL {
        let blocked: Vec<&Diagnosed> = rows.iter().filter(|r| r.diagnosis.blocking(asked).contains(&layer)).collect();
        if blocked.is_empty() {
            continue;
        }
        let name = layer_file(layer);
        let mut writer = super::create_csv(directory, &name, &["UserPrincipalName"])?;
        for row in blocked {
            writer.write_record([safe(&row.identity).as_ref()]).map_err(io(directory, &name))?;
        }
        super::close_csv(directory, &name, writer)?;
    }
    Ok(())
}

/// What the terminal shows: the verdicts, then the mailboxes grouped by the layer that blocks
/// them, each with its reply, the fix and the permission, then why some verdicts are unknown.
pub(crate) fn story(rows: &[Diagnosed], counts: &Counts, asked: ClientKind, directory: &Path) -> String {
    let mut text = String::new();
    for client in ClientKind::BOTH {
        let _ = writeln!(
            text,
            "{} client: {} of {} mailboxes can send, {} blocked, {} unknown{}",
            if client == ClientKind::Basic { "Basic (password)" } else { "OAuth" },
            counts.count(client, Verdict::CanSend),
            counts.mailboxes,
            counts.count(client, Verdict::Blocked),
            counts.count(client, Verdict::Unknown),
            if client == asked { "  (asked)" } else { "" }
        );
    }
    for layer in Layer::ALL {
        let blocked: Vec<&Diagnosed> = rows.iter().filter(|r| r.diagnosis.blocking(asked).contains(&layer)).collect();
        let Some(first) = blocked.first() else { continue };
        let (_, permission) = layer.fix();
        let evidence = first.diagnosis.finding(layer).map(|f| f.evidence.as_str()).unwrap_or_default();
        // The evidence and the identity are the tenant's words: written out, never obeyed.
        let (evidence, identity) = (printable(evidence), printable(&first.identity));
        let _ = writeln!(text, "\nblocked by {layer} ({} mailboxes, e.g. {identity}): {evidence}", blocked.len());
        let _ = writeln!(text, "  the device sees: {}", layer.reply());
        let _ = writeln!(text, "  fix: {}", fix(layer, directory, first.exclusion_group.as_deref()));
        if !permission.is_empty() {
            let _ = writeln!(text, "  needs: {permission}");
        }
        let _ = writeln!(text, "  see: {}", layer.link());
    }
    if !counts.unknown_because.is_empty() {
        let _ = writeln!(text, "\nunknown:");
        for why in &counts.unknown_because {
            let _ = writeln!(text, "  {}", printable(why));
        }
    }
    let _ = writeln!(text, "\nevery mailbox, with each layer's evidence: {}", directory.join(FILE).display());
    printable_lines(&text)
}

/// The `report.html` section: the verdicts, a table of the blocking layers, and the mailboxes
/// (blocked and unknown first).
pub(crate) fn html_section(rows: &[Diagnosed], counts: &Counts, asked: ClientKind, directory: &Path) -> String {
    let mut section = String::from("<h2>Can these devices send with SMTP AUTH?</h2><div class=\"cards\">");
    for client in ClientKind::BOTH {
        for verdict in [Verdict::CanSend, Verdict::Blocked, Verdict::Unknown] {
            let _ = write!(
                section,
                "<div class=\"card\" data-count=\"{0}-{1}\"><b>{2}</b>{0} {1}</div>",
                client.name(),
                verdict.name(),
                counts.count(client, verdict)
            );
        }
    }
    section.push_str("</div><table id=\"layers\"><thead><tr><th>layer</th><th>mailboxes</th><th>the device sees</th><th>fix</th><th>needs</th></tr></thead><tbody>");
    for layer in Layer::ALL {
        let count = counts.blocked_by.get(asked.name()).and_then(|b| b.get(layer.name())).copied().unwrap_or(0);
        if count == 0 {
            continue;
        }
        let group = rows.iter().find_map(|r| r.exclusion_group.as_deref());
        let _ = write!(
            section,
            "<tr data-layer=\"{}\"><td>{}</td><td>{count}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            layer.name(),
            layer.name(),
            escape(layer.reply()),
            escape(&fix(layer, directory, group)),
            escape(layer.fix().1)
        );
    }
    section.push_str("</tbody></table><h2>Mailboxes</h2><table id=\"rows\"><thead><tr><th>line</th><th>identity</th><th>basic</th><th>blocked by</th><th>oauth</th><th>blocked by</th></tr></thead><tbody>");
    let mut shown: Vec<&Diagnosed> = rows.iter().collect();
    shown.sort_by_key(|r| r.diagnosis.verdict(asked) == Verdict::CanSend);
    for row in shown.iter().take(super::html::TABLE_ROWS) {
        let names = |client| row.diagnosis.blocking(client).iter().map(|l| l.name()).collect::<Vec<_>>().join(" ");
        let _ = write!(
            section,
            "<tr data-outcome=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            row.diagnosis.verdict(asked).name(),
            row.line,
            escape(&row.identity),
            row.diagnosis.verdict(ClientKind::Basic).name(),
            names(ClientKind::Basic),
            row.diagnosis.verdict(ClientKind::Oauth).name(),
            names(ClientKind::Oauth)
        );
    }
    let _ = write!(section, "</tbody></table><p class=\"muted\">every mailbox, with each layer's evidence: {FILE}</p>");
    section
}
