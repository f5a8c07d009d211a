//! `usage`: who signs in with SMTP AUTH, with what result and from where, read once from the Entra
//! sign-in log for the whole window; and whether each mailbox's SMTP AUTH setting lets the device
//! in today. Changes nothing.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;

use super::{connection, default_report_dir_named};
use crate::cli::UsageArgs;
use crate::cloud::CloudClient;
use crate::error::{Error, Result, exit};
use crate::report::usage::{self as usage_report, UsageRow, UsageSummary};
use crate::report::{self, OutputFormat};
use crate::run::tuning::Tuning;
use crate::settings::exceptions::Exceptions;
use crate::settings::{Value, smtp_auth};
use crate::sign_ins::{self, Usage};
use crate::targets::{self, Entry};

/// Rows printed before "… and N more".
const SHOWN: usize = 20;

/// Mailbox settings read at once: the Exchange pacer keeps them inside its budget.
const READS_AT_ONCE: usize = 16;

pub(crate) async fn usage(args: UsageArgs, quiet: bool) -> Result<u8> {
    let wanted = match (&args.input, args.all_mailboxes) {
        (Some(path), _) => Some(identities(path, args.column.as_deref())?),
        (None, true) => None,
        (None, false) => {
            return Err(Error::Usage("give the mailbox CSV to look for, or --all-mailboxes".into()));
        }
    };
    let session = &args.session;
    let tuning = Tuning::from(&session.tuning);
    let directory = session.report_dir.clone().unwrap_or_else(|| default_report_dir_named("usage"));
    report::check_directory(&directory)?;
    let client = connection::connect(&session.connection, &tuning)?.client;
    client.check_credentials().await?;
    let started_at = crate::support::timestamp::now_rfc3339();
    let exceptions = match &args.exceptions {
        Some(path) => Some(Exceptions::load(path, false)?),
        None => None,
    };
    let usage = sign_ins::read(&client, Duration::from_secs(args.days * 86_400)).await?;
    let rows = settings_of(&client, &usage, wanted.as_ref()).await;
    report::ensure_directory(&directory)?;
    usage_report::write_csv(&directory, &rows)?;
    let summary = UsageSummary::of(&usage);
    let unused = exceptions.as_ref().map(|exceptions| unused_exceptions(exceptions, &usage)).unwrap_or_default();
    let record = serde_json::json!({
        "schema_version": 1,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "command": "usage",
        "tenant_id": client.tenant_id,
        "started_at": started_at,
        "smtp_auth_usage": summary,
        "unused_exceptions": unused,
    });
    let text = serde_json::to_string_pretty(&record).unwrap_or_default() + "\n";
    crate::support::files::write_atomic(&directory, "usage.json", text.as_bytes())
        .map_err(Error::io(format!("cannot write {}", directory.join("usage.json").display())))?;
    report::html::write_usage_page(&directory, &client.tenant_id, &summary)?;
    if session.output == OutputFormat::Json {
        let mut line = record;
        line["report_dir"] = directory.display().to_string().into();
        out!("{line}");
    } else if !quiet {
        crate::logging::stdout(&story(&summary, &rows, &directory));
    }
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().filter_map(|e| e["identity"].as_str()).take(SHOWN).collect();
        crate::logging::say(
            crate::logging::Loudness::Warning,
            "warning",
            &format!(
                "{} SMTP AUTH exceptions were not used in the last {} days (no SMTP AUTH sign-in): {}{}; ask their owners whether they can go",
                unused.len(),
                args.days,
                names.join(", "),
                if unused.len() > SHOWN { ", …" } else { "" }
            ),
        );
    }
    Ok(exit::SUCCESS)
}

/// The SMTP AUTH exceptions nobody signed in with in the window, as usage.json lists them.
fn unused_exceptions(exceptions: &Exceptions, usage: &Usage) -> Vec<serde_json::Value> {
    let signed_in: HashSet<String> = usage.users.values().map(|user| user.upn.to_lowercase()).collect();
    let today = time::OffsetDateTime::now_utc().date();
    let unused = exceptions.unused_smtp_auth(today, |identity| signed_in.contains(&identity.to_lowercase()));
    unused
        .into_iter()
        .map(|e| serde_json::json!({"identity": e.identity, "owner": e.owner, "reason": e.reason, "expires": e.expires.to_string()}))
        .collect()
}

/// The identities of the CSV, lower case (matched against the log's UPNs).
fn identities(path: &Path, column: Option<&str>) -> Result<HashSet<String>> {
    let reader = targets::open_to_list(path, column)?;
    Ok(reader.filter_map(Entry::into_target).map(|target| target.identity.to_lowercase()).collect())
}

/// Each user of the log with the mailbox's SMTP AUTH setting (one read each: the requests grow
/// with the users seen, not the mailboxes) and the organisation's, for those that inherit it.
async fn settings_of(client: &CloudClient, usage: &Usage, wanted: Option<&HashSet<String>>) -> Vec<UsageRow> {
    let users: Vec<_> = usage.users.values().cloned().collect();
    let mut rows: Vec<UsageRow> = futures_util::stream::iter(users)
        .map(|user| async move {
            let smtp_auth = smtp_auth::read(client, &user.upn).await.ok().and_then(|reading| reading.value);
            let in_input = wanted.is_none_or(|wanted| wanted.contains(&user.upn.to_lowercase()));
            UsageRow { usage: user, smtp_auth, would_refuse: None, in_input }
        })
        .buffer_unordered(READS_AT_ONCE)
        .collect()
        .await;
    let organisation = if rows.iter().any(|row| row.smtp_auth == Some(Value::Inherit)) {
        smtp_auth::organisation_disabled(client).await.ok()
    } else {
        None
    };
    for row in &mut rows {
        row.would_refuse = match row.smtp_auth {
            Some(Value::Disabled) => Some(true),
            Some(Value::Enabled) => Some(false),
            Some(Value::Inherit) => organisation,
            _ => None,
        };
    }
    let unknown = rows.iter().filter(|row| row.would_refuse.is_none()).count();
    if unknown > 0 {
        tracing::warn!(
            "{unknown} users of the log have no SMTP AUTH setting to show (no mailbox, or it could not be read): their smtp_auth and would_refuse are empty in {}",
            usage_report::FILE
        );
    }
    rows
}

/// What the terminal shows: the most active users, then the readiness line.
fn story(summary: &UsageSummary, rows: &[UsageRow], directory: &Path) -> String {
    let mut text = format!(
        "SMTP AUTH sign-ins since {} ({} days): {} mailboxes, {} sign-ins, {} failed; the log took {} requests\n",
        summary.since, summary.days, summary.mailboxes, summary.sign_ins, summary.failures, summary.requests
    );
    let mut sorted: Vec<&UsageRow> = rows.iter().collect();
    sorted.sort_by(|a, b| b.usage.sign_ins.cmp(&a.usage.sign_ins).then(a.usage.upn.cmp(&b.usage.upn)));
    let width = sorted.iter().take(SHOWN).map(|r| r.usage.upn.len()).max().unwrap_or(8).max(8);
    if !sorted.is_empty() {
        text.push_str(&format!(
            "  {:width$}  sign-ins  failed  last seen             last result   smtp-auth  refused now\n",
            "identity"
        ));
    }
    for row in sorted.iter().take(SHOWN) {
        let user = &row.usage;
        let result = if user.last_error_code == 0 { "success".to_string() } else { user.last_error_code.to_string() };
        text.push_str(&format!(
            "  {:width$}  {:>8}  {:>6}  {:20}  {:12}  {:9}  {}\n",
            crate::logging::printable(&user.upn),
            user.sign_ins,
            user.failures,
            crate::logging::printable(user.last_seen.replace('T', " ").trim_end_matches('Z')),
            result,
            row.smtp_auth.map_or("?", |v| v.name()),
            row.would_refuse.map_or("?", |r| if r { "yes" } else { "no" }),
        ));
    }
    if sorted.len() > SHOWN {
        text.push_str(&format!("  … and {} more in {}\n", sorted.len() - SHOWN, usage_report::FILE));
    }
    text.push_str(&summary.readiness());
    text.push_str(&format!("\nreport: {}\n", directory.display()));
    crate::logging::printable_lines(&text)
}
