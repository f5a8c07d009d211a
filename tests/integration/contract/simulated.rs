//! The simulator's answer to the request each example answers: Graph, Exchange and the token
//! endpoint on a plain tenant and on tenants that throttle, and the layers that decide SMTP AUTH
//! on a tenant seeded with them. (The managed identity forms are `managed_identity`'s.)

use std::collections::BTreeMap;

use remediate_sim::{Population, SimConfig, Simulator};
use serde_json::{Value, json};

use super::{invoke, send};
use crate::support::{EXCHANGE, GRAPH, start, state, token};

/// The id of a group of a tenant seeded with `--smtp-blockers`, and its direct user members.
fn seeded_group(sim: &Simulator, name: &str) -> (String, Vec<String>) {
    let snapshot = state(sim);
    let group = snapshot["groups"].as_array().unwrap().iter().find(|g| g["displayName"] == name).unwrap().clone();
    let members = group["members"].as_array().unwrap().iter();
    let users =
        members.filter(|m| m["@odata.type"] == "#microsoft.graph.user").map(|m| m["id"].as_str().unwrap().to_string());
    (group["id"].as_str().unwrap().to_string(), users.collect())
}

/// The answers about the layers that decide SMTP AUTH, from a tenant seeded with them.
pub(super) async fn simulated_layers(which: &str, layers: &Simulator) -> (u16, BTreeMap<String, String>, Value) {
    let http = reqwest::Client::new();
    let graph = token(layers, GRAPH).await;
    let exchange_url = format!("{}/adminapi/beta/{}/InvokeCommand", layers.url(), layers.app().tenant_id);
    let exchange = token(layers, EXCHANGE).await;
    let invoke_layers = |body: Value| http.post(&exchange_url).bearer_auth(&exchange).json(&body);
    match which {
        "graph-ca-policies" => {
            let url = format!("{}/v1.0/identity/conditionalAccess/policies?$top=2", layers.url());
            send(http.get(url).bearer_auth(&graph)).await
        }
        "graph-transitive-members" => {
            let (group, _) = seeded_group(layers, "Legacy authentication blocked");
            let url = format!("{}/v1.0/groups/{group}/transitiveMembers?$top=2", layers.url());
            send(http.get(url).bearer_auth(&graph)).await
        }
        "graph-member-exists" => {
            let (group, users) = seeded_group(layers, "Legacy authentication blocked");
            let reference =
                json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{}", users[0])});
            let url = format!("{}/v1.0/groups/{group}/members/$ref", layers.url());
            send(http.post(url).bearer_auth(&graph).json(&reference)).await
        }
        "exchange-organization-config" => send(invoke_layers(invoke("Get-OrganizationConfig", json!({})))).await,
        "exchange-authentication-policy" => {
            send(invoke_layers(invoke("Get-AuthenticationPolicy", json!({"Identity": "Block Basic Auth"})))).await
        }
        "exchange-get-user" => {
            let dn = state(layers)["authenticationPolicies"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["Name"] == "Block Basic Auth")
                .unwrap()["DistinguishedName"]
                .clone();
            let filter = format!("AuthenticationPolicy -eq '{}'", dn.as_str().unwrap());
            send(invoke_layers(invoke("Get-User", json!({"Filter": filter, "ResultSize": "Unlimited"})))).await
        }
        other => panic!("no simulated counterpart named {other}"),
    }
}

/// Reads (or writes) one user's MFA requirements on `target` until it answers 429.
async fn throttled_until_429(
    http: &reqwest::Client,
    target: &Simulator,
    write: bool,
) -> (u16, BTreeMap<String, String>, Value) {
    let bearer = token(target, GRAPH).await;
    let user = state(target)["users"][0]["id"].as_str().unwrap().to_string();
    let url = format!("{}/beta/users/{user}/authentication/requirements", target.url());
    for _ in 0..50 {
        let request = if write {
            http.patch(&url).bearer_auth(&bearer).json(&json!({"perUserMfaState": "enforced"}))
        } else {
            http.get(&url).bearer_auth(&bearer)
        };
        let answer = send(request).await;
        if answer.0 == 429 {
            return answer;
        }
    }
    panic!("the tenant never throttled");
}

/// The simulator's answer to an example of throttling: from the tenant whose reads and Exchange
/// calls throttle at once (`tight`), or the one whose writes do (`writes`).
async fn simulated_throttled(
    which: &str,
    http: &reqwest::Client,
    tight: &Simulator,
    writes: &Simulator,
) -> (u16, BTreeMap<String, String>, Value) {
    match which {
        "graph-throttled" | "graph-write-throttled" => {
            let target = if which == "graph-throttled" { tight } else { writes };
            throttled_until_429(http, target, which == "graph-write-throttled").await
        }
        "graph-batch-424" => {
            let bearer = token(tight, GRAPH).await;
            let user = state(tight)["users"][1]["id"].as_str().unwrap().to_string();
            let requests: Vec<Value> = (0..20)
                .map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{user}/authentication/requirements")}))
                .collect();
            send(
                http.post(format!("{}/beta/$batch", tight.url()))
                    .bearer_auth(&bearer)
                    .json(&json!({"requests": requests})),
            )
            .await
        }
        "exchange-concurrency" => {
            let bearer = token(tight, EXCHANGE).await;
            let url = format!("{}/adminapi/beta/{}/InvokeCommand", tight.url(), tight.app().tenant_id);
            let body = invoke("Get-TransportConfig", json!({}));
            let answers =
                futures_util::future::join_all((0..3).map(|_| send(http.post(&url).bearer_auth(&bearer).json(&body))))
                    .await;
            answers.into_iter().find(|a| a.0 == 500).expect("the plain-text refusal")
        }
        other => panic!("no simulated counterpart named {other}"),
    }
}

/// A Get-Mailbox page (two to a page) whose first mailbox forwards outside for the length of the
/// listing, so that the answer's first item has the example's strings where the example has them;
/// then that mailbox is put back as it was.
async fn forwarding_mailbox_page(sim: &Simulator, users: &[Value]) -> (u16, BTreeMap<String, String>, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
    let bearer = token(sim, EXCHANGE).await;
    let first = users.iter().find(|u| u["hasMailbox"] == true).unwrap();
    let identity = first["userPrincipalName"].clone();
    let forward = json!({
        "Identity": identity,
        "ForwardingSmtpAddress": "adele.vance@fabrikam.com",
        "DeliverToMailboxAndForward": true,
    });
    let set = |body: Value| http.post(&url).bearer_auth(&bearer).json(&invoke("Set-Mailbox", body));
    assert_eq!(send(set(forward)).await.0, 200);
    let listing = invoke("Get-Mailbox", json!({"ResultSize": "Unlimited"}));
    let answer =
        send(http.post(&url).bearer_auth(&bearer).header("Prefer", "odata.maxpagesize=2").json(&listing)).await;
    let back = json!({
        "Identity": identity,
        "ForwardingSmtpAddress": first["mailbox"]["ForwardingSmtpAddress"],
        "DeliverToMailboxAndForward": first["mailbox"]["DeliverToMailboxAndForward"],
    });
    assert_eq!(send(set(back)).await.0, 200);
    answer
}

/// The simulator's answer to the request an example answers.
pub(super) async fn simulated(
    which: &str,
    sim: &Simulator,
    tight: &Simulator,
    writes: &Simulator,
) -> (u16, BTreeMap<String, String>, Value) {
    let http = reqwest::Client::new();
    let graph = token(sim, GRAPH).await;
    let exchange_url = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
    let exchange = || async { http.post(&exchange_url).bearer_auth(token(sim, EXCHANGE).await) };
    let users = state(sim)["users"].as_array().unwrap().clone();
    match which {
        "graph-not-found" => {
            send(http.get(format!("{}/v1.0/users/nobody@contoso.com", sim.url())).bearer_auth(&graph)).await
        }
        "graph-throttled" | "graph-write-throttled" | "graph-batch-424" | "exchange-concurrency" => {
            simulated_throttled(which, &http, tight, writes).await
        }
        "exchange-not-found" => {
            send(exchange().await.json(&invoke("Get-CASMailbox", json!({"Identity": "ghost@contoso.com"})))).await
        }
        "exchange-casmailbox-page" => {
            let request = exchange()
                .await
                .header("Prefer", "odata.maxpagesize=2")
                .json(&invoke("Get-CASMailbox", json!({"ResultSize": "Unlimited"})));
            send(request).await
        }
        "exchange-mailbox-page" => forwarding_mailbox_page(sim, &users).await,
        "exchange-audit-bypass-page" => {
            let request = exchange()
                .await
                .header("Prefer", "odata.maxpagesize=2")
                .json(&invoke("Get-MailboxAuditBypassAssociation", json!({"ResultSize": "Unlimited"})));
            send(request).await
        }
        "token-answer" | "token-error" => {
            let app = sim.app();
            let secret = if which == "token-answer" { app.client_secret.clone() } else { "wrong".into() };
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", app.client_id.as_str()),
                ("client_secret", secret.as_str()),
                ("scope", GRAPH),
            ];
            send(http.post(format!("{}/{}/oauth2/v2.0/token", sim.url(), app.tenant_id)).form(&form)).await
        }
        "security-defaults" => {
            send(
                http.get(format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url()))
                    .bearer_auth(&graph),
            )
            .await
        }
        "mfa-requirements" => {
            let id = users[0]["id"].as_str().unwrap();
            send(http.get(format!("{}/beta/users/{id}/authentication/requirements", sim.url())).bearer_auth(&graph))
                .await
        }
        "graph-sign-ins" => {
            let query = "$filter=clientAppUsed%20eq%20%27Authenticated%20SMTP%27&$top=1";
            let url = format!("{}/v1.0/auditLogs/signIns?{query}", sim.url());
            send(http.get(url).bearer_auth(&graph)).await
        }
        "graph-not-premium" => {
            let basic = start(SimConfig {
                population: Population::Generated { count: 5 },
                premium: false,
                ..SimConfig::default()
            })
            .await;
            let bearer = token(&basic, GRAPH).await;
            send(http.get(format!("{}/v1.0/auditLogs/signIns", basic.url())).bearer_auth(&bearer)).await
        }
        "openid-configuration" => {
            send(http.get(format!("{}/{}/v2.0/.well-known/openid-configuration", sim.url(), sim.app().domain))).await
        }
        other => panic!("no simulated counterpart named {other}"),
    }
}
