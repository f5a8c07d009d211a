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
