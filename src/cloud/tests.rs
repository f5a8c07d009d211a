use super::*;

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
            "https://webmail.apps.mil".into(),
            "https://webmail.apps.mil".into()
        )
    );
    assert_eq!(
        hosts(CloudName::China),
        (
            "https://login.partner.microsoftonline.cn".into(),
            "https://microsoftgraph.chinacloudapi.cn".into(),
            "https://partner.outlook.cn".into(),
            "https://partner.outlook.cn".into()
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
