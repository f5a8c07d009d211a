//! Identities crafted to steer a request reach exactly the intended resource: the simulator's log
//! shows the exact path and body each one produced, no path goes unmatched, nothing else changes.
//! And a formula in the CSV comes out of the report neutralised.

use std::sync::Arc;

use remediate::sim::{Population, SimConfig};
use serde_json::Value;

use crate::support::{connection_args, results, run, scratch, start, state, stats, write_csv};

const HOSTILE: [(&str, &str); 7] = [
    ("a/../../policies/x@contoso.com", "users/a%2F..%2F..%2Fpolicies%2Fx@contoso.com"),
    ("x?$select=id@contoso.com", "users/x%3F%24select%3Did@contoso.com"),
    ("x#y@contoso.com", "users/x%23y@contoso.com"),
    ("%2e%2e@contoso.com", "users/%252e%252e@contoso.com"),
    ("o'brien@contoso.com", "users/o%27brien@contoso.com"),
    ("user+tag@contoso.com", "users/user%2Btag@contoso.com"),
    ("$admin@contoso.com", "users('%24admin@contoso.com')"),
];
const GUEST: &str = "jo_fabrikam.com#EXT#@contoso.onmicrosoft.com";
const BYSTANDER: &str = "bystander@contoso.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_identities_reach_exactly_their_own_user() {
    let mut everyone: Vec<String> = HOSTILE.iter().map(|(identity, _)| identity.to_string()).collect();
    everyone.push(GUEST.into());
    everyone.push(BYSTANDER.into());
    let sim =
        start(SimConfig { population: Population::Identities(Arc::new(everyone.clone())), ..SimConfig::default() })
            .await;
    let dir = scratch();
    let targets: Vec<String> = everyone.iter().filter(|i| *i != BYSTANDER).cloned().collect();
    let csv = write_csv(
        dir.path(),
        "hostile.csv",
        "UserPrincipalName",
        &targets.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>(),
    );
    let report = dir.path().join("report");
    let mut args = vec!["apply".to_string(), csv.display().to_string(), "--set".into(), "smtp-auth=disabled".into()];
    args.extend(["--set".into(), "per-user-mfa=enforced".into(), "--report-dir".into(), report.display().to_string()]);
    args.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&args).await, 0);

    let received: Vec<Value> = serde_json::from_value(sim.service().received_json()).unwrap();
    let select = "?$select=id,userPrincipalName,mail,userType,accountEnabled,assignedLicenses";
    let users = state(&sim);
    for (identity, path) in HOSTILE {
        let lookup = format!("/v1.0/{path}{select}");
        assert!(received.iter().any(|r| r["method"] == "GET" && r["target"] == lookup), "no lookup {lookup}");
        let user = users["users"].as_array().unwrap().iter().find(|u| u["userPrincipalName"] == identity).unwrap();
        // MFA goes by object id, so the identity never reaches that path at all.
        let mfa = format!("/beta/users/{}/authentication/requirements", user["id"].as_str().unwrap());
        assert!(received.iter().any(|r| r["method"] == "GET" && r["target"] == mfa), "{mfa}");
        assert_eq!(user["perUserMfaState"], "enforced");
        let set = received.iter().find(|r| {
            let body: Value = serde_json::from_str(r["body"].as_str().unwrap_or("{}")).unwrap_or_default();
            body["CmdletInput"]["CmdletName"] == "Get-CASMailbox"
                && body["CmdletInput"]["Parameters"]["Identity"] == identity
        });
        assert!(set.is_some(), "no Get-CASMailbox whose Identity is exactly {identity}");
        assert_eq!(user["smtpClientAuthenticationDisabled"], true);
    }
    assert_eq!(stats(&sim)["unmatched_requests"], 0);
    let bystander = users["users"].as_array().unwrap().iter().find(|u| u["userPrincipalName"] == BYSTANDER).unwrap();
    assert_eq!(bystander["writes"], 0, "nothing but the targets changed");
    assert_eq!(users["securityDefaultsEnabled"], true, "only named settings are touched");
    let rows = results(&report);
    let guest_rows: Vec<_> = rows.iter().filter(|r| r["identity"] == GUEST).collect();
    assert!(guest_rows.iter().all(|r| r["outcome"] == "skipped" && r["error_code"] == "Guest"), "{guest_rows:?}");
    for (identity, _) in HOSTILE {
        let outcome = rows.iter().find(|r| r["identity"] == identity && r["setting"] == "smtp-auth").unwrap();
        assert!(outcome["outcome"] == "changed" || outcome["outcome"] == "compliant", "{outcome:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_formula_in_the_csv_is_neutralised_in_the_report() {
    let sim = start(SimConfig { population: Population::Generated { count: 5 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let report = dir.path().join("report");
    let csv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/formula.csv");
    let mut args = vec!["plan".to_string(), csv.display().to_string(), "--set".into(), "smtp-auth=disabled".into()];
    args.extend(["--report-dir".into(), report.display().to_string()]);
    args.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&args).await, 0);
    let rows = results(&report);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["identity"], "'=HYPERLINK(\"http://evil.example\",\"click\")@contoso.com");
    assert_eq!(rows[0]["outcome"], "skipped");
    let raw = std::fs::read_to_string(report.join("results.csv")).unwrap();
    assert!(
        !raw.lines().any(|line| line.split(',').any(|cell| cell.trim_start_matches('"').starts_with('='))),
        "{raw}"
    );
}
