//! Building URLs from identities without letting an identity steer the request: a UPN is always
//! one percent-encoded path segment, and a value inside an OData filter is a quoted literal.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Everything but RFC 3986's unreserved characters and `@` is encoded, so `/`, `?`, `#`, `%`,
/// `+`, `'` and `$` can never change which resource a path names.
pub(crate) const SEGMENT: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'@');

/// For query values: the same set, so `&`, `=`, `+`, `#` and spaces stay inside the value.
const QUERY_VALUE: &AsciiSet = SEGMENT;

/// `users/{upn}` as Graph wants it: percent-encoded, and `users('…')` for a UPN that starts with
/// `$` (a leading `$` would otherwise read as a system query segment).
pub(crate) fn user(identity: &str) -> String {
    if identity.starts_with('$') {
        let quoted = identity.replace('\'', "''");
        return format!("users('{}')", utf8_percent_encode(&quoted, SEGMENT));
    }
    if identity == "." || identity == ".." {
        return format!("users/{}", identity.replace('.', "%2E"));
    }
    format!("users/{}", utf8_percent_encode(identity, SEGMENT))
}

/// An OData string literal: `'…'` with every `'` doubled.
pub(crate) fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `name=value` with the value percent-encoded for a query string.
pub(crate) fn query_pair(name: &str, value: &str) -> String {
    format!("{name}={}", utf8_percent_encode(value, QUERY_VALUE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_identities_stay_one_segment() {
        assert_eq!(user("a/../../policies/x@contoso.com"), "users/a%2F..%2F..%2Fpolicies%2Fx@contoso.com");
        assert_eq!(user("x?$select=id@contoso.com"), "users/x%3F%24select%3Did@contoso.com");
        assert_eq!(user("x#y@contoso.com"), "users/x%23y@contoso.com");
        assert_eq!(user("%2e%2e@contoso.com"), "users/%252e%252e@contoso.com");
        assert_eq!(user("o'brien@contoso.com"), "users/o%27brien@contoso.com");
        assert_eq!(user("user+tag@contoso.com"), "users/user%2Btag@contoso.com");
        assert_eq!(user("$admin@contoso.com"), "users('%24admin@contoso.com')");
        assert_eq!(user("jo_x.com#EXT#@contoso.onmicrosoft.com"), "users/jo_x.com%23EXT%23@contoso.onmicrosoft.com");
    }

    #[test]
    fn filter_literals_double_quotes() {
        assert_eq!(odata_string("o'brien@contoso.com"), "'o''brien@contoso.com'");
        assert_eq!(query_pair("$filter", "mail eq 'a+b@c.com'"), "$filter=mail%20eq%20%27a%2Bb@c.com%27");
    }
}
