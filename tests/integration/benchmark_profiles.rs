//! The CIS profile over a whole simulated tenant, as issue 29's acceptance asks: `apply
//! --all-mailboxes --profile cis-exchange --exceptions FILE` brings every mailbox to the profile
//! but the excepted ones, a second `audit` exits 0, and a rollback puts back the tenant exactly as
//! found. Every check reads the tenant's own state (`/_sim/state`, under the service's property
//! names), never the runner's reading.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use crate::support::{against, results, roomy, run, scratch, start, state};

const MAILBOXES: usize = 10_000;

/// `VERB --all-mailboxes --profile cis-exchange --exceptions FILE`.
fn sweep(verb: &str, exceptions: &Path) -> Vec<String> {
    let mut args = vec![verb.to_string()];
    args.extend(["--all-mailboxes", "--profile", "cis-exchange", "--exceptions"].map(String::from));
    args.push(exceptions.display().to_string());
    args
}

/// What the profile touches of each user, by UPN: SMTP AUTH, the `Get-Mailbox` properties, the
/// account and its audit bypass; and the organisation's switch.
fn tenant_settings(state: &Value) -> (Value, HashMap<String, Value>) {
    let users = state["users"].as_array().unwrap().iter().map(|u| {
        let held = [
            u["smtpClientAuthenticationDisabled"].clone(),
            u["mailbox"].clone(),
            u["accountEnabled"].clone(),
            u["auditBypassAssociation"].clone(),
        ];
        (u["userPrincipalName"].as_str().unwrap().to_string(), Value::Array(held.to_vec()))
    });
    (state["transportConfig"].clone(), users.collect())
}

fn is_shared(user: &Value) -> bool {
    matches!(
        user["mailbox"]["RecipientTypeDetails"].as_str(),
        Some("SharedMailbox" | "RoomMailbox" | "EquipmentMailbox")
    )
}

/// Two exceptions: a shared mailbox whose sign-in stays open, and a mailbox whose SMTP AUTH stays
/// on (a scanner's, say). Returns their UPNs.
fn write_exceptions(state: &Value, path: &Path) -> (String, String) {
    let users = state["users"].as_array().unwrap();
    let upn = |u: &Value| u["userPrincipalName"].as_str().unwrap().to_string();
    let shared =
        users.iter().find(|u| is_shared(u) && u["accountEnabled"] == true).map(upn).expect("an open shared mailbox");
    let scanner = users.iter().find(|u| u["mailbox"]["RecipientTypeDetails"] == "UserMailbox").map(upn).unwrap();
    let text = format!(
        "identity,setting,value,owner,reason,expires\n{shared},shared-sign-in,enabled,Reception,front desk kiosk,2099-12-31\n{scanner},smtp-auth,enabled,Facilities,copier on floor 2,2099-12-31\n"
    );
    std::fs::write(path, text).unwrap();
    (shared, scanner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cis_exchange_over_every_mailbox_holds_the_exceptions_and_rolls_back_exactly() {
    let sim = start(roomy(MAILBOXES, 0)).await;
    let before = state(&sim);
    let dir = scratch();
    let exceptions = dir.path().join("exceptions.csv");
    let (shared, scanner) = write_exceptions(&before, &exceptions);
    let applied = dir.path().join("apply");
    assert_eq!(run(&against(sweep("apply", &exceptions), &applied, &sim, dir.path())).await, 0, "the apply is done");

    let after = state(&sim);
    assert_eq!(after["transportConfig"]["SmtpClientAuthenticationDisabled"], true);
    for user in after["users"].as_array().unwrap().iter().filter(|u| !u["mailbox"].is_null()) {
        let upn = user["userPrincipalName"].as_str().unwrap();
        let smtp_on = upn == scanner;
        assert_eq!(user["smtpClientAuthenticationDisabled"], !smtp_on, "{upn}: SMTP AUTH");
        assert_eq!(user["mailbox"]["AuditEnabled"], true, "{upn}: auditing");
        assert_eq!(user["auditBypassAssociation"]["AuditBypassEnabled"], false, "{upn}: audit bypass");
        if is_shared(user) {
            assert_eq!(user["accountEnabled"], upn == shared, "{upn}: a shared mailbox's sign-in");
        }
    }
    let rows = results(&applied);
    let excepted: Vec<_> = rows.iter().filter(|r| r["outcome"] == "excepted").collect();
    assert_eq!(excepted.len(), 2, "both exceptions are reported as such: {excepted:?}");
    assert!(
        rows.iter()
            .any(|r| r["setting"] == "shared-sign-in" && r["outcome"] == "changed" && r["control"] == "CIS 1.2.2")
    );
    assert!(rows.iter().any(|r| r["setting"] == "audit" && r["outcome"] == "changed"));
    assert!(
        rows.iter().any(|r| r["setting"] == "audit-bypass" && r["outcome"] == "changed" && r["control"] == "CIS 6.1.3")
    );

    let audited = dir.path().join("audit");
    let audit = against(sweep("audit", &exceptions), &audited, &sim, dir.path());
    assert_eq!(run(&audit).await, 0, "a second look finds nothing");

    let rolled_back = dir.path().join("rollback");
    let rollback = vec!["rollback".to_string(), applied.display().to_string()];
    assert_eq!(run(&against(rollback, &rolled_back, &sim, dir.path())).await, 0);
    assert!(tenant_settings(&state(&sim)) == tenant_settings(&before), "every setting back exactly as found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_sign_in_is_read_one_mailbox_at_a_time_below_the_listing_and_skips_a_users_own() {
    let sim = start(roomy(300, 0)).await;
    let before = state(&sim);
    let mailboxes: Vec<&Value> =
        before["users"].as_array().unwrap().iter().filter(|u| !u["mailbox"].is_null()).collect();
    assert!(mailboxes.iter().any(|u| is_shared(u) && u["accountEnabled"] == true), "an open shared mailbox");
    let identities: Vec<String> = mailboxes.iter().map(|u| u["mail"].as_str().unwrap().to_string()).collect();
    let dir = scratch();
    let csv = crate::support::write_csv(dir.path(), "mailboxes.csv", "PrimarySmtpAddress", &identities);
    let applied = dir.path().join("apply");
    let apply = vec!["apply".to_string(), csv.display().to_string(), "--set".into(), "shared-sign-in=disabled".into()];
    assert_eq!(run(&against(apply, &applied, &sim, dir.path())).await, 0);
    let rows = results(&applied);
    for user in state(&sim)["users"].as_array().unwrap().iter().filter(|u| is_shared(u)) {
        assert_eq!(user["accountEnabled"], false, "{}", user["userPrincipalName"]);
    }
    let own = rows.iter().filter(|r| r["outcome"] == "skipped" && r["error_code"] == "NoSharedMailbox").count();
    assert_eq!(own, mailboxes.iter().filter(|u| !is_shared(u)).count(), "a user's own mailbox is not this setting's");
    assert!(rows.iter().any(|r| r["outcome"] == "changed" && r["before"] == "enabled"));

    let rolled_back = dir.path().join("rollback");
    let rollback = vec!["rollback".to_string(), applied.display().to_string()];
    assert_eq!(run(&against(rollback, &rolled_back, &sim, dir.path())).await, 0);
    assert!(tenant_settings(&state(&sim)) == tenant_settings(&before), "every account back as found");
}
