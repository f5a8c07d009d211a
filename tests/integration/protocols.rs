//! The mailbox protocol switches as settings of their own (Set-CASMailbox's `PopEnabled`,
//! `ImapEnabled`, `EwsEnabled`, `ActiveSyncEnabled`, `MAPIEnabled`, `OWAEnabled`), each one file and
//! a line of the catalog. Applied, audited and rolled back on the simulated tenant, and checked
//! there under the service's own names, not by the runner's reading; on a tenant of a few
//! thousand, read in bulk from the `Get-CASMailbox` listing rather than one mailbox at a time. So
//! are auditing and forwarding, from the `Get-Mailbox` listing, and audit bypass, from its own listing
//! joined to that one.

use std::sync::Arc;

use remediate_sim::{Population, SimConfig, Simulator};

use serde_json::Value;

use crate::support::{against, results, roomy, run, scratch, start, state, stats, write_csv};

fn pop_of(sim: &Simulator) -> Vec<bool> {
    state(sim)["users"].as_array().unwrap().iter().map(|u| u["casMailbox"]["PopEnabled"].as_bool().unwrap()).collect()
}

fn command(verb: &str, input: &str, report: &std::path::Path, sim: &Simulator, dir: &std::path::Path) -> Vec<String> {
    let mut args = vec![verb.to_string(), input.to_string()];
    if verb != "rollback" {
        args.extend(["--set".into(), "pop=disabled".into()]);
    }
    against(args, report, sim, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop_is_turned_off_audited_and_rolled_back_exactly() {
    let identities: Vec<String> = (0..4).map(|i| format!("pop{i}@contoso.com")).collect();
    let population = Population::Identities(Arc::new(identities.clone()));
    let sim = start(SimConfig { population, ..SimConfig::default() }).await;
    assert!(pop_of(&sim).iter().all(|on| *on), "POP is on by default");
    let dir = scratch();
    let csv = write_csv(dir.path(), "pop.csv", "UserPrincipalName", &identities);
    let csv = csv.display().to_string();

    let applied = dir.path().join("apply");
    assert_eq!(run(&command("apply", &csv, &applied, &sim, dir.path())).await, 0);
    assert!(pop_of(&sim).iter().all(|on| !*on), "off on every mailbox: {:?}", pop_of(&sim));
    let rows = results(&applied);
    assert_eq!(rows.len(), identities.len(), "one pop row a mailbox: {rows:?}");
    assert!(rows.iter().all(|r| r["setting"] == "pop" && r["before"] == "enabled" && r["after"] == "disabled"));

    let audited = dir.path().join("audit");
    assert_eq!(run(&command("audit", &csv, &audited, &sim, dir.path())).await, 0, "a second look finds nothing to do");
    assert!(results(&audited).iter().all(|r| r["outcome"] == "compliant"));

    let rolled_back = dir.path().join("rollback");
    let source = applied.display().to_string();
    assert_eq!(run(&command("rollback", &source, &rolled_back, &sim, dir.path())).await, 0);
    assert!(pop_of(&sim).iter().all(|on| *on), "put back as found: {:?}", pop_of(&sim));
}

/// Every mailbox's `Get-CASMailbox` properties as the simulated tenant holds them.
fn cas_mailboxes(sim: &Simulator) -> Vec<Value> {
    state(sim)["users"].as_array().unwrap().iter().map(|u| u["casMailbox"].clone()).collect()
}

/// Requests the Exchange admin API answered, whatever their status.
fn exchange_requests(sim: &Simulator) -> u64 {
    let by_status = stats(sim)["requests_by_api"]["exchange"].clone();
    by_status.as_object().map_or(0, |statuses| statuses.values().filter_map(Value::as_u64).sum())
}

const SWITCHES: [(&str, &str, &str); 3] =
    [("pop", "disabled", "PopEnabled"), ("imap", "disabled", "ImapEnabled"), ("ews", "disabled", "EwsEnabled")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_switches_are_read_in_bulk_changed_where_needed_and_rolled_back_exactly() {
    let sim = start(roomy(1500, 0)).await;
    let before = cas_mailboxes(&sim);
    let mailboxes: Vec<&Value> = before.iter().filter(|m| !m.is_null()).collect();
    let mut identities: Vec<String> =
        mailboxes.iter().map(|m| m["PrimarySmtpAddress"].as_str().unwrap().to_string()).collect();
    identities.truncate(1200);
    assert!(
        mailboxes.iter().any(|m| m["PopEnabled"] == false) && mailboxes.iter().any(|m| m["EwsEnabled"].is_null()),
        "the seeded mix has mailboxes already off and EWS left to the organisation"
    );
    let dir = scratch();
    let csv = write_csv(dir.path(), "mailboxes.csv", "PrimarySmtpAddress", &identities).display().to_string();
    let set: Vec<String> =
        SWITCHES.iter().flat_map(|(name, value, _)| ["--set".into(), format!("{name}={value}")]).collect();
    let applied = dir.path().join("apply");
    let apply = against([vec!["apply".to_string(), csv.clone()], set].concat(), &applied, &sim, dir.path());
    let requests_before = exchange_requests(&sim);
    assert_eq!(run(&apply).await, 0);

    let rows = results(&applied);
    assert_eq!(rows.len(), identities.len() * SWITCHES.len(), "a row per mailbox and switch");
    let changed = rows.iter().filter(|r| r["outcome"] == "changed").count() as u64;
    let exchange = exchange_requests(&sim) - requests_before;
    assert!(
        exchange <= changed + 10,
        "read from the listing, not a read per mailbox: {exchange} Exchange requests for {changed} writes"
    );
    assert!(rows.iter().any(|r| r["outcome"] == "compliant"), "mailboxes already off are left alone");
    let after = cas_mailboxes(&sim);
    for (address, mailbox) in
        identities.iter().map(|a| (a, after.iter().find(|m| m["PrimarySmtpAddress"] == **a).unwrap()))
    {
        for (_, _, property) in SWITCHES {
            assert_eq!(mailbox[property], false, "{address}: {property}");
        }
    }

    let rolled_back = dir.path().join("rollback");
    let rollback = against(vec!["rollback".to_string(), applied.display().to_string()], &rolled_back, &sim, dir.path());
    assert_eq!(run(&rollback).await, 0);
    assert_eq!(cas_mailboxes(&sim), before, "every switch back as found, EWS's blank too");
}

/// Every mailbox's `Get-Mailbox` properties as the simulated tenant holds them.
fn mailbox_properties(sim: &Simulator) -> Vec<Value> {
    state(sim)["users"].as_array().unwrap().iter().map(|u| u["mailbox"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_is_cleared_and_put_back_whole_and_auditing_turned_on_from_the_listing() {
    let sim = start(roomy(1500, 0)).await;
    let before = mailbox_properties(&sim);
    let identities: Vec<String> = state(&sim)["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| !u["mailbox"].is_null())
        .map(|u| u["mail"].as_str().unwrap().to_string())
        .take(1200)
        .collect();
    let forwarding = |m: &&Value| !m["ForwardingSmtpAddress"].is_null() || !m["ForwardingAddress"].is_null();
    assert!(before.iter().filter(forwarding).count() > 10, "the seeded mix forwards somewhere");
    let dir = scratch();
    let csv = write_csv(dir.path(), "mailboxes.csv", "PrimarySmtpAddress", &identities).display().to_string();
    let applied = dir.path().join("apply");
    let set = ["--set", "forwarding=none", "--set", "audit=enabled"].map(String::from).to_vec();
    let apply = against([vec!["apply".to_string(), csv], set].concat(), &applied, &sim, dir.path());
    let requests_before = exchange_requests(&sim);
    assert_eq!(run(&apply).await, 0);

    let rows = results(&applied);
    let changed = rows.iter().filter(|r| r["outcome"] == "changed").count() as u64;
    let exchange = exchange_requests(&sim) - requests_before;
    assert!(exchange <= changed + 10, "{exchange} Exchange requests for {changed} writes: read from the listing");
    let cleared: Vec<_> = rows.iter().filter(|r| r["setting"] == "forwarding" && r["outcome"] == "changed").collect();
    assert!(!cleared.is_empty() && cleared.iter().all(|r| r["after"] == "none"));
    assert!(cleared.iter().any(|r| r["before"].contains("smtp:")), "the report says where mail went: {cleared:?}");
    let after = state(&sim);
    for user in after["users"].as_array().unwrap().iter().filter(|u| identities.iter().any(|i| u["mail"] == **i)) {
        let mailbox = &user["mailbox"];
        assert!(mailbox["ForwardingSmtpAddress"].is_null() && mailbox["ForwardingAddress"].is_null(), "{mailbox}");
        assert_eq!(
            (&mailbox["DeliverToMailboxAndForward"], &mailbox["AuditEnabled"]),
            (&Value::Bool(false), &Value::Bool(true))
        );
    }

    let rolled_back = dir.path().join("rollback");
    let rollback = against(vec!["rollback".to_string(), applied.display().to_string()], &rolled_back, &sim, dir.path());
    assert_eq!(run(&rollback).await, 0);
    assert_eq!(mailbox_properties(&sim), before, "every forward and audit switch back as found");
}

/// Every user's `AuditBypassEnabled` as the simulated tenant holds it, by UPN.
fn bypass_of(sim: &Simulator) -> Vec<(String, Value)> {
    let users = state(sim)["users"].as_array().unwrap().clone();
    let bypass =
        |u: &Value| (u["userPrincipalName"].as_str().unwrap().to_string(), u["auditBypassAssociation"].clone());
    users.iter().map(bypass).collect()
}

/// Audit bypass is listed by Get-MailboxAuditBypassAssociation, whose entries carry a Guid and no
/// directory id: the run joins them to Get-Mailbox's and reads no mailbox on its own, while an
/// account without a mailbox (a service account) is asked on its own and held all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_bypass_is_turned_off_from_the_joined_listing_and_put_back_exactly() {
    // Faults on a twentieth of the answers: listing pages, reads and writes fail, time out, drop
    // their connection or are held, and the join, the reads of accounts without a mailbox and the
    // writes must still end exactly once each.
    let faulty = SimConfig { fault_rate: 0.05, slow_reply: std::time::Duration::from_secs(5), ..roomy(1500, 0) };
    let sim = start(faulty).await;
    let before = bypass_of(&sim);
    let users = state(&sim)["users"].as_array().unwrap().clone();
    let members: Vec<&Value> = users.iter().filter(|u| u["userType"] == "Member").collect();
    let without_mailbox = members.iter().filter(|u| u["mailbox"].is_null()).count() as u64;
    let bypassed = |u: &&&Value| u["auditBypassAssociation"]["AuditBypassEnabled"] == true;
    assert!(members.iter().filter(bypassed).count() > 5, "the seeded mix bypasses auditing somewhere");
    let identities: Vec<String> =
        members.iter().map(|u| u["userPrincipalName"].as_str().unwrap().to_string()).collect();
    let dir = scratch();
    let csv = write_csv(dir.path(), "users.csv", "UserPrincipalName", &identities).display().to_string();
    let applied = dir.path().join("apply");
    let apply = vec!["apply".to_string(), csv, "--set".into(), "audit-bypass=disabled".into()];
    let requests_before = exchange_requests(&sim);
    assert_eq!(run(&against(apply, &applied, &sim, dir.path())).await, 0);

    let rows = results(&applied);
    let changed = rows.iter().filter(|r| r["outcome"] == "changed").count() as u64;
    assert!(changed > 5 && rows.iter().all(|r| r["setting"] == "audit-bypass"));
    assert_eq!(rows.len(), identities.len(), "one final row a user");
    assert_eq!(stats(&sim)["noop_writes"], 0, "no write was sent twice");
    let exchange = exchange_requests(&sim) - requests_before;
    assert!(
        exchange <= changed + without_mailbox + 30,
        "{exchange} Exchange requests for {changed} writes and {without_mailbox} accounts without a mailbox"
    );
    let after: std::collections::HashMap<String, Value> = bypass_of(&sim).into_iter().collect();
    for upn in &identities {
        assert_eq!(after[upn]["AuditBypassEnabled"], false, "{upn}: audited again");
    }

    let rolled_back = dir.path().join("rollback");
    let rollback = against(vec!["rollback".to_string(), applied.display().to_string()], &rolled_back, &sim, dir.path());
    assert_eq!(run(&rollback).await, 0);
    assert_eq!(bypass_of(&sim), before, "every bypass back as found");
}

/// An app without the Audit Logs role is not given the audit bypass cmdlets: that listing is
/// refused, the others still serve their settings, and each audit bypass row fails with that
/// refusal without asking each mailbox again (on 100,000 mailboxes at 25 requests a second,
/// that would be an hour of refusals).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_audit_bypass_listing_leaves_the_other_listings_whole() {
    let sim = start(SimConfig { deny_permissions: vec!["Audit Logs".into()], ..roomy(1500, 0) }).await;
    let users = state(&sim)["users"].as_array().unwrap().clone();
    let mailboxes: Vec<String> =
        users.iter().filter(|u| !u["mailbox"].is_null()).map(|u| u["mail"].as_str().unwrap().to_string()).collect();
    let dir = scratch();
    let csv = write_csv(dir.path(), "mailboxes.csv", "PrimarySmtpAddress", &mailboxes).display().to_string();
    let audited = dir.path().join("audit");
    let set = ["--set", "audit=enabled", "--set", "audit-bypass=disabled"].map(String::from).to_vec();
    let audit = against([vec!["audit".to_string(), csv], set].concat(), &audited, &sim, dir.path());
    let requests_before = exchange_requests(&sim);
    assert_eq!(run(&audit).await, 1, "some settings could not be read");

    let rows = results(&audited);
    let of = |setting: &str| rows.iter().filter(move |r| r["setting"] == setting).collect::<Vec<_>>();
    assert_eq!(of("audit").len(), mailboxes.len());
    assert!(of("audit").iter().all(|r| r["outcome"] != "failed"), "Get-Mailbox's listing still serves auditing");
    assert!(of("audit-bypass").iter().all(|r| r["outcome"] == "failed"), "refused one by one, each saying so");
    let exchange = exchange_requests(&sim) - requests_before;
    assert!(exchange <= 20, "{exchange} Exchange requests: the listings' pages, nothing one by one");
    let refused = of("audit-bypass");
    assert!(refused.iter().all(|r| r["error_message"].contains("is not recognized")), "{:?}", refused.first());
}
