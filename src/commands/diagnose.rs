//! `diagnose`: can each mailbox send with SMTP AUTH, and if not, which layer stops it? Reads the
//! tenant's layers once, each mailbox's own (from the listings for a large set), and the sign-in
//! log for evidence; writes the report; changes nothing.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{connection, default_report_dir_named};
use crate::cli::{DiagnoseArgs, Switch};
use crate::cloud::CloudClient;
use crate::diagnosis::population::{self, Missing, Subject};
use crate::diagnosis::{self, ClientKind, Diagnosis, Layer, State, TenantFacts, Verdict};
use crate::error::{Error, FinalOutcome, Result};
use crate::report::diagnosis::{self as report_diagnosis, Counts, Diagnosed};
use crate::report::{self, OutputFormat};
use crate::run::tuning::Tuning;
use crate::sign_ins::{self, Usage};
use crate::targets::{self, Entry};

pub(crate) async fn diagnose(args: DiagnoseArgs, quiet: bool) -> Result<u8> {
    let targets = match (&args.input, args.all_mailboxes) {
        (Some(path), _) => Some(read_targets(path, args.column.as_deref())?),
        (None, true) => None,
        (None, false) => return Err(Error::Usage("give the mailbox CSV to diagnose, or --all-mailboxes".into())),
    };
    let session = &args.session;
    let tuning = Tuning::from(&session.tuning);
    let directory = session.report_dir.clone().unwrap_or_else(|| default_report_dir_named("diagnose"));
    report::check_directory(&directory)?;
    let client = connection::connect(&session.connection, &tuning)?.client;
    client.check_credentials().await?;
    let started_at = crate::support::timestamp::now_rfc3339();
    let told = args.basic_auth_smtp.map(|switch| switch == Switch::On);
    let basic = diagnosis::read::basic_smtp(told, time::OffsetDateTime::now_utc().date());
    let concurrency = tuning.concurrency as usize;
    let (tenant, subjects, usage) = tokio::join!(
        diagnosis::read_tenant(&client, basic),
        subjects_of(&client, targets, concurrency),
        evidence(&client, args.sign_in_days),
    );
    let mut subjects = subjects?;
    population::read_mfa(&client, &mut subjects, concurrency).await;
    let mut rows: Vec<Diagnosed> = subjects.into_iter().map(|s| diagnosed(s, &tenant, usage.as_ref())).collect();
    rows.sort_by_key(|row| row.line);
    let counts = Counts::of(&rows);
    let outcome = final_outcome(&counts, args.client);
    report::ensure_directory(&directory)?;
    report_diagnosis::write_files(&directory, &rows, args.client)?;
    let record = json!({
        "schema_version": 1,
        "tool_version": env!("CARGO_PKG_VERSION"),
        "command": "diagnose",
        "tenant_id": client.tenant_id,
        "client": args.client.name(),
        "started_at": started_at,
        "finished_at": crate::support::timestamp::now_rfc3339(),
        "counts": counts,
        "sign_in_evidence": usage.as_ref().map(|u| json!({"since": u.since, "days": u.days, "users": u.users.len()})),
        "requests_total": client.requests.total(),
        "exit_code": outcome.exit_code(),
    });
    let text = serde_json::to_string_pretty(&record).unwrap_or_default() + "\n";
    crate::support::files::write_atomic(&directory, "diagnosis.json", text.as_bytes())
        .map_err(Error::io(format!("cannot write {}", directory.join("diagnosis.json").display())))?;
    let section = report_diagnosis::html_section(&rows, &counts, args.client, &directory);
    report::html::write_page(
        &directory,
        "remediate diagnose — can these devices send?",
        &format!("tenant {}", client.tenant_id),
        &section,
    )?;
    if session.output == OutputFormat::Json {
        let mut line = record;
        line["report_dir"] = directory.display().to_string().into();
        out!("{line}");
    } else if !quiet {
        crate::logging::stdout(&report_diagnosis::story(&rows, &counts, args.client, &directory));
    }
    Ok(outcome.exit_code())
}

/// Done when every mailbox can send with the client asked, drift when some cannot, unfinished
/// when some verdict is unknown (a layer could not be read, or depends on what the tool cannot
/// see).
fn final_outcome(counts: &Counts, client: ClientKind) -> FinalOutcome {
    if counts.count(client, Verdict::Unknown) > 0 {
        FinalOutcome::Unfinished
    } else if counts.count(client, Verdict::Blocked) > 0 {
        FinalOutcome::Drift
    } else {
        FinalOutcome::Done
    }
}

fn read_targets(path: &Path, column: Option<&str>) -> Result<Vec<targets::Target>> {
    let mut problems = 0;
    let mut found = Vec::new();
    for entry in targets::open_to_list(path, column)? {
        match entry {
            Entry::Target(target) => found.push(target),
            Entry::Problem(_) => problems += 1,
        }
    }
    if problems > 0 {
        tracing::warn!("{problems} rows of {} name no mailbox; `remediate validate` lists them", path.display());
    }
    Ok(found)
}

async fn subjects_of(
    client: &CloudClient,
    targets: Option<Vec<targets::Target>>,
    concurrency: usize,
) -> Result<Vec<Subject>> {
    let listed = match targets {
        Some(targets) => population::of_targets(client, targets, concurrency).await,
        None => population::every_mailbox(client).await,
    };
    listed.map_err(|e| Error::Fatal(format!("cannot list the mailboxes of tenant {}: {e}", client.tenant_id)))
}

/// The SMTP AUTH sign-ins of the last `days`, when the log can be read; without them the
/// diagnosis is the same, with less evidence.
async fn evidence(client: &CloudClient, days: u64) -> Option<Usage> {
    if days == 0 {
        return None;
    }
    match sign_ins::read(client, Duration::from_secs(days * 86_400)).await {
        Ok(usage) => Some(usage),
        Err(error) => {
            tracing::warn!("no sign-in evidence: {error}");
            None
        }
    }
}

fn diagnosed(subject: Subject, tenant: &TenantFacts, usage: Option<&Usage>) -> Diagnosed {
    let Subject { line, identity, facts } = subject;
    let (user_id, diagnosis) = match facts {
        Ok(facts) => (facts.user_id.clone(), diagnosis::evaluate(tenant, &facts)),
        Err(missing) => (String::new(), not_a_mailbox(missing)),
    };
    let members = tenant.memberships.as_ref().ok();
    let exclusion_group =
        diagnosis.exclusion_groups.first().map(|id| members.map_or(id.as_str(), |m| m.group_name(id)).to_string());
    let sign_in = usage.and_then(|usage| usage.seen(&user_id)).cloned();
    Diagnosed { line, identity, user_id, diagnosis, exclusion_group, sign_in }
}

/// The diagnosis of a row that names no mailbox, or whose user could not be looked up.
fn not_a_mailbox(missing: Missing) -> Diagnosis {
    let (state, evidence) = match missing {
        Missing::NoMailbox(why) => (State::Blocks, why),
        Missing::Unread(why) => (State::Unknown(why.clone()), why),
    };
    let finding = diagnosis::Finding { layer: Layer::Mailbox, basic: state.clone(), oauth: state, evidence };
    Diagnosis { findings: vec![finding], exclusion_groups: Vec::new() }
}
