//! Every endpoint of the simulated tenant over HTTP: status codes, bodies, error shapes, paging,
//! batches, and the token's audience check.

use std::time::Duration;

use remediate_sim::{Population, SimConfig};
use serde_json::{Value, json};

use crate::support::{EXCHANGE, GRAPH, start, state, stats, token};

fn quiet_tenant(count: usize) -> SimConfig {
    SimConfig { population: Population::Generated { count }, throttle: false, ..SimConfig::default() }
}

async fn send(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    (status, headers, body)
}

fn invoke(cmdlet: &str, parameters: Value) -> Value {
    json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}})
}

#[tokio::test(flavor = "multi_thread")]
async fn token_endpoint_issues_and_refuses_like_the_identity_platform() {
    let sim = start(quiet_tenant(10)).await;
    let app = sim.app().clone();
    let http = reqwest::Client::new();
    let url = format!("{}/{}/oauth2/v2.0/token", sim.url(), app.tenant_id);
    let form = |secret: &str, scope: &str| {
        vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".into(), app.client_id.clone()),
            ("client_secret".into(), secret.to_string()),
            ("scope".into(), scope.to_string()),
        ]
    };
    let (status, _, body) = send(http.post(&url).form(&form(&app.client_secret, GRAPH))).await;
    assert_eq!(status, 200);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert!(body["access_token"].as_str().unwrap().len() > 20);

    let (status, _, body) = send(http.post(&url).form(&form("wrong", GRAPH))).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"].as_str().unwrap().starts_with("AADSTS7000215"));
    assert_eq!(body["error_codes"], json!([7000215]));

    let (status, _, body) = send(http.post(&url).form(&form(&app.client_secret, "https://graph.microsoft.com"))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));

    let other_tenant = format!("{}/00000000-0000-0000-0000-000000000001/oauth2/v2.0/token", sim.url());
    let (status, _, body) = send(http.post(&other_tenant).form(&form(&app.client_secret, GRAPH))).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"], json!([90002]));
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_checked_for_presence_audience_and_expiry() {
    let sim = start(quiet_tenant(10)).await;
    let http = reqwest::Client::new();
    let policy = format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url());
    let (status, _, body) = send(http.get(&policy)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("InvalidAuthenticationToken")));

    let exchange_token = token(&sim, EXCHANGE).await;
    let (status, _, body) = send(http.get(&policy).bearer_auth(&exchange_token)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["message"], "Invalid audience.");

    let graph_token = token(&sim, GRAPH).await;
    let invoke_url = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
    let (status, _, _) =
        send(http.post(&invoke_url).bearer_auth(&graph_token).json(&invoke("Get-TransportConfig", json!({})))).await;
    assert_eq!(status, 401, "a Graph token must not open Exchange");

    let expiring = start(SimConfig { token_lifetime: Duration::ZERO, ..quiet_tenant(1) }).await;
    let stale = token(&expiring, GRAPH).await;
    let url = format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", expiring.url());
    let (status, _, body) = send(http.get(&url).bearer_auth(&stale)).await;
    assert_eq!(status, 401);
    assert!(body["error"]["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_policies_users_filters_and_mfa_requirements() {
    let sim = start(quiet_tenant(300)).await;
    let http = reqwest::Client::new();
    let bearer = token(&sim, GRAPH).await;
    let get = |path: &str| http.get(format!("{}{path}", sim.url())).bearer_auth(&bearer);

    let policy = "/v1.0/policies/identitySecurityDefaultsEnforcementPolicy";
    let (status, _, body) = send(get(policy)).await;
    assert_eq!(
        (status, body["isEnabled"].as_bool(), body["id"].as_str()),
        (200, Some(true), Some("00000000-0000-0000-0000-000000000005"))
    );
    let patch = http.patch(format!("{}{policy}", sim.url())).bearer_auth(&bearer).json(&json!({"isEnabled": false}));
    let (status, _, body) = send(patch).await;
    assert_eq!((status, body), (204, Value::Null));
    assert_eq!(state(&sim)["securityDefaultsEnabled"], false);

    let snapshot = state(&sim);
    let users = snapshot["users"].as_array().unwrap();
    let aliased = users.iter().find(|u| u["hasMailbox"] == true && u["mail"] != u["userPrincipalName"]).unwrap();
    let upn = aliased["userPrincipalName"].as_str().unwrap();
    let mail = aliased["mail"].as_str().unwrap();

    let (status, _, body) = send(get(&format!("/v1.0/users/{upn}?$select=id,mail"))).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], aliased["id"]);
    assert!(body.get("userPrincipalName").is_none(), "$select keeps only what was asked");

    let (status, _, body) = send(get(&format!("/v1.0/users/{mail}"))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
    assert!(body["error"]["innerError"]["request-id"].is_string());

    let filter = format!("/v1.0/users?$filter=mail%20eq%20'{mail}'");
    let (status, _, body) = send(get(&filter)).await;
    assert_eq!((status, body["value"][0]["id"].clone()), (200, aliased["id"].clone()));

    // A default filter: no ConsistencyLevel needed (`$count` adds the count when asked).
    let proxy = format!("/v1.0/users?$filter=proxyAddresses/any(x:x%20eq%20'smtp:{upn}')");
    let (status, _, body) = send(get(&proxy)).await;
    assert_eq!((status, body["value"][0]["id"].clone()), (200, aliased["id"].clone()));
    let (status, _, body) = send(get(&format!("{proxy}&$count=true")).header("ConsistencyLevel", "eventual")).await;
    assert_eq!((status, body["@odata.count"].as_u64()), (200, Some(1)));

    let user = users.iter().find(|u| u["hasRegisteredMethod"] == true && u["perUserMfaState"] == "disabled").unwrap();
    let requirements = format!("/beta/users/{}/authentication/requirements", user["id"].as_str().unwrap());
    let (status, _, body) = send(get(&requirements)).await;
    assert_eq!((status, body["perUserMfaState"].as_str()), (200, Some("disabled")));
    let enable = http
        .patch(format!("{}{requirements}", sim.url()))
        .bearer_auth(&bearer)
        .json(&json!({"perUserMfaState": "enabled"}));
    assert_eq!(send(enable).await.0, 204);
    let (_, _, body) = send(get(&requirements)).await;
    assert_eq!(body["perUserMfaState"], "enforced", "enabled becomes enforced for a user with a method");

    let v1 = requirements.replacen("/beta/", "/v1.0/", 1);
    assert_eq!(send(get(&v1)).await.0, 400, "authentication/requirements is beta only");
    let bad = http.patch(format!("{}{requirements}", sim.url())).bearer_auth(&bearer).body("{not json");
    let (status, _, body) = send(bad.header("content-type", "application/json")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("BadRequest")));
    let delete = http.delete(format!("{}{policy}", sim.url())).bearer_auth(&bearer);
    assert_eq!(send(delete).await.0, 405);

    assert_eq!(send(get("/v1.0/nothing/here")).await.0, 400);
    assert_eq!(stats(&sim)["unmatched_requests"], 2, "the v1.0 requirements path and this one");
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_permissions_answer_403() {
    // Either Policy.ReadWrite.SecurityDefaults or Policy.ReadWrite.ConditionalAccess allows the
    // update ("Update identitySecurityDefaultsEnforcementPolicy", permissions).
    let both = vec!["Policy.ReadWrite.SecurityDefaults".into(), "Policy.ReadWrite.ConditionalAccess".into()];
    let sim = start(SimConfig { deny_permissions: both, ..quiet_tenant(5) }).await;
    let bearer = token(&sim, GRAPH).await;
    let url = format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url());
    let http = reqwest::Client::new();
    assert_eq!(send(http.get(&url).bearer_auth(&bearer)).await.0, 200, "reading needs another permission");
    let (status, _, body) = send(http.patch(&url).bearer_auth(&bearer).json(&json!({"isEnabled": false}))).await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("Authorization_RequestDenied")));
    assert_eq!(state(&sim)["securityDefaultsEnabled"], true);

    let one = vec!["Policy.ReadWrite.SecurityDefaults".into()];
    let sim = start(SimConfig { deny_permissions: one, ..quiet_tenant(5) }).await;
    let bearer = token(&sim, GRAPH).await;
    let url = format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url());
    let (status, _, _) = send(http.patch(&url).bearer_auth(&bearer).json(&json!({"isEnabled": false}))).await;
    assert_eq!(status, 204, "Policy.ReadWrite.ConditionalAccess is enough");
}

/// A read is allowed by any permission its page lists, the higher ones too, not only the least
/// one: an administrator's app that holds Directory.Read.All rehearses on the simulator as on
/// the tenant.
#[tokio::test(flavor = "multi_thread")]
async fn reads_are_allowed_by_every_permission_their_page_lists() {
    let cases: [(&str, &[&str]); 2] = [
        (
            "/v1.0/users?$top=1",
            &["User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"],
        ),
        ("/v1.0/auditLogs/signIns?$top=1", &["AuditLog.Read.All", "Directory.Read.All"]),
    ];
    let http = reqwest::Client::new();
    for (path, listed) in cases {
        for held in listed {
            let others = listed.iter().filter(|p| *p != held).map(|p| p.to_string()).collect();
            let sim = start(SimConfig { deny_permissions: others, ..quiet_tenant(5) }).await;
            let bearer = token(&sim, GRAPH).await;
            let (status, _, _) = send(http.get(format!("{}{path}", sim.url())).bearer_auth(&bearer)).await;
            assert_eq!(status, 200, "{path} with only {held}");
        }
        let none = listed.iter().map(|p| p.to_string()).collect();
        let sim = start(SimConfig { deny_permissions: none, ..quiet_tenant(5) }).await;
        let bearer = token(&sim, GRAPH).await;
        let (status, _, body) = send(http.get(format!("{}{path}", sim.url())).bearer_auth(&bearer)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (403, Some("Authorization_RequestDenied")), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_batch_answers_each_item_and_caps_at_twenty() {
    let sim = start(quiet_tenant(50)).await;
    let bearer = token(&sim, GRAPH).await;
    let http = reqwest::Client::new();
    let upn = state(&sim)["users"][0]["userPrincipalName"].as_str().unwrap().to_string();
    let requests = json!({"requests": [
        {"id": "1", "method": "GET", "url": format!("/users/{upn}?$select=id")},
        {"id": "2", "method": "GET", "url": "/users/nobody@contoso.com"},
        {"id": "3", "method": "PATCH", "url": "/policies/identitySecurityDefaultsEnforcementPolicy", "body": {"isEnabled": false}, "headers": {"Content-Type": "application/json"}},
    ]});
    let (status, _, body) =
        send(http.post(format!("{}/v1.0/$batch", sim.url())).bearer_auth(&bearer).json(&requests)).await;
    assert_eq!(status, 200);
    let statuses: Vec<(String, u64)> = body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(statuses, [("1".into(), 200), ("2".into(), 404), ("3".into(), 204)]);

    let too_many: Vec<Value> =
        (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users/x@contoso.com"})).collect();
    let (status, _, body) =
        send(http.post(format!("{}/beta/$batch", sim.url())).bearer_auth(&bearer).json(&json!({"requests": too_many})))
            .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("maximum of 20"));
}

#[tokio::test(flavor = "multi_thread")]
async fn exchange_cmdlets_identities_paging_and_errors() {
    let sim = start(quiet_tenant(120)).await;
    let bearer = token(&sim, EXCHANGE).await;
    let http = reqwest::Client::new();
    let url = format!("{}/adminapi/beta/{}/InvokeCommand", sim.url(), sim.app().tenant_id);
    let post = |body: Value| http.post(&url).bearer_auth(&bearer).header("X-CmdletName", "x").json(&body);
    let snapshot = state(&sim);
    let users = snapshot["users"].as_array().unwrap();
    let aliased = users.iter().find(|u| u["hasMailbox"] == true && u["mail"] != u["userPrincipalName"]).unwrap();

    for identity in [
        aliased["mail"].as_str().unwrap().to_uppercase(),
        format!("smtp:{}", aliased["userPrincipalName"].as_str().unwrap()),
    ] {
        let (status, _, body) = send(post(invoke("Get-CASMailbox", json!({"Identity": identity})))).await;
        assert_eq!(status, 200, "{identity}");
        assert_eq!(body["value"][0]["SmtpClientAuthenticationDisabled"], aliased["smtpClientAuthenticationDisabled"]);
    }
    for ghost in ["ghost@contoso.com", "ghost2@contoso.com"] {
        // 404 with `Ex…|Type|Message`, or 500 with the detail as JSON: only the type tells.
        let (status, _, body) = send(post(invoke("Get-CASMailbox", json!({"Identity": ghost})))).await;
        let detail = body["error"]["details"][0]["message"].as_str().unwrap();
        assert!([404, 500].contains(&status), "{status}");
        assert!(
            detail.contains("ManagementObjectNotFoundException") && detail.contains("couldn't be found"),
            "{detail}"
        );
        let parsed = remediate::testing::service_error::parse(body.to_string().as_bytes());
        assert!(remediate::testing::service_error::is_exchange_not_found(&parsed), "{parsed:?}");
        assert!(parsed.message.starts_with("The operation couldn't be performed"), "{parsed:?}");
    }

    let mut seen = std::collections::HashSet::new();
    let mut next = Some(format!("{url}?$select=PrimarySmtpAddress,SmtpClientAuthenticationDisabled"));
    let mut pages = 0;
    while let Some(link) = next {
        let request = http
            .post(&link)
            .bearer_auth(&bearer)
            .header("Prefer", "odata.maxpagesize=7")
            .json(&invoke("Get-CASMailbox", json!({"ResultSize": "Unlimited"})));
        let (status, _, body) = send(request).await;
        assert_eq!(status, 200);
        for mailbox in body["value"].as_array().unwrap() {
            assert!(mailbox.get("Identity").is_none(), "$select holds across pages");
            assert!(seen.insert(mailbox["PrimarySmtpAddress"].as_str().unwrap().to_string()), "no mailbox twice");
        }
        pages += 1;
        next = body["@odata.nextLink"].as_str().map(str::to_string);
    }
    let mailboxes = users.iter().filter(|u| u["hasMailbox"] == true).count();
    assert_eq!(seen.len(), mailboxes);
    assert_eq!(pages, mailboxes.div_ceil(7));

    let upn = aliased["userPrincipalName"].as_str().unwrap();
    let set =
        |value: Value| invoke("Set-CASMailbox", json!({"Identity": upn, "SmtpClientAuthenticationDisabled": value}));
    assert_eq!(send(post(set(json!(false)))).await.0, 200);
    let (status, _, body) = send(post(set(json!(false)))).await;
    assert_eq!(status, 200);
    assert!(body["@adminapi.warnings"][0].as_str().unwrap().contains("no settings"));
    assert_eq!(stats(&sim)["noop_writes"], 1, "writing the value already there is counted");
    assert_eq!(send(post(set(json!("yes")))).await.0, 400);

    let (status, _, body) = send(post(invoke("Get-Nothing", json!({})))).await;
    assert_eq!(status, 400);
    assert!(body["error"]["details"][0]["message"].as_str().unwrap().contains("not recognized"));
    assert_eq!(send(http.post(&url).bearer_auth(&bearer).body("{oops")).await.0, 400);
    assert_eq!(send(http.get(&url).bearer_auth(&bearer)).await.0, 405);

    let (status, _, body) = send(post(invoke("Get-TransportConfig", json!({})))).await;
    assert_eq!((status, body["value"][0]["SmtpClientAuthenticationDisabled"].as_bool()), (200, Some(true)));

    // No Exchange `$batch`: production never sends one, so the simulator serves none.
    let batch_url = format!("{}/adminapi/beta/{}/$batch", sim.url(), sim.app().tenant_id);
    assert_eq!(send(http.post(&batch_url).bearer_auth(&bearer).json(&json!({"requests": []}))).await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_restores_the_seeded_tenant() {
    let sim = start(quiet_tenant(20)).await;
    let before = state(&sim);
    let bearer = token(&sim, GRAPH).await;
    let url = format!("{}/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", sim.url());
    reqwest::Client::new().patch(&url).bearer_auth(&bearer).json(&json!({"isEnabled": false})).send().await.unwrap();
    assert_ne!(state(&sim), before);
    let reset = reqwest::Client::new().post(format!("{}/_sim/reset", sim.url())).send().await.unwrap();
    assert_eq!(reset.status().as_u16(), 204);
    assert_eq!(state(&sim), before);
    assert_eq!(stats(&sim)["writes_total"], 0);
}

/// A plain `GET /v1.0/users` pages as Graph documents it (100 a page unless `$top` says, at most
/// 999, and a next link while users remain), so an administrator's own script can be rehearsed
/// on the simulated tenant: following the links from either start gives every user once.
#[tokio::test(flavor = "multi_thread")]
async fn a_plain_users_listing_pages_by_top_and_next_links() {
    let sim = start(quiet_tenant(1500)).await;
    let http = reqwest::Client::new();
    let bearer = token(&sim, GRAPH).await;
    let everyone = state(&sim)["users"].as_array().unwrap().len();
    for (first, page) in [("/v1.0/users", 100), ("/v1.0/users?$top=999&$select=id,userPrincipalName", 999)] {
        let mut url = format!("{}{first}", sim.url());
        let mut seen = std::collections::BTreeSet::new();
        let mut pages = 0;
        loop {
            let (status, _, body) = send(http.get(&url).bearer_auth(&bearer)).await;
            assert_eq!(status, 200, "{body}");
            let values = body["value"].as_array().unwrap();
            assert!(values.len() <= page, "{first}: a page of {}", values.len());
            seen.extend(values.iter().map(|u| u["id"].as_str().unwrap().to_string()));
            pages += 1;
            match body["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => break,
            }
        }
        assert_eq!(seen.len(), everyone, "{first}: every user once");
        assert_eq!(pages, everyone.div_ceil(page), "{first}");
    }
}
