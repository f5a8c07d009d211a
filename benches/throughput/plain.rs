//! The way a plain script runs the fix, for comparison: per mailbox, one request after another
//! (find the user, read MFA, read SMTP AUTH, write what differs), five mailboxes at a time, each
//! request retried up to three times on 429, 503 and 504, waiting out `Retry-After` (else 2, 4, 8
//! seconds), as Microsoft's SDK retry handler does. No batching, no bulk reads, no pacing.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

pub(crate) struct Plain {
    http: reqwest::Client,
    url: String,
    tenant: String,
    graph: String,
    exchange: String,
}

async fn token(http: &reqwest::Client, url: &str, env: &[(String, String)], scope: &str) -> String {
    let var = |name: &str| env.iter().find(|(k, _)| k == name).unwrap().1.clone();
    let form = [
        ("grant_type", "client_credentials".to_string()),
        ("client_id", var("AZURE_CLIENT_ID")),
        ("client_secret", var("AZURE_CLIENT_SECRET")),
        ("scope", scope.to_string()),
    ];
    let answer: Value = http
        .post(format!("{url}/{}/oauth2/v2.0/token", var("AZURE_TENANT_ID")))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_string()
}

impl Plain {
    pub(crate) async fn connect(url: &str, env: &[(String, String)]) -> Plain {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
        let graph = token(&http, url, env, "https://graph.microsoft.com/.default").await;
        let exchange = token(&http, url, env, "https://outlook.office365.com/.default").await;
        let tenant = env.iter().find(|(k, _)| k == "AZURE_TENANT_ID").unwrap().1.clone();
        Plain { http, url: url.to_string(), tenant, graph, exchange }
    }

    /// One request, retried up to three times; the status and body of the last answer (0 when
    /// none came).
    async fn send(&self, method: reqwest::Method, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut last = (0, Value::Null);
        for attempt in 0..4u32 {
            let mut request = self.http.request(method.clone(), format!("{}/{path}", self.url)).bearer_auth(token);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let wait = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    let body = response.json::<Value>().await.unwrap_or(Value::Null);
                    last = (status, body);
                    if !matches!(status, 429 | 503 | 504) {
                        return last;
                    }
                    retry_after.map(Duration::from_secs)
                }
                Err(_) => None,
            };
            if attempt < 3 {
                tokio::time::sleep(wait.unwrap_or(Duration::from_secs(2 << attempt))).await;
            }
        }
        last
    }

    fn exchange_body(cmdlet: &str, parameters: Value) -> Value {
        json!({"CmdletInput": {"CmdletName": cmdlet, "Parameters": parameters}})
    }

    /// The fix for one mailbox; whether every step of it went through.
    async fn mailbox(&self, upn: &str) -> bool {
        use reqwest::Method;
        let (status, user) =
            self.send(Method::GET, &format!("v1.0/users/{upn}?$select=id,userPrincipalName"), &self.graph, None).await;
        let Some(id) = user["id"].as_str().filter(|_| status == 200) else { return false };
        let mfa_path = format!("beta/users/{id}/authentication/requirements");
        let (status, mfa) = self.send(Method::GET, &mfa_path, &self.graph, None).await;
        if status != 200 {
            return false;
        }
        let invoke = format!("adminapi/beta/{}/InvokeCommand", self.tenant);
        let read = Plain::exchange_body("Get-CASMailbox", json!({"Identity": upn}));
        let (status, mailbox) = self.send(Method::POST, &invoke, &self.exchange, Some(read)).await;
        if status != 200 {
            return false;
        }
        if mailbox["value"][0]["SmtpClientAuthenticationDisabled"] != json!(false) {
            let write = Plain::exchange_body(
                "Set-CASMailbox",
                json!({"Identity": upn, "SmtpClientAuthenticationDisabled": false}),
            );
            if !(200..300).contains(&self.send(Method::POST, &invoke, &self.exchange, Some(write)).await.0) {
                return false;
            }
        }
        if mfa["perUserMfaState"] != "disabled" {
            let body = json!({"perUserMfaState": "disabled"});
            if !(200..300).contains(&self.send(Method::PATCH, &mfa_path, &self.graph, Some(body)).await.0) {
                return false;
            }
        }
        true
    }

    /// Turns security defaults off, then fixes every mailbox five at a time; the mailboxes that
    /// failed.
    pub(crate) async fn run(&self, upns: Vec<String>) -> u64 {
        let policy = "v1.0/policies/identitySecurityDefaultsEnforcementPolicy";
        self.send(reqwest::Method::PATCH, policy, &self.graph, Some(json!({"isEnabled": false}))).await;
        let done: Vec<bool> =
            futures_util::stream::iter(upns.iter()).map(|upn| self.mailbox(upn)).buffer_unordered(5).collect().await;
        done.iter().filter(|ok| !**ok).count() as u64
    }
}
