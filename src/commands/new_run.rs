//! `plan`, `audit` and a new `apply`: from the arguments to a job, reading the input once.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use super::session::{self, Decisions, Job, Lane};
use super::{
    absolute, confirm_weakening, connection, default_report_dir, desired_state, listing, opt_in, sharded,
    sign_in_targeting, simulate, tell_notices,
};
use crate::cli::{PlanArgs, RunArgs};
use crate::error::{Error, Result};
use crate::report;
use crate::run::record::{self as run_record, ExclusionRecord, RunKind, RunRecord, SmtpLayers};
use crate::run::scope::Exclusions;
use crate::run::stop::Stop;
use crate::run::tuning::Tuning;
use crate::settings::mailbox_index::{self, MailboxIndex};
use crate::settings::profile;
use crate::settings::{DesiredState, Scope};
use crate::targets::{self, Entry, Input};

/// `plan`.
pub(crate) async fn plan(args: PlanArgs, quiet: bool) -> Result<u8> {
    run(args.run, RunKind::Plan, false, args.detailed_exitcode, quiet, None).await
}

/// `audit`: a plan whose exit code says whether the tenant drifted.
pub(crate) async fn audit(args: RunArgs, quiet: bool) -> Result<u8> {
    run(args, RunKind::Audit, false, true, quiet, None).await
}

/// Exclusions from `--exclude` and the profile, and how the run record keeps them.
fn exclusions(args: &RunArgs) -> Result<(Exclusions, ExclusionRecord)> {
    let mut exclusions = match &args.exclude {
        Some(path) => Exclusions::load(path)?,
        None => Exclusions::default(),
    };
    if let Some(profile) = &args.profile {
        let source = format!("profile {profile}");
        let from_profile = Exclusions::from_entries(&profile::load(profile)?.exclude, &source)
            .map_err(|reason| Error::Usage(format!("--profile {profile}: exclude: {reason}")))?;
        exclusions.merge(from_profile);
    }
    let record = ExclusionRecord {
        file: args.exclude.as_deref().map(absolute),
        file_sha256: args.exclude.as_deref().map(run_record::fingerprint).transpose()?,
        entries: exclusions.entries(),
    };
    Ok((exclusions, record))
}

/// `--strict`: every bad row, listed, stops the run before it starts.
fn refuse_bad_rows(input: &Input) -> Result<()> {
    let problems: Vec<_> = input.entries()?.filter_map(Entry::into_problem).collect();
    if problems.is_empty() {
        return Ok(());
    }
    let path = input.path.display();
    let shown: Vec<String> = problems.iter().take(20).map(|p| format!("  {path}:{}: {}", p.line, p.message)).collect();
    let more = if problems.len() > 20 {
        format!("\n  … and {} more (see `remediate validate`)", problems.len() - 20)
    } else {
        String::new()
    };
    Err(Error::Usage(format!(
        "--strict: {} bad rows in {path}; nothing was read or changed:\n{}{more}",
        problems.len(),
        shown.join("\n")
    )))
}

/// `--tenants FILE`: one tenant id or domain a line.
fn tenants_file(path: &Path) -> Result<Vec<String>> {
    let text = crate::support::files::read_text_capped(path, crate::support::files::cap::SMALL)
        .map_err(|e| Error::Usage(format!("--tenants {}: cannot read it: {e}", path.display())))?;
    let tenants: Vec<String> = text
        .lines()
        .map(|l| l.split(" #").next().unwrap_or_default().trim().to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    if tenants.is_empty() {
        return Err(Error::Usage(format!(
            "--tenants {}: no tenant in it (one tenant id or domain a line)",
            path.display()
        )));
    }
    Ok(tenants)
}

/// The tenants of a run: `--tenants FILE`, else the CSV's `tenant` column, else the one tenant of
/// the connection arguments (`None`).
fn tenants_of(args: &RunArgs, input: Option<&Input>) -> Result<Option<Vec<String>>> {
    if let Some(path) = &args.tenants {
        return tenants_file(path).map(Some);
    }
    let Some(named) = input.and_then(|input| input.tenants.as_ref()) else { return Ok(None) };
    let mut tenants: BTreeSet<String> = named.clone();
    if tenants.remove("") {
        let default = args.session.connection.tenant_id.clone().ok_or_else(|| {
            Error::Usage(format!(
                "{}: some rows have no tenant; fill the tenant column, or name a default with --tenant-id",
                input.map(|i| i.path.display().to_string()).unwrap_or_default()
            ))
        })?;
        tenants.insert(default);
    }
    Ok(Some(tenants.into_iter().collect()))
}

/// The input, read once: a pipe can be read once only, so it is kept as `input.csv` first.
fn read_input(args: &RunArgs, directory: &Path) -> Result<Option<Input>> {
    let Some(path) = &args.input else { return Ok(None) };
    if targets::is_stdin(path) || (path.exists() && !targets::is_regular_file(path)) {
        report::ensure_directory(directory)?;
    }
    let settled = targets::settle_input(path, &directory.join("input.csv"))?;
    let input = Input::read(&settled, args.column.as_deref())?;
    if args.strict {
        refuse_bad_rows(&input)?;
    }
    Ok(Some(input))
}

async fn connect_lanes(
    args: &RunArgs,
    tenants: Option<Vec<String>>,
    input: Option<&Input>,
    tuning: &Tuning,
) -> Result<Vec<(Option<String>, connection::Connection)>> {
    let session = &args.session;
    let mut connections = Vec::new();
    for tenant in tenants.map_or(vec![None], |list| list.into_iter().map(Some).collect()) {
        let connection = match (&tenant, input) {
            (Some(tenant), _) => connection::connect_to(&session.connection, tuning, tenant.clone())?,
            (None, _) if !args.simulate => connection::connect(&session.connection, tuning)?,
            (None, Some(input)) => {
                let identities = input.entries()?.filter_map(Entry::into_target).map(|t| t.identity).collect();
                simulate::simulate(identities, tuning).await?
            }
            (None, None) => simulate::simulate_generated(tuning).await?,
        };
        connections.push((tenant, connection));
    }
    Ok(connections)
}

/// One lane per tenant however the CSV spells it (its id in any letter case, its initial domain,
/// a verified domain): two lanes for one tenant would lock each other out. Each name is looked
/// up in the identity platform's metadata; the first name of each tenant keeps its lane, and the
/// map says which name every other one stands for (all lower case).
async fn one_lane_per_tenant(
    connections: Vec<(Option<String>, connection::Connection)>,
) -> Result<(Vec<(Option<String>, connection::Connection)>, std::sync::Arc<HashMap<String, String>>)> {
    let mut kept: Vec<(Option<String>, connection::Connection)> = Vec::new();
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut aliases = HashMap::new();
    for (tenant, connection) in connections {
        let Some(name) = tenant.clone().filter(|_| connection.simulated.is_none()) else {
            kept.push((tenant, connection));
            continue;
        };
        let id = connection.client.tenant_guid().await?.to_lowercase();
        match ids.get(&id) {
            Some(first) => {
                aliases.insert(name.to_lowercase(), first.clone());
            }
            None => {
                ids.insert(id, name.to_lowercase());
                kept.push((tenant, connection));
            }
        }
    }
    Ok((kept, std::sync::Arc::new(aliases)))
}

/// A new run of `kind`: checks everything it can before signing in, then runs the job.
pub(super) async fn run(
    args: RunArgs,
    kind: RunKind,
    yes: bool,
    detailed_exitcode: bool,
    quiet: bool,
    recording: Option<super::exceptions::Recording>,
) -> Result<u8> {
    let (desired, profile_name) = desired_state(args.profile.as_deref(), &args.set)?;
    let (exclusions, exclusion_record) = exclusions(&args)?;
    let held = super::exceptions::held(&args)?;
    let session = &args.session;
    let tuning = Tuning::from(&session.tuning);
    if args.input.is_none() && !args.all_mailboxes {
        return Err(Error::Usage("give the mailbox CSV to work on, or --all-mailboxes (or --resume DIR)".into()));
    }
    let baseline = match &args.baseline {
        Some(path) => crate::report::baseline::choose(path, session.report_dir.as_deref().unwrap_or(Path::new("")))?,
        None => None,
    };
    let stop = Stop::new(session.grace);
    stop.watch_signals();
    let directory = session.report_dir.clone().unwrap_or_else(|| default_report_dir(kind));
    report::check_directory(&directory)?;
    let input = read_input(&args, &directory)?;
    let tenants = tenants_of(&args, input.as_ref())?;
    if tenants.is_some() && args.simulate {
        return Err(Error::Usage("--simulate serves one tenant; leave out the tenant column or --tenants".into()));
    }
    tell_notices(&desired, kind.mode());
    confirm_weakening(&desired, kind.mode(), yes)?;
    let connections = connect_lanes(&args, tenants, input.as_ref(), &tuning).await?;
    let (connections, aliases) = one_lane_per_tenant(connections).await?;
    // Locked before anything is read (the sign-in log and the listing can take minutes): a run
    // that will be refused as busy is refused at once.
    let lanes_of: Vec<&connection::Connection> = connections.iter().map(|(_, c)| c).collect();
    let state_dir = session.state_dir.clone().unwrap_or_else(crate::run::lock::default_state_dir);
    let locked = session::lock_tenants(&lanes_of, &stop, &state_dir, kind, args.shard).await?;
    let smtp_layers = opt_in::checked(&args, &connections).await?;
    if kind == RunKind::Apply {
        confirm_mfa_on_admins(&desired, &connections, input.as_ref(), yes).await?;
    }
    let mut desired = desired;
    opt_in::add_steps(&mut desired, &smtp_layers);
    let chosen = choose_by_sign_ins(&args, &connections, &directory).await?;
    let (input, indexes) = match input {
        Some(input) => (input, connections.iter().map(|_| None).collect()),
        None => list_the_tenants(&connections, &directory, &stop, &desired).await?,
    };
    let lanes = split_into_lanes(&args, connections, indexes, &input, &aliases)?;
    let layers = opt_in::layers(&desired, &smtp_layers);
    let record = new_record(&args, kind, &tuning, &input, exclusion_record, chosen.as_ref(), smtp_layers)?;
    let (sign_in_scope, smtp_auth_usage) = chosen.map_or((None, None), |chosen| (Some(chosen.scope), chosen.usage));
    let decided = Decisions {
        layers,
        exceptions: std::sync::Arc::new(held),
        record_exceptions: recording,
        sign_in_scope,
        smtp_auth_usage,
        profile: profile_name,
        total: Some(input.rows_in_shard(args.shard)?),
        input: Some(input.path),
        lanes,
        detailed_exitcode,
        record: Some(record),
        exclusions: std::sync::Arc::new(exclusions),
        baseline,
        locked: Some(locked),
        keep: args.keep.map(|keep| keep as usize),
        shard: args.shard,
        max_not_found: args.max_not_found,
        ..Decisions::default()
    };
    session::execute(Job::new(kind, desired, directory, stop, tuning, session, decided), quiet).await
}

/// An apply asks before it turns MFA off for an administrator among the CSV's targets (or the
/// tenant's, without a CSV).
async fn confirm_mfa_on_admins(
    desired: &DesiredState,
    connections: &[(Option<String>, connection::Connection)],
    input: Option<&Input>,
    yes: bool,
) -> Result<()> {
    let identities = match input {
        Some(input) => {
            Some(input.entries()?.filter_map(Entry::into_target).map(|t| t.identity.to_lowercase()).collect())
        }
        None => None,
    };
    opt_in::confirm_mfa_on_admins(desired, connections, identities.as_ref(), yes).await
}

/// The targets the SMTP AUTH sign-in log picks (`--only-smtp-auth-seen`, `--spare-smtp-auth-seen`),
/// when asked: one tenant's log only.
async fn choose_by_sign_ins(
    args: &RunArgs,
    connections: &[(Option<String>, connection::Connection)],
    directory: &Path,
) -> Result<Option<sign_in_targeting::Chosen>> {
    match (sign_in_targeting::asked(args), connections) {
        (None, _) => Ok(None),
        (Some(asked), [(_, connection)]) => {
            Ok(Some(sign_in_targeting::choose(asked, &connection.client, directory).await?))
        }
        (Some(_), _) => Err(Error::Usage(
            "--only-smtp-auth-seen and --spare-smtp-auth-seen read one tenant's sign-in log; run each tenant on its own"
                .into(),
        )),
    }
}

/// `--all-mailboxes`: every tenant's mailboxes (and users, for per-user MFA) listed into the
/// report directory and read as the run's input, with each tenant's index of the client access
/// settings the run wants.
async fn list_the_tenants(
    connections: &[(Option<String>, connection::Connection)],
    directory: &Path,
    stop: &Stop,
    desired: &DesiredState,
) -> Result<(Input, Vec<Option<MailboxIndex>>)> {
    // A directory user's setting belongs to member users without a mailbox too.
    let members_too = desired.iter().any(|(setting, _)| setting.spec().scope == Scope::User);
    let listed = mailbox_index::listable(desired.iter().map(|(setting, _)| setting));
    let (listing, indexes) = listing::list_mailboxes(connections, directory, stop, members_too, &listed).await?;
    Ok((Input::read(&listing, None)?, indexes))
}

/// One lane per tenant, each with the input's rows for that tenant (by name or alias) and this
/// run's shard of them.
fn split_into_lanes(
    args: &RunArgs,
    connections: Vec<(Option<String>, connection::Connection)>,
    indexes: Vec<Option<MailboxIndex>>,
    input: &Input,
    aliases: &std::sync::Arc<HashMap<String, String>>,
) -> Result<Vec<Lane>> {
    let mut lanes = Vec::new();
    let several = connections.len() > 1;
    let default_tenant = args.session.connection.tenant_id.clone().unwrap_or_default().to_lowercase();
    for (position, ((tenant, connection), mailbox_index)) in connections.into_iter().zip(indexes).enumerate() {
        let mut entries: Box<dyn Iterator<Item = Entry> + Send> = Box::new(input.entries()?);
        if let (Some(tenant), true) = (&tenant, several || args.tenants.is_none()) {
            // Each tenant's lane takes its own rows; rejected rows are reported once.
            let (mine, default, aliases) = (tenant.to_lowercase(), default_tenant.clone(), aliases.clone());
            entries = Box::new(entries.filter(move |entry| match entry {
                Entry::Target(t) => {
                    let named = t.tenant.as_deref().map_or(default.clone(), str::to_lowercase);
                    aliases.get(&named).unwrap_or(&named) == &mine
                }
                Entry::Problem(_) => position == 0,
            }));
        }
        lanes.push(Lane { connection, entries: sharded(entries, args.shard), mailbox_index });
    }
    Ok(lanes)
}

/// What a resume needs to carry on this run as it was asked (run.json).
fn new_record(
    args: &RunArgs,
    kind: RunKind,
    tuning: &Tuning,
    input: &Input,
    exclusions: ExclusionRecord,
    chosen: Option<&sign_in_targeting::Chosen>,
    smtp_layers: SmtpLayers,
) -> Result<RunRecord> {
    let mut record = RunRecord::new(kind, tuning.clone());
    record.connection = run_record::ConnectionRecord::of(&args.session);
    record.input = Some(absolute(&input.path));
    record.input_sha256 = Some(input.sha256.clone());
    record.column = input.column.clone();
    record.profile = args.profile.clone();
    record.sets = args.set.clone();
    record.exclusions = Some(exclusions);
    record.shard = args.shard;
    record.all_mailboxes = args.all_mailboxes;
    record.smtp_auth_targeting = chosen.map(|c| c.record.clone());
    record.smtp_layers = smtp_layers;
    record.exceptions = args.exceptions.as_deref().map(run_record::FileRecord::of).transpose()?;
    let profile_file = args.profile.as_deref().filter(|p| profile::is_file(p));
    record.profile_file = profile_file.map(|p| run_record::FileRecord::of(Path::new(p))).transpose()?;
    Ok(record)
}
