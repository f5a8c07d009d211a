//! A sign-in's error code in words, and the layer it points at. The texts are Microsoft's
//! ("Microsoft Entra authentication and authorization error codes",
//! learn.microsoft.com/entra/identity-platform/reference-error-codes).

use super::Layer;

/// The words for `code`, and the layer it points at, if the code is one SMTP AUTH meets.
pub(crate) fn describe(code: u32) -> (&'static str, Option<Layer>) {
    match code {
        0 => ("success", None),
        50126 => ("invalid username or password (50126): the device's password is wrong", None),
        50053 => ("the account is locked after too many failed sign-ins, or the address is malicious (50053)", None),
        50055 => ("the password has expired (50055)", None),
        50057 => ("the user account is disabled (50057)", Some(Layer::SignIn)),
        50076 | 50079 | 50074 => (
            "multifactor authentication is required (5007x: a Conditional Access policy or per-user MFA)",
            Some(Layer::PerUserMfa),
        ),
        53003 => ("blocked by Conditional Access policies (53003)", Some(Layer::ConditionalAccess)),
        530032 => ("blocked by a security policy of the tenant (530032)", Some(Layer::ConditionalAccess)),
        530035 => ("blocked by security defaults: legacy authentication (530035)", Some(Layer::SecurityDefaults)),
        7000112 => ("the application is disabled (7000112)", None),
        _ => ("see Microsoft's Entra error codes", None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_point_at_their_layers() {
        assert_eq!(describe(530035).1, Some(Layer::SecurityDefaults));
        assert_eq!(describe(53003).1, Some(Layer::ConditionalAccess));
        assert!(describe(50126).0.contains("password"));
        assert!(describe(4242).0.contains("Entra"));
    }
}
