use super::*;

#[test]
fn filters_parse_quoted_values_and_refuse_injection() {
    assert_eq!(parse_filter("mail eq 'o''brien@contoso.com'"), Some(Filter::Mail("o'brien@contoso.com".into())));
    assert_eq!(parse_filter("proxyAddresses/any(x:x eq 'smtp:a@b.com')"), Some(Filter::Proxy("smtp:a@b.com".into())));
    assert_eq!(parse_filter("mail eq 'a@b.com' or mail eq 'c@d.com'"), None);
    assert_eq!(parse_filter("mail eq 'unterminated"), None);
}

#[test]
fn routes_decode_segments_once() {
    let seg =
        |s: &str| s.split('/').map(|p| percent_decode_str(p).decode_utf8().unwrap().into_owned()).collect::<Vec<_>>();
    assert_eq!(route_of(&seg("users/a%2F..%2Fx@c.com"), false), Ok(Route::User("a/../x@c.com".into())));
    assert_eq!(
        route_of(&seg("users/x@c.com/authentication/requirements"), true),
        Ok(Route::Requirements("x@c.com".into()))
    );
    assert!(route_of(&seg("users/x@c.com/authentication/requirements"), false).is_err());
    assert_eq!(route_of(&seg("users('$x@c.com')"), false), Ok(Route::User("$x@c.com".into())));
}

#[test]
fn patching_account_enabled_changes_the_user_and_other_properties_are_refused() {
    let config = crate::SimConfig { population: crate::Population::Generated { count: 20 }, ..Default::default() };
    let service = Service::new(config, "http://127.0.0.1:1".into());
    let ids = RequestIds::new(None);
    let upn = service.tenant().users[0].upn.to_string();
    let patch = |body: &str| {
        let path = format!("/users/{upn}");
        let call = parse(Method::PATCH, false, &path, "", body.as_bytes(), &ids).map_err(|r| r.reply.status).unwrap();
        execute(&service, &call, &ids)
    };
    assert_eq!(patch(r#"{"accountEnabled": false}"#).status, StatusCode::NO_CONTENT);
    assert!(!service.tenant().users[0].account_enabled);
    assert_eq!(service.tenant().users[0].writes, 1);
    for refused in [r#"{"accountEnabled": "false"}"#, r#"{"accountEnabled": true, "displayName": "x"}"#, "{}"] {
        let reply = patch(refused);
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{refused}");
        assert_eq!(reply.body.unwrap()["error"]["code"], "Request_BadRequest");
    }
    assert!(!service.tenant().users[0].account_enabled, "a refused body changes nothing");
    assert_eq!(patch(r#"{"accountEnabled": true}"#).status, StatusCode::NO_CONTENT);
    assert!(service.tenant().users[0].account_enabled);
}
