//! `--smtp-blockers`: every layer alone stops a Basic device where the service would, the
//! look-alikes stop nothing, OAuth devices meet only their own layers, the sign-in log agrees,
//! and a share of 0 leaves today's tenant exactly as it was.

use std::collections::BTreeMap;

use remediate_sim::{Population, SimConfig};
use serde_json::{Value, json};

use super::{Caller, layered, seeded_with, user};
use crate::support::{start, state};

/// The layer each seeded blocker stops a Basic device at, and the reply's start.
const BLOCKERS: [(&str, &str, &str); 9] = [
    (
        "org-smtp-auth-off",
        "smtp-auth-tenant",
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
    ),
    (
        "mailbox-smtp-auth-off",
        "smtp-auth-mailbox",
        "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox.",
    ),
    (
        "user-authentication-policy-denies-basic-smtp",
        "authentication-policy",
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
    ),
    (
        "default-authentication-policy-denies-basic-smtp",
        "authentication-policy",
        "535 5.7.139 Authentication unsuccessful, basic authentication is disabled.",
    ),
    (
        "conditional-access-blocks-legacy-authentication",
        "conditional-access",
        "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria",
    ),
    (
        "conditional-access-requires-mfa-for-role",
        "conditional-access",
        "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria",
    ),
    (
        "conditional-access-blocks-outside-head-office",
        "conditional-access",
        "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria",
    ),
    ("sign-in-blocked", "sign-in-blocked", "535 5.7.139 Authentication unsuccessful, account has an issue."),
    (
        "per-user-mfa-enforced",
        "per-user-mfa",
        "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria",
    ),
];

const LOOK_ALIKES: [&str; 11] = [
    "report-only-policy",
    "disabled-policy",
    "excluded-from-block-directly",
    "excluded-from-block-by-nested-group",
    "excluded-from-block-by-role",
    "policy-for-sharepoint-only",
    "policy-for-browsers-only",
    "policy-for-mobile-and-desktop-clients-only",
    "authentication-policy-allows-basic-smtp",
    "smtp-relay-devices-group",
    "per-user-mfa-enabled-not-enforced",
];

/// What /_sim/state says about the one user a blocker alone was seeded on.
fn state_shows(snapshot: &Value, blocker: &str, upn: &str) {
    let record = user(snapshot, upn);
    let policy = record["AuthenticationPolicy"].as_str().unwrap_or_default();
    let shown = match blocker {
        "org-smtp-auth-off" => {
            record["smtpClientAuthenticationDisabled"].is_null()
                && snapshot["transportConfig"]["SmtpClientAuthenticationDisabled"] == true
        }
        "mailbox-smtp-auth-off" => record["smtpClientAuthenticationDisabled"] == true,
        "user-authentication-policy-denies-basic-smtp" => policy.starts_with("CN=Block Basic Auth,"),
        "default-authentication-policy-denies-basic-smtp" => {
            record["AuthenticationPolicy"].is_null()
                && snapshot["organizationConfig"]["DefaultAuthenticationPolicy"].is_string()
        }
        "sign-in-blocked" => record["accountEnabled"] == false,
        "per-user-mfa-enforced" => record["perUserMfaState"] == "enforced",
        _ => {
            snapshot["groups"].to_string().contains(record["id"].as_str().unwrap())
                || snapshot["roleAssignments"].to_string().contains(record["id"].as_str().unwrap())
        }
    };
    assert!(shown, "{blocker}: /_sim/state does not show it for {upn}: {record}");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_layer_alone_stops_a_basic_device_and_no_look_alike_does() {
    let sim = start(layered(2000, 0.2)).await;
    let caller = Caller::of(&sim).await;
    // Security defaults stay on as in every tenant; with them on, they are what a device meets.
    let snapshot = state(&sim);
    let clean = seeded_with(&snapshot, &[], &["smtp-relay-devices-group"])[0].clone();
    let answer = caller.submit(&clean, "basic", None).await;
    assert_eq!(answer["layer"], "security-defaults");
    assert!(answer["reply"].as_str().unwrap().starts_with(
        "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy."
    ));
    caller.security_defaults(false).await;

    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (blocker, layer, reply) in BLOCKERS {
        let users = seeded_with(&snapshot, &[blocker], &[]);
        assert!(!users.is_empty(), "{blocker} alone is seeded");
        for upn in &users {
            let answer = caller.submit(upn, "basic", None).await;
            assert_eq!(
                (answer["layer"].as_str(), answer["layers"].as_array().map(Vec::len)),
                (Some(layer), Some(1)),
                "{blocker} {upn}: {answer}"
            );
            assert!(answer["reply"].as_str().unwrap().starts_with(reply), "{blocker}: {answer}");
        }
        state_shows(&snapshot, blocker, &users[0]);
        seen.insert(blocker, users.len());
    }
    for look_alike in LOOK_ALIKES {
        let users = seeded_with(&snapshot, &[], &[look_alike]);
        assert!(!users.is_empty(), "{look_alike} alone is seeded");
        for upn in &users {
            let answer = caller.submit(upn, "basic", None).await;
            assert_eq!(answer["reply"], "235 2.7.0 Authentication successful", "{look_alike} {upn}: {answer}");
        }
        seen.insert(look_alike, users.len());
    }
    // Combined blockers: every one of them is among the refusals, and the first is answered.
    let combined = snapshot["seededSmtpBlockers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["blockers"].as_array().unwrap().len() > 1);
    let mut combinations = 0;
    for entry in combined {
        let answer = caller.submit(entry["userPrincipalName"].as_str().unwrap(), "basic", None).await;
        let layers = answer["layers"].as_array().unwrap();
        for blocker in entry["blockers"].as_array().unwrap() {
            let layer = BLOCKERS.iter().find(|(b, _, _)| blocker == b).unwrap().1;
            assert!(layers.iter().any(|l| l == layer), "{entry}: {answer}");
        }
        assert_eq!(answer["layer"], layers[0]);
        combinations += 1;
    }
    assert!(combinations > 20, "{combinations} users with several blockers; alone: {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth_devices_meet_only_their_own_layers_and_location_follows_the_address() {
    let sim = start(layered(2000, 0.2)).await;
    let caller = Caller::of(&sim).await;
    caller.security_defaults(false).await;
    let snapshot = state(&sim);
    let one = |blockers: &[&str], look_alikes: &[&str]| seeded_with(&snapshot, blockers, look_alikes)[0].clone();
    let contractor = one(&[], &["policy-for-mobile-and-desktop-clients-only"]);
    assert_eq!(caller.submit(&contractor, "basic", None).await["accepted"], true);
    let answer = caller.submit(&contractor, "oauth", None).await;
    assert_eq!(
        (
            answer["layer"].as_str(),
            answer["reply"].as_str().map(|r| r.starts_with("535 5.7.3 Authentication unsuccessful"))
        ),
        (Some("conditional-access"), Some(true))
    );
    for oauth_passes in [
        "conditional-access-requires-mfa-for-role",
        "user-authentication-policy-denies-basic-smtp",
        "per-user-mfa-enforced",
        "default-authentication-policy-denies-basic-smtp",
    ] {
        assert_eq!(caller.submit(&one(&[oauth_passes], &[]), "oauth", None).await["accepted"], true, "{oauth_passes}");
    }
    assert_eq!(caller.submit(&one(&["sign-in-blocked"], &[]), "oauth", None).await["layer"], "sign-in-blocked");
    let tenant_off = caller.submit(&one(&["org-smtp-auth-off"], &[]), "oauth", None).await;
    assert!(
        tenant_off["reply"].as_str().unwrap().starts_with(
            "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."
        )
    );

    let warehouse = one(&["conditional-access-blocks-outside-head-office"], &[]);
    assert_eq!(
        caller.submit(&warehouse, "basic", Some("198.51.100.23")).await["accepted"],
        true,
        "from the head office"
    );
    assert_eq!(caller.submit(&warehouse, "basic", Some("203.0.113.9")).await["layer"], "conditional-access");
    assert_eq!(caller.submit(&warehouse, "basic", None).await["layer"], "conditional-access", "an unknown address");
    assert_eq!(caller.submit("nobody@contoso.com", "basic", None).await["layer"], "unknown-user");
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_smtp_off_answers_550_and_no_api_shows_it() {
    let off = start(SimConfig { basic_smtp_off: true, ..layered(100, 0.0) }).await;
    let on = start(layered(100, 0.0)).await;
    let (off_caller, on_caller) = (Caller::of(&off).await, Caller::of(&on).await);
    let snapshot = state(&off);
    let mailbox = snapshot["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["hasMailbox"] == true && u["smtpClientAuthenticationDisabled"] == false)
        .unwrap();
    let upn = mailbox["userPrincipalName"].as_str().unwrap();
    let answer = off_caller.submit(upn, "basic", None).await;
    assert_eq!(answer["layer"], "basic-auth-retired");
    assert!(
        answer["reply"]
            .as_str()
            .unwrap()
            .starts_with("550 5.7.30 Basic authentication is not supported for Client Submission.")
    );
    assert_ne!(off_caller.submit(upn, "oauth", None).await["layer"], "basic-auth-retired");
    assert_eq!(snapshot["simulatorOnly"]["basicAuthenticationForSmtpAuth"], false);
    for cmdlet in ["Get-TransportConfig", "Get-OrganizationConfig", "Get-AuthenticationPolicy"] {
        let (off_answer, on_answer) =
            (off_caller.invoke(cmdlet, json!({})).await, on_caller.invoke(cmdlet, json!({})).await);
        assert_eq!((off_answer.0, &off_answer.1["value"]), (on_answer.0, &on_answer.1["value"]), "{cmdlet}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sign_in_log_agrees_with_the_layers() {
    let config = SimConfig { smtp_sign_ins: 0.6, security_defaults: false, ..layered(600, 0.4) };
    let sim = start(config).await;
    let caller = Caller::of(&sim).await;
    let (entries, _) = caller.all("/v1.0/auditLogs/signIns?$top=999").await;
    let results = [
        "success",
        "failure",
        "notApplied",
        "notEnabled",
        "reportOnlySuccess",
        "reportOnlyFailure",
        "reportOnlyNotApplied",
    ];
    let mut codes: BTreeMap<u64, usize> = BTreeMap::new();
    for entry in &entries {
        let code = entry["status"]["errorCode"].as_u64().unwrap();
        *codes.entry(code).or_default() += 1;
        let applied = entry["appliedConditionalAccessPolicies"].as_array().unwrap();
        assert_eq!(applied.len(), 9);
        assert!(
            applied
                .iter()
                .all(|a| results.contains(&a["result"].as_str().unwrap()) && a["enforcedGrantControls"].is_array())
        );
        let failed = applied.iter().any(|a| a["result"] == "failure");
        match code {
            53003 => assert!(
                failed
                    && applied
                        .iter()
                        .any(|a| a["result"] == "failure" && a["enforcedGrantControls"] == json!(["Block"]))
            ),
            50126 | 50053 | 50057 => assert_eq!(entry["conditionalAccessStatus"], "notApplied", "{entry}"),
            0 => assert_eq!(entry["conditionalAccessStatus"], "success", "the sign-in frequency policy applies to all"),
            _ => {}
        }
        assert_eq!(entry["conditionalAccessStatus"] == "failure", failed);
    }
    for code in [0, 53003, 50057, 50076] {
        assert!(codes.contains_key(&code), "{code} in {codes:?}");
    }
    assert!(!codes.contains_key(&530035), "security defaults are off");
    // Each device's last result is the layer /_sim/smtp-submit names; policies stop it before Entra.
    let snapshot = state(&sim);
    let denied: Vec<String> = seeded_with(&snapshot, &["user-authentication-policy-denies-basic-smtp"], &[]);
    for device in snapshot["smtpSignIns"].as_array().unwrap() {
        let upn = device["userPrincipalName"].as_str().unwrap();
        assert!(!denied.iter().any(|d| d == upn), "{upn} never reaches Entra");
        let layer = caller.submit(upn, "basic", None).await["layer"].clone();
        let expected: &[&str] = match device["lastErrorCode"].as_u64().unwrap() {
            53003 => &["conditional-access"],
            50057 => &["sign-in-blocked"],
            50076 => &["conditional-access", "per-user-mfa"],
            _ => continue,
        };
        assert!(expected.iter().any(|e| layer == *e), "{device}: {layer}");
    }
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

#[tokio::test(flavor = "multi_thread")]
async fn no_blockers_leaves_todays_tenant_exactly_as_it_was() {
    let config = SimConfig {
        population: Population::Generated { count: 2000 },
        seed: 7,
        smtp_sign_ins: 0.05,
        ..SimConfig::default()
    };
    assert_eq!((config.smtp_blockers, config.basic_smtp_off, config.security_defaults), (0.0, false, true));
    let sim = start(config).await;
    let snapshot = state(&sim);
    // The users' settings (the keys /_sim/state had before the layers) and each device's sign-ins,
    // fingerprinted on the code before this change (a1452e2) with the same seed.
    const OLD_KEYS: [&str; 10] = [
        "id",
        "userPrincipalName",
        "mail",
        "userType",
        "licensed",
        "hasMailbox",
        "smtpClientAuthenticationDisabled",
        "perUserMfaState",
        "hasRegisteredMethod",
        "writes",
    ];
    let users: Vec<Value> = snapshot["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| Value::Object(OLD_KEYS.iter().map(|k| (k.to_string(), u[*k].clone())).collect()))
        .collect();
    let tenant = json!({"securityDefaultsEnabled": snapshot["securityDefaultsEnabled"], "transportConfig": snapshot["transportConfig"], "users": users});
    let devices: Vec<Value> = snapshot["smtpSignIns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!([s["userPrincipalName"], s["signIns"], s["failures"], s["lastErrorCode"]]))
        .collect();
    assert_eq!((users.len(), devices.len()), (2000, 128));
    assert_eq!(fnv(&tenant.to_string()), 7651803836776046689);
    assert_eq!(fnv(&Value::from(devices).to_string()), 10136522763909346879);
    for empty in
        ["groups", "roleAssignments", "conditionalAccessPolicies", "authenticationPolicies", "seededSmtpBlockers"]
    {
        assert_eq!(snapshot[empty], json!([]), "{empty}");
    }
    assert_eq!(snapshot["organizationConfig"]["DefaultAuthenticationPolicy"], Value::Null);
    assert!(snapshot["users"].as_array().unwrap().iter().all(|u| u["AuthenticationPolicy"].is_null()));
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_restores_the_layers() {
    let sim = start(layered(200, 0.3)).await;
    let caller = Caller::of(&sim).await;
    let before = state(&sim);
    let upn = seeded_with(&before, &[], &["smtp-relay-devices-group"])[0].clone();
    let id = user(&before, &upn)["id"].as_str().unwrap().to_string();
    let exclusion = super::group_id(&caller, "CA exclusion - legacy authentication").await;
    let reference = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
    assert_eq!(caller.post(&format!("/v1.0/groups/{exclusion}/members/$ref"), reference).await.0, 204);
    assert_eq!(caller.invoke("Set-User", json!({"Identity": upn, "AuthenticationPolicy": null})).await.0, 200);
    assert_ne!(state(&sim), before);
    let reset = reqwest::Client::new().post(format!("{}/_sim/reset", sim.url())).send().await.unwrap();
    assert_eq!(reset.status().as_u16(), 204);
    assert_eq!(state(&sim), before);
}
