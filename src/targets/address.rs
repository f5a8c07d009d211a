//! Whether a row's identity can name a mailbox: the checks that catch what spreadsheets and HR
//! exports put in an address column.

/// Whether `identity` can be a mailbox address: one `@`, something on both sides, a dotted
/// domain, no spaces or control characters.
pub fn check_address(identity: &str) -> Result<(), String> {
    if identity.is_empty() {
        return Err("the identity is empty".into());
    }
    if identity.len() > 320 {
        return Err(format!("the identity is {} characters long; an address has at most 320", identity.len()));
    }
    if identity.chars().any(|c| c.is_control()) {
        return Err("the identity contains a control character (a NUL byte or a line break?)".into());
    }
    if let Some(c) = identity.chars().find(|&c| is_format_character(c)) {
        return Err(format!(
            "the identity contains the invisible character U+{:04X} (a zero-width, direction or byte-order mark, often pasted from a web page or a document); type the address again",
            u32::from(c)
        ));
    }
    let shown = identity;
    if identity.chars().any(char::is_whitespace) {
        return Err(format!("'{shown}' is not an address: it contains a space"));
    }
    let Some((local, domain)) = identity.rsplit_once('@') else {
        return Err(format!("'{shown}' is not an address: it has no '@'"));
    };
    if local.is_empty() || local.contains('@') {
        return Err(format!("'{shown}' is not an address: it needs exactly one '@' with a name before it"));
    }
    let labels_ok =
        domain.split('.').all(|label| !label.is_empty() && label.chars().all(|c| c.is_alphanumeric() || c == '-'));
    if !domain.contains('.') || !labels_ok {
        return Err(format!("'{shown}' is not an address: '{domain}' is not a domain name"));
    }
    Ok(())
}

/// Unicode's format characters (general category Cf, Unicode 16): invisible, so an address
/// holding one looks like another address on screen, in the log and in the report.
fn is_format_character(c: char) -> bool {
    matches!(u32::from(c),
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}
