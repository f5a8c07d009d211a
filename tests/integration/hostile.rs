//! Identities crafted to steer a request reach exactly the intended resource: the simulator's log
//! shows the exact path and body each one produced, no path goes unmatched, nothing else changes.
//! And a formula in the CSV comes out of the report neutralised.

use std::sync::Arc;

use remediate_sim::{Population, SimConfig};
use serde_json::Value;

use crate::support::{connection_args, results, run, scratch, start, state, stats, summary, write_csv};

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
    let select = "?$select=id,userPrincipalName,mail,userType,accountEnabled";
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
    args.extend(["--report-dir".into(), report.display().to_string(), "--max-not-found".into(), "1".into()]);
    args.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&args).await, 0);
    let rows: Vec<_> = results(&report).into_iter().filter(|r| r["setting"] == "smtp-auth").collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["identity"], "'=HYPERLINK(\"http://evil.example\",\"click\")@contoso.com");
    assert_eq!(rows[0]["outcome"], "skipped");
    let raw = std::fs::read_to_string(report.join("results.csv")).unwrap();
    assert!(
        !raw.lines().any(|line| line.split(',').any(|cell| cell.trim_start_matches('"').starts_with('='))),
        "{raw}"
    );
}

/// A token endpoint that answers every request with `answer(form)`: status and body.
async fn token_endpoint(answer: fn(&str) -> (u16, Vec<u8>)) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/{tenant}/oauth2/v2.0/token",
        post(move |body: String| async move {
            let (status, body) = answer(&body);
            (axum::http::StatusCode::from_u16(status).unwrap(), body)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

/// `apply` pointed at a token endpoint, the real binary: its exit code and stderr.
async fn apply_against(login_url: &str, secret: &str) -> (Option<i32>, String) {
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &["adele@contoso.com".to_string()]);
    let output = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("remediate"))
        .args(["apply", &csv.display().to_string(), "--set", "smtp-auth=disabled", "--yes"])
        .args(["--report-dir", &dir.path().join("report").display().to_string()])
        .args(["--state-dir", &dir.path().join("state").display().to_string()])
        .args(["--tenant-id", "00000000-0000-0000-0000-0000000000aa", "--client-id", "app"])
        .args(["--login-url", login_url, "--graph-url", login_url, "--exchange-url", login_url])
        .env("AZURE_CLIENT_SECRET", secret)
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_that_echoes_the_form_never_shows_the_secret() {
    let url = token_endpoint(|form| {
        let body = serde_json::json!({
            "error": "invalid_client",
            "error_description": format!("AADSTS7000215: Invalid client secret provided. Request: {form}"),
        });
        (401, body.to_string().into_bytes())
    })
    .await;
    let secret = "Sup3r~Secret+Value/With=Signs";
    let (code, stderr) = apply_against(&url, secret).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("AADSTS7000215") && stderr.contains("(redacted)"), "{stderr}");
    let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    assert!(!stderr.contains(secret) && !stderr.contains(&encoded) && !stderr.contains("Sup3r"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_token_answer_is_not_read_whole() {
    let url = token_endpoint(|_| (200, vec![b' '; 8 * 1024 * 1024])).await;
    let (code, stderr) = apply_against(&url, "secret-value").await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("larger than 1 MiB"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_refused_after_a_fresh_one_is_an_authentication_failure() {
    let sim = start(SimConfig { population: Population::Generated { count: 40 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &crate::support::upns(&state(&sim)));
    let report = dir.path().join("report");
    sim.service().reject_every_token();
    let mut args = crate::support::fix_args(&csv, &report);
    args.extend(connection_args(&sim, dir.path()));
    args.extend(["--concurrency".into(), "4".into()]);
    assert_eq!(run(&args).await, 2, "nothing was changed, and retrying cannot help");
    let totals = summary(&report);
    assert!(totals["stopped_because"].as_str().unwrap().starts_with("authentication"), "{totals}");
    let refused = totals["requests"]["graph"]["401"].as_u64().unwrap_or(0)
        + totals["requests"]["exchange"]["401"].as_u64().unwrap_or(0);
    assert!(refused <= 2 * 5, "{refused} requests refused: one fresh token per request in flight, then stop");
    assert_eq!(totals["counts"]["changed"], 0);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_files_are_private_and_planted_links_are_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let sim = start(SimConfig { population: Population::Generated { count: 5 }, ..SimConfig::default() }).await;
    let dir = scratch();
    let csv = write_csv(dir.path(), "m.csv", "UserPrincipalName", &crate::support::upns(&state(&sim)));
    let report = dir.path().join("report");
    std::fs::create_dir_all(&report).unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    for name in ["results.csv.partial", "summary.json.partial", "report.html.partial"] {
        std::os::unix::fs::symlink(&victim, report.join(name)).unwrap();
    }
    let mut args = crate::support::fix_args(&csv, &report);
    args.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&args).await, 0);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    for name in ["journal.jsonl", "results.csv", "summary.json", "run.json", "report.html", "rejected-rows.csv"] {
        assert_eq!(mode(&report.join(name)), 0o600, "{name}");
    }
    let fresh = dir.path().join("fresh");
    let mut args = crate::support::fix_args(&csv, &fresh);
    args.extend(connection_args(&sim, dir.path()));
    assert_eq!(run(&args).await, 0);
    assert_eq!(mode(&fresh), 0o700, "a report directory the tool creates is the owner's alone");
    let lock = std::fs::read_dir(dir.path().join("state")).unwrap().next().unwrap().unwrap().path();
    assert_eq!(mode(&lock), 0o600);
}

#[test]
fn invisible_characters_in_an_identity_are_rejected_with_their_line() {
    let dir = scratch();
    let csv = dir.path().join("m.csv");
    std::fs::write(
        &csv,
        "UserPrincipalName\nadele@contoso.com\nad\u{200B}ele2@contoso.com\n\u{202E}moc.osotnoc@xela\n",
    )
    .unwrap();
    let output = assert_cmd::Command::cargo_bin("remediate")
        .unwrap()
        .args(["validate", csv.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("m.csv:3: the identity contains the invisible character U+200B"), "{stdout}");
    assert!(stdout.contains("m.csv:4: the identity contains the invisible character U+202E"), "{stdout}");
}

/// A listing that never ends (its next link names a page already sent) is stopped with an error
/// that says so, not read for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_whose_next_link_repeats_is_stopped() {
    use axum::routing::{any, post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let token =
        serde_json::json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0eXAiOiJKV1QifQ.e30.x"});
    let next = format!("{url}/adminapi/beta/00000000-0000-0000-0000-0000000000aa/InvokeCommand?$skiptoken=1");
    let page = serde_json::json!({"value": [], "@odata.nextLink": next});
    let app = axum::Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(move || async move { axum::Json(token) }))
        .route("/adminapi/beta/{tenant}/InvokeCommand", any(move || async move { axum::Json(page) }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = scratch();
    let output = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("remediate"))
        .args(["apply", "--all-mailboxes", "--set", "smtp-auth=disabled", "--yes"])
        .args(["--report-dir", &dir.path().join("report").display().to_string()])
        .args(["--state-dir", &dir.path().join("state").display().to_string()])
        .args(["--tenant-id", "00000000-0000-0000-0000-0000000000aa", "--client-id", "app"])
        .args(["--login-url", &url, "--graph-url", &url, "--exchange-url", &url])
        .env("AZURE_CLIENT_SECRET", "secret-value")
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already sent as the next one"), "{stderr}");
}
