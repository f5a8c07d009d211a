//! The simulator's model of every layer that decides whether a device can send with SMTP AUTH,
//! over HTTP: Conditional Access, groups and roles in Graph, authentication policies in the
//! Exchange admin API, `--smtp-blockers` seeding, and `/_sim/smtp-submit` answering as a device
//! would hear it.

use std::collections::{BTreeMap, BTreeSet};

use remediate_sim::{Population, SimConfig, Simulator};
use serde_json::{Value, json};

use crate::support::{EXCHANGE, GRAPH, start, state, stats, token};

mod exchange;
mod seeding;

const EXCHANGE_ADMINISTRATOR: &str = "29232cdf-9323-42fd-ade2-1d097af3e4de";

fn layered(count: usize, share: f64) -> SimConfig {
    SimConfig {
        population: Population::Generated { count },
        throttle: false,
        smtp_blockers: share,
        seed: 5,
        ..SimConfig::default()
    }
}

/// One client of one simulated tenant, with both tokens.
struct Caller {
    http: reqwest::Client,
    base: String,
    graph: String,
    exchange: String,
    invoke_url: String,
}

impl Caller {
    async fn of(sim: &Simulator) -> Caller {
        Caller {
            http: reqwest::Client::new(),
            base: sim.url(),
            graph: token(sim, GRAPH).await,
            exchange: token(sim, EXCHANGE).await,
            invoke_url: format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (status, if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() })
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.url(path)).bearer_auth(&self.graph)).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(self.url(path)).bearer_auth(&self.graph).json(&body)).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(self.url(path)).bearer_auth(&self.graph)).await
    }

    /// Every item of a Graph listing, following `@odata.nextLink`, and the number of pages.
    async fn all(&self, first: &str) -> (Vec<Value>, usize) {
        let (mut items, mut pages, mut next) = (Vec::new(), 0, Some(first.to_string()));
        while let Some(link) = next {
            let (status, body) = self.get(&link).await;
            assert_eq!(status, 200, "{link}: {body}");
            items.extend(body["value"].as_array().unwrap().iter().cloned());
            pages += 1;
            next = body["@odata.nextLink"].as_str().map(str::to_string);
        }
        (items, pages)
    }

    async fn invoke(&self, cmdlet: &str, parameters: Value) -> (u16, Value) {
        self.invoke_at(&self.invoke_url, cmdlet, parameters, 1000).await
    }

    async fn invoke_at(&self, url: &str, cmdlet: &str, parameters: Value, page: usize) -> (u16, Value) {
        let body = json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}});
        let request =
            self.http.post(url).bearer_auth(&self.exchange).header("Prefer", format!("odata.maxpagesize={page}"));
        self.send(request.json(&body)).await
    }

    async fn submit(&self, upn: &str, auth: &str, address: Option<&str>) -> Value {
        let mut body = json!({"userPrincipalName": upn, "auth": auth});
        if let Some(address) = address {
            body["clientIp"] = address.into();
        }
        let (status, answer) = self.send(self.http.post(self.url("/_sim/smtp-submit")).json(&body)).await;
        assert_eq!(status, 200, "{answer}");
        answer
    }

    async fn security_defaults(&self, enabled: bool) {
        let url = self.url("/v1.0/policies/identitySecurityDefaultsEnforcementPolicy");
        let (status, _) =
            self.send(self.http.patch(url).bearer_auth(&self.graph).json(&json!({"isEnabled": enabled}))).await;
        assert_eq!(status, 204);
    }
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn group_id(caller: &Caller, name: &str) -> String {
    let filter = encode(&format!("displayName eq '{name}'"));
    let (status, body) = caller.get(&format!("/v1.0/groups?$filter={filter}&$select=id,displayName")).await;
    assert_eq!((status, body["value"].as_array().map(Vec::len)), (200, Some(1)), "{name}: {body}");
    assert_eq!(body["value"][0].as_object().unwrap().len(), 2, "$select keeps id and displayName");
    body["value"][0]["id"].as_str().unwrap().to_string()
}

/// The seeded users with exactly these blockers and look-alikes.
fn seeded_with(state: &Value, blockers: &[&str], look_alikes: &[&str]) -> Vec<String> {
    let matches = |list: &Value, wanted: &[&str]| {
        list.as_array().unwrap().iter().map(|v| v.as_str().unwrap()).eq(wanted.iter().copied())
    };
    let seeded = state["seededSmtpBlockers"].as_array().unwrap().iter();
    let chosen = seeded.filter(|s| matches(&s["blockers"], blockers) && matches(&s["lookAlikes"], look_alikes));
    chosen.map(|s| s["userPrincipalName"].as_str().unwrap().to_string()).collect()
}

fn user<'a>(state: &'a Value, upn: &str) -> &'a Value {
    state["users"].as_array().unwrap().iter().find(|u| u["userPrincipalName"] == upn).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn conditional_access_policies_are_listed_in_full_and_paged() {
    let sim = start(layered(300, 0.3)).await;
    let caller = Caller::of(&sim).await;
    let (policies, pages) = caller.all("/v1.0/identity/conditionalAccess/policies").await;
    assert_eq!((policies.len(), pages), (9, 2), "a default page of five");
    assert_eq!(Value::from(policies.clone()), state(&sim)["conditionalAccessPolicies"]);
    let states: BTreeSet<&str> = policies.iter().map(|p| p["state"].as_str().unwrap()).collect();
    assert_eq!(states, BTreeSet::from(["disabled", "enabled", "enabledForReportingButNotEnforced"]));
    let block = policies.iter().find(|p| p["displayName"] == "Block legacy authentication").unwrap();
    assert_eq!(block["conditions"]["clientAppTypes"], json!(["exchangeActiveSync", "other"]));
    assert_eq!(block["grantControls"]["builtInControls"], json!(["block"]));
    assert_eq!(block["grantControls"]["operator"], "OR");
    assert_eq!(block["conditions"]["users"]["excludeRoles"], json!(["62e90394-69f5-4237-9190-012177145e10"]));
    assert!(policies.iter().any(|p| p["grantControls"].is_null()), "a session-controls-only policy");
    assert!(policies.iter().any(|p| !p["conditions"]["locations"].is_null()), "a policy with a location");

    let (small, pages) = caller.all("/v1.0/identity/conditionalAccess/policies?$top=2&$select=id,state").await;
    assert_eq!((small.len(), pages), (9, 5));
    assert!(small.iter().all(|p| p.as_object().unwrap().len() == 2), "$select holds across pages");
    let (locations, _) = caller.all("/v1.0/identity/conditionalAccess/namedLocations").await;
    assert_eq!(locations[0]["@odata.type"], "#microsoft.graph.ipNamedLocation");
    let (status, body) = caller.get("/v1.0/identity/conditionalAccess/policies?$filter=state%20eq%20'enabled'").await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("Request_UnsupportedQuery")));

    let denied = start(SimConfig { deny_permissions: vec!["Policy.Read.All".into()], ..layered(20, 0.3) }).await;
    let (status, body) = Caller::of(&denied).await.get("/v1.0/identity/conditionalAccess/policies").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("Authorization_RequestDenied")));
}

/// The transitive members of a group, as the state's direct memberships say.
fn transitive_from_state(state: &Value, group: &str) -> BTreeSet<String> {
    let groups: BTreeMap<&str, &Value> =
        state["groups"].as_array().unwrap().iter().map(|g| (g["id"].as_str().unwrap(), &g["members"])).collect();
    let (mut found, mut queue) = (BTreeSet::new(), vec![group.to_string()]);
    while let Some(current) = queue.pop() {
        for member in groups[current.as_str()].as_array().unwrap() {
            let id = member["id"].as_str().unwrap().to_string();
            if found.insert(id.clone()) && member["@odata.type"] == "#microsoft.graph.group" {
                queue.push(id);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_are_found_by_name_and_list_members_transitively_in_pages() {
    let sim = start(layered(600, 0.3)).await;
    let caller = Caller::of(&sim).await;
    let snapshot = state(&sim);
    let blocked = group_id(&caller, "legacy authentication BLOCKED").await;
    let (status, body) = caller.get(&format!("/v1.0/groups/{blocked}")).await;
    assert_eq!((status, body["displayName"].as_str()), (200, Some("Legacy authentication blocked")));

    let (direct, _) = caller.all(&format!("/v1.0/groups/{blocked}/members")).await;
    let nested = direct.iter().find(|m| m["@odata.type"] == "#microsoft.graph.group").expect("a nested group");
    assert_eq!(nested["displayName"], "Scanners - Building A");
    let (all, pages) = caller.all(&format!("/v1.0/groups/{blocked}/transitiveMembers?$top=7&$select=id")).await;
    assert!(pages > 2, "{pages} pages of seven");
    assert!(all.iter().all(|m| m.as_object().unwrap().len() == 2), "$select=id keeps @odata.type");
    let ids: BTreeSet<String> = all.iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids.len(), all.len(), "nobody twice");
    assert_eq!(ids, transitive_from_state(&snapshot, &blocked));
    assert!(ids.len() > direct.len(), "nested members come through");

    // The exclusion group a client adds users to is found by name; the relay group is in no policy.
    let exclusion = group_id(&caller, "CA exclusion - legacy authentication").await;
    let relay = group_id(&caller, "SMTP relay devices").await;
    let policies = snapshot["conditionalAccessPolicies"].to_string();
    assert!(policies.contains(&exclusion) && !policies.contains(&relay));

    for (path, status) in [
        (format!("/v1.0/groups/{blocked}/members?$top=1000"), 400),
        ("/v1.0/groups/not-a-group".to_string(), 400),
        ("/v1.0/groups/00000000-0000-0000-0000-00000000abcd/members".to_string(), 404),
        (format!("/v1.0/groups/{blocked}/members?$filter=userType%20eq%20'Member'"), 400),
        ("/v1.0/groups?$filter=startswith(displayName,'CA')".to_string(), 400),
    ] {
        assert_eq!(caller.get(&path).await.0, status, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn adding_a_device_to_the_exclusion_group_unblocks_it_and_a_second_add_answers_400() {
    let sim = start(layered(600, 0.3)).await;
    let caller = Caller::of(&sim).await;
    caller.security_defaults(false).await;
    let snapshot = state(&sim);
    let upn = seeded_with(&snapshot, &["conditional-access-blocks-legacy-authentication"], &[])[0].clone();
    let id = user(&snapshot, &upn)["id"].as_str().unwrap().to_string();
    let refused = caller.submit(&upn, "basic", None).await;
    assert_eq!(refused["layer"], "conditional-access");
    let reply = refused["reply"].as_str().unwrap();
    assert!(
        reply.starts_with("535 5.7.139 Authentication unsuccessful, the request did not meet the criteria"),
        "{reply}"
    );

    let (exclusion, blocked, relay) = (
        group_id(&caller, "CA exclusion - legacy authentication").await,
        group_id(&caller, "Legacy authentication blocked").await,
        group_id(&caller, "SMTP relay devices").await,
    );
    let reference = json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
    let add = format!("/v1.0/groups/{exclusion}/members/$ref");
    assert_eq!(caller.post(&add, reference.clone()).await, (204, Value::Null));
    let (status, body) = caller.post(&add, reference).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("Request_BadRequest")));
    assert_eq!(
        body["error"]["message"],
        "One or more added object references already exist for the following modified properties: 'members'."
    );
    assert_eq!(caller.submit(&upn, "basic", None).await["reply"], "235 2.7.0 Authentication successful");

    let check = json!({"groupIds": [exclusion, relay, blocked]});
    for path in
        [format!("/v1.0/users/{upn}/checkMemberGroups"), format!("/v1.0/directoryObjects/{id}/checkMemberGroups")]
    {
        let (status, body) = caller.post(&path, check.clone()).await;
        assert_eq!((status, body["value"].clone()), (200, json!([exclusion, blocked])), "{path}");
    }
    let ghost =
        json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/00000000-0000-0000-0000-0000000000aa"});
    assert_eq!(caller.post(&add, ghost).await.0, 404);

    // The same routes inside $batch: removal, then a check that no longer finds the group.
    let batch = json!({"requests": [
        {"id": "1", "method": "DELETE", "url": format!("/groups/{exclusion}/members/{id}/$ref")},
        {"id": "2", "method": "POST", "url": format!("/users/{id}/checkMemberGroups"), "body": check, "headers": {"Content-Type": "application/json"}},
    ]});
    let (status, body) = caller.post("/v1.0/$batch", batch).await;
    assert_eq!(status, 200);
    assert_eq!(body["responses"][0]["status"], 204);
    assert_eq!(
        (body["responses"][1]["status"].as_u64(), body["responses"][1]["body"]["value"].clone()),
        (Some(200), json!([blocked]))
    );
    assert_eq!(caller.submit(&upn, "basic", None).await["layer"], "conditional-access");
    let (status, body) = caller.delete(&format!("/v1.0/groups/{exclusion}/members/{id}/$ref")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
    assert_eq!(stats(&sim)["writes_total"], 3, "security defaults, one add and one removal");
}

#[tokio::test(flavor = "multi_thread")]
async fn role_assignments_filter_by_role_and_expand_the_principal() {
    let sim = start(layered(600, 0.3)).await;
    let caller = Caller::of(&sim).await;
    let filter = encode(&format!("roleDefinitionId eq '{EXCHANGE_ADMINISTRATOR}'"));
    let (assignments, _) =
        caller.all(&format!("/v1.0/roleManagement/directory/roleAssignments?$filter={filter}&$expand=principal")).await;
    let expected = state(&sim)["roleAssignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["roleDefinitionId"] == EXCHANGE_ADMINISTRATOR)
        .count();
    assert_eq!(assignments.len(), expected);
    assert!(
        assignments.iter().all(|a| a["roleDefinitionId"] == EXCHANGE_ADMINISTRATOR && a["directoryScopeId"] == "/")
    );
    assert!(assignments.iter().all(|a| a["principal"]["id"] == a["principalId"]));
    let group = assignments.iter().find(|a| a["principal"]["@odata.type"] == "#microsoft.graph.group").unwrap();
    assert_eq!(group["principal"]["displayName"], "Exchange administrators");
    assert!(assignments.iter().any(|a| a["principal"]["@odata.type"] == "#microsoft.graph.user"));
    let base = "/v1.0/roleManagement/directory/roleAssignments";
    assert_eq!(caller.get(&format!("{base}?$expand=roleDefinition")).await.0, 400);
    assert_eq!(caller.get(&format!("{base}?$filter=directoryScopeId%20eq%20'/'")).await.0, 400);
    let denied = start(SimConfig {
        deny_permissions: vec![
            "RoleManagement.Read.Directory".into(),
            "RoleManagement.Read.All".into(),
            "Directory.Read.All".into(),
        ],
        ..layered(20, 0.3)
    })
    .await;
    assert_eq!(Caller::of(&denied).await.get(base).await.0, 403);
}
