//! Several tenants in one run: a `tenant` column routes each row; each tenant has its own tokens,
//! rates and lock, they run side by side, and the report splits by tenant.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use remediate_sim::{AppRegistration, Population, SimConfig, Simulator};

use crate::support::{results, run, scratch, summary};

fn identities(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}{i}@contoso.com")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_with_their_own_budgets_and_a_report_that_splits() {
    let roomy = SimConfig {
        population: Population::Identities(Arc::new(identities("a", 60))),
        seed: 21,
        ..SimConfig::default()
    };
    let app = roomy.app_registration();
    let tight = SimConfig {
        population: Population::Identities(Arc::new(identities("b", 60))),
        seed: 22,
        exchange_rate: 15.0,
        exchange_window: Duration::from_secs(1),
        client: Some((app.client_id.clone(), app.client_secret.clone())),
        ..SimConfig::default()
    };
    let tenant_b = tight.app_registration().tenant_id;
    let sim = Simulator::start_many(vec![roomy, tight]).await.unwrap();
    let dir = scratch();
    let mut rows = vec!["UserPrincipalName,tenant".to_string()];
    rows.extend(identities("a", 60).into_iter().map(|i| format!("{i},")));
    rows.extend(identities("b", 60).into_iter().map(|i| format!("{i},{tenant_b}")));
    let csv = dir.path().join("two-tenants.csv");
    std::fs::write(&csv, rows.join("\n") + "\n").unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, &app.client_secret).unwrap();
    let report = dir.path().join("report");
    let args = two_tenant_args(&csv, &secret, &report, &sim, &app);
    assert_eq!(run(&args).await, 0);

    let rows = results(&report);
    assert_eq!(rows.len(), 240, "a mailbox's smtp-auth and its verdict, in each tenant");
    for row in &rows {
        let expected = if row["identity"].starts_with('a') { &app.tenant_id } else { &tenant_b };
        assert_eq!(&row["tenant"], expected, "{row:?}");
    }
    let totals = summary(&report);
    let by_tenant = totals["by_tenant"].as_object().unwrap();
    assert_eq!(by_tenant.len(), 2);
    let count =
        |tenant: &str| by_tenant[tenant].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>();
    assert_eq!((count(&app.tenant_id), count(&tenant_b)), (120, 120));
    let throttled_seen = |tenant: &str| {
        let apis = totals["pacing"][tenant].as_object().unwrap_or_else(|| panic!("no pacing for {tenant}: {totals}"));
        assert_eq!(apis.keys().collect::<Vec<_>>(), ["exchange", "graph", "graph-writes"]);
        apis.values().map(|api| api["throttled"].as_u64().unwrap()).sum::<u64>()
    };
    assert_eq!(throttled_seen(&app.tenant_id), 0, "each tenant is paced on its own");
    assert!(throttled_seen(&tenant_b) > 0, "the tight tenant's pacers saw its 429s");

    let tenants: Vec<_> = sim.services().collect();
    for (service, prefix) in tenants.iter().zip(["a", "b"]) {
        let state = service.state_json();
        assert!(
            state["users"].as_array().unwrap().iter().all(|u| u["smtpClientAuthenticationDisabled"] == true),
            "tenant {prefix}"
        );
        assert!(
            state["users"]
                .as_array()
                .unwrap()
                .iter()
                .all(|u| u["userPrincipalName"].as_str().unwrap().starts_with(prefix))
        );
    }
    let (a, b) = (tenants[0].stats_json(), tenants[1].stats_json());
    assert_eq!(a["throttled_total"], 0, "the roomy tenant is not held back: {a}");
    assert!(b["throttled_total"].as_u64().unwrap() > 0, "the tight tenant's own budget bit: {b}");
    assert_eq!((a["noop_writes"].as_u64(), b["noop_writes"].as_u64()), (Some(0), Some(0)));
}

/// `apply` of both tenants' rows with the first tenant's app (the second trusts it too), against
/// the simulator, its rates raised so that only the tight tenant's own budget holds it back.
fn two_tenant_args(csv: &Path, secret: &Path, report: &Path, sim: &Simulator, app: &AppRegistration) -> Vec<String> {
    let url = sim.url();
    [
        "apply",
        csv.to_str().unwrap(),
        "--set",
        "smtp-auth=disabled",
        "--tenant-id",
        &app.tenant_id,
        "--client-id",
        &app.client_id,
        "--client-secret-file",
        secret.to_str().unwrap(),
        "--login-url",
        &url,
        "--graph-url",
        &url,
        "--exchange-url",
        &url,
        "--exchange-rps",
        "200",
        "--exchange-inflight",
        "4",
        "--report-dir",
        report.to_str().unwrap(),
        "--state-dir",
        report.with_file_name("state").to_str().unwrap(),
    ]
    .map(String::from)
    .to_vec()
}
