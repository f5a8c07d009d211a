//! Authentication policies through the Exchange admin API: the organisation's default, the
//! policies by Name, DN or Guid, Get-User filtered on a policy's DN (Microsoft's own procedure) and
//! Set-User -AuthenticationPolicy, with /_sim/smtp-submit following every change.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Caller, layered, seeded_with, user};
use crate::support::{start, state};

fn detail(body: &Value) -> String {
    body["error"]["details"][0]["message"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn exchange_serves_the_default_policy_the_policies_and_users_by_policy() {
    let sim = start(layered(300, 0.3)).await;
    let caller = Caller::of(&sim).await;
    let snapshot = state(&sim);
    let (status, body) = caller.invoke("Get-OrganizationConfig", json!({})).await;
    let default = body["value"][0]["DefaultAuthenticationPolicy"].as_str().unwrap().to_string();
    assert_eq!(status, 200);
    assert_eq!(default, snapshot["organizationConfig"]["DefaultAuthenticationPolicy"]);
    assert!(
        default.starts_with("CN=Block Basic Auth - organization default,CN=Auth Policies,CN=Configuration,CN=contoso")
    );

    let (_, body) = caller.invoke("Get-AuthenticationPolicy", json!({})).await;
    let policies = body["value"].as_array().unwrap().clone();
    assert_eq!(policies.len(), 4);
    let block = policies.iter().find(|p| p["Name"] == "Block Basic Auth").unwrap();
    assert_eq!(
        (block["AllowBasicAuthSmtp"].as_bool(), block["AllowBasicAuthImap"].as_bool()),
        (Some(false), Some(false))
    );
    let dn = block["DistinguishedName"].as_str().unwrap();
    for identity in ["block basic auth", dn, block["Guid"].as_str().unwrap()] {
        let (status, body) = caller.invoke("Get-AuthenticationPolicy", json!({"Identity": identity})).await;
        assert_eq!((status, body["value"][0]["Name"].as_str()), (200, Some("Block Basic Auth")), "{identity}");
    }
    let (status, body) = caller.invoke("Get-AuthenticationPolicy", json!({"Identity": "No such policy"})).await;
    assert!([404, 500].contains(&status) && detail(&body).contains("ManagementObjectNotFoundException"), "{body}");

    // Microsoft's procedure: the DN from Get-AuthenticationPolicy, then Get-User -Filter on it.
    let filter = format!("AuthenticationPolicy -eq '{dn}'");
    let mut url = format!("{}?$select=UserPrincipalName,AuthenticationPolicy", caller.invoke_url);
    let (mut found, mut pages) = (BTreeSet::new(), 0);
    loop {
        let (status, body) =
            caller.invoke_at(&url, "Get-User", json!({"Filter": filter, "ResultSize": "Unlimited"}), 3).await;
        assert_eq!(status, 200, "{body}");
        for user in body["value"].as_array().unwrap() {
            assert_eq!((user["AuthenticationPolicy"].as_str(), user.as_object().unwrap().len()), (Some(dn), 2));
            found.insert(user["UserPrincipalName"].as_str().unwrap().to_string());
        }
        pages += 1;
        match body["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    let expected: BTreeSet<String> = snapshot["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["AuthenticationPolicy"] == dn)
        .map(|u| u["userPrincipalName"].as_str().unwrap().to_string())
        .collect();
    assert!(expected.len() > 3 && pages > 1);
    assert_eq!(found, expected);

    let (status, body) = caller.invoke("Get-User", json!({"ResultSize": 10})).await;
    assert_eq!((status, body["value"].as_array().map(Vec::len)), (200, Some(10)));
    assert!(body["@adminapi.warnings"][0].as_str().unwrap().starts_with("There are more results available"));
    for (filter, text) in [
        ("AuthenticationPolicy -like 'CN=Block*'", "Invalid filter syntax"),
        ("AuthenticationPolicy -eq 'unterminated", "Invalid filter syntax"),
        ("(AuthenticationPolicy -eq $null) -and (Department -eq 'x')", "Invalid filter syntax"),
        ("Department -eq 'Sales'", "is not a recognized filterable property"),
    ] {
        let (status, body) = caller.invoke("Get-User", json!({"Filter": filter})).await;
        assert!(status == 400 && detail(&body).contains(text), "{filter}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn set_user_assigns_a_policy_by_any_identity_and_removes_it_with_null() {
    let sim = start(layered(300, 0.3)).await;
    let caller = Caller::of(&sim).await;
    let snapshot = state(&sim);
    let upn = seeded_with(&snapshot, &[], &["smtp-relay-devices-group"])[0].clone();
    caller.security_defaults(false).await;
    assert_eq!(caller.submit(&upn, "basic", None).await["accepted"], true);
    let set = |policy: Value| json!({"Identity": upn, "AuthenticationPolicy": policy});
    assert_eq!(caller.invoke("Set-User", set(json!("Block Basic Auth"))).await.0, 200);
    let (_, body) = caller.invoke("Get-User", json!({"Identity": upn})).await;
    let user = &body["value"][0];
    assert!(user["AuthenticationPolicy"].as_str().unwrap().starts_with("CN=Block Basic Auth,CN=Auth Policies,"));
    assert_eq!(
        (user["RecipientTypeDetails"].as_str(), user["UserPrincipalName"].as_str()),
        (Some("UserMailbox"), Some(upn.as_str()))
    );
    assert_eq!(user["ExternalDirectoryObjectId"], self::user(&state(&sim), &upn)["id"]);
    let answer = caller.submit(&upn, "basic", None).await;
    assert_eq!(answer["layer"], "authentication-policy");
    assert!(
        answer["reply"]
            .as_str()
            .unwrap()
            .starts_with("535 5.7.139 Authentication unsuccessful, basic authentication is disabled.")
    );
    assert_eq!(caller.submit(&upn, "oauth", None).await["accepted"], true, "policies govern Basic only");

    // No policy of its own: the organisation's default (which denies Basic SMTP) applies.
    assert_eq!(caller.invoke("Set-User", set(Value::Null)).await.0, 200);
    let (_, body) = caller.invoke("Get-User", json!({"Identity": upn})).await;
    assert_eq!(body["value"][0]["AuthenticationPolicy"], Value::Null);
    assert_eq!(caller.submit(&upn, "basic", None).await["layer"], "authentication-policy");
    let (status, body) = caller.invoke("Set-User", set(json!("Allow Basic SMTP"))).await;
    assert_eq!((status, body["@adminapi.warnings"].as_array().map(Vec::len)), (200, Some(0)));
    assert_eq!(caller.submit(&upn, "basic", None).await["accepted"], true);
    let (status, body) = caller.invoke("Set-User", set(json!("No such policy"))).await;
    assert!([404, 500].contains(&status) && detail(&body).contains("couldn't be found"), "{body}");
    let (status, body) =
        caller.invoke("Set-User", json!({"Identity": "ghost@contoso.com", "AuthenticationPolicy": null})).await;
    assert!([404, 500].contains(&status) && detail(&body).contains("ManagementObjectNotFoundException"), "{body}");
}
