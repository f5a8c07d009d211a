use super::*;

/// The table of hosts and token audiences, held to Microsoft's pages: "Microsoft Graph national
/// cloud deployments" (token service and Graph) and "Get started with the Exchange Online Admin
/// API" (Exchange). A change here must come with a change on those pages.
#[test]
fn every_cloud_has_its_published_hosts() {
    let hosts = |cloud| {
        let e = Endpoints::of(cloud);
        (e.login, e.graph, e.exchange, e.exchange_resource)
    };
    assert_eq!(
        hosts(CloudName::Global),
        (
            "https://login.microsoftonline.com".into(),
            "https://graph.microsoft.com".into(),
            "https://outlook.office365.com".into(),
            "https://outlook.office365.com".into()
        )
    );
    assert_eq!(
        hosts(CloudName::Usgov),
        (
            "https://login.microsoftonline.us".into(),
            "https://graph.microsoft.us".into(),
            "https://outlook.office365.us".into(),
            "https://outlook.office365.us".into()
        )
    );
    assert_eq!(
        hosts(CloudName::UsgovDod),
        (
            "https://login.microsoftonline.us".into(),
            "https://dod-graph.microsoft.us".into(),
            "https://outlook-dod.office365.us".into(),
            "https://outlook-dod.office365.us".into()
        )
    );
    assert_eq!(
        hosts(CloudName::China),
        (
            "https://login.chinacloudapi.cn".into(),
            "https://microsoftgraph.chinacloudapi.cn".into(),
            "https://outlook.office365.cn".into(),
            "https://outlook.office365.cn".into()
        )
    );
}

#[test]
fn the_limit_header_is_a_fraction() {
    assert_eq!(limit_fraction("0.85"), Some(0.85));
    assert_eq!(limit_fraction("1.8"), Some(1.8));
    assert_eq!(limit_fraction("85"), Some(0.85), "a percentage, should one come");
    assert_eq!(limit_fraction("x"), None);
}

/// A client whose every host is a closed port: any request it made would fail.
fn client_of_nowhere() -> CloudClient {
    let nowhere = "http://127.0.0.1:9".to_string();
    let endpoints = Endpoints {
        login: nowhere.clone(),
        graph: nowhere.clone(),
        exchange: nowhere.clone(),
        graph_resource: nowhere.clone(),
        exchange_resource: nowhere,
    };
    let http = reqwest::Client::new();
    let secret = auth::Credential::Secret(crate::support::secret::SecretString::new("not used"));
    let timeout = std::time::Duration::from_secs(5);
    let tokens = auth::TokenSource::new(http.clone(), &endpoints.login, "contoso.com", "app", secret, timeout);
    let pacing = Pacing {
        graph_rps: 100.0,
        graph_write_rps: 100.0,
        exchange_rps: 100.0,
        exchange_inflight: 1,
        adaptive: false,
        batch: false,
    };
    CloudClient::new(http, endpoints, "contoso.com".into(), tokens, pacing, RetryPolicy { max_attempts: 1, timeout })
}

#[tokio::test]
async fn a_write_whose_gate_stays_shut_never_goes_out() {
    let client = client_of_nowhere();
    let (property, value) = (crate::settings::smtp_auth::PROPERTY, crate::settings::Value::Enabled);
    let mut call =
        crate::settings::mailbox_property::write("contoso.com", "adele@contoso.com", property, value).unwrap();
    call.gate = Some(Gate(std::sync::Arc::new(|| Box::pin(async { Err("the disk is full".to_string()) }))));
    match client.send(&call).await {
        Err(CallError::Local { code, message }) => {
            assert_eq!((code, message.as_str()), (NOT_RECORDED, "the disk is full"));
        }
        // A token asked of the closed port fails as Auth: the gate was passed by.
        other => panic!("the write went on past its gate: {other:?}"),
    }
}
