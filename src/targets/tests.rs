use super::*;
use std::io::Write;

/// The entries of a CSV file holding `text` (removed afterwards, whatever the answer).
fn entries(text: &[u8], column: Option<&str>) -> Result<Vec<Entry>, Error> {
    let mut file = tempfile::Builder::new().prefix("remediate-targets-").suffix(".csv").tempfile().unwrap();
    file.write_all(text).unwrap();
    Ok(open(file.path(), column)?.collect())
}

fn identities(entries: &[Entry]) -> Vec<&str> {
    entries.iter().filter_map(|e| if let Entry::Target(t) = e { Some(t.identity.as_str()) } else { None }).collect()
}

#[test]
fn excel_files_with_bom_semicolons_and_crlf() {
    let all = entries(
        b"\xEF\xBB\xBFDisplayName;UserPrincipalName\r\nAdele;adele@contoso.com\r\n\"Vance; Alex\";alex@contoso.com\r\n",
        None,
    )
    .unwrap();
    assert_eq!(identities(&all), ["adele@contoso.com", "alex@contoso.com"]);
    assert!(matches!(&all[1], Entry::Target(Target { line: 3, .. })), "{all:?}");
    let lone_cr = entries(b"upn\ra@contoso.com\r\rb@contoso.com\r", None).unwrap();
    assert_eq!(
        lone_cr.last(),
        Some(&Entry::Target(Target { line: 4, identity: "b@contoso.com".into(), overrides: vec![], tenant: None }))
    );
    let quoted = entries(b"upn,note\na@contoso.com,\"two\nlines\"\nb@contoso.com,x\n", None).unwrap();
    assert_eq!(
        quoted.last(),
        Some(&Entry::Target(Target { line: 4, identity: "b@contoso.com".into(), overrides: vec![], tenant: None }))
    );
}

#[test]
fn bad_rows_carry_their_line_and_reason() {
    let all = entries(b"upn\na@contoso.com\nnot-an-address\nA@CONTOSO.COM\n\xE9@contoso.com\n", None).unwrap();
    let problems: Vec<_> = all.iter().filter_map(|e| if let Entry::Problem(p) = e { Some(p) } else { None }).collect();
    assert_eq!(problems.len(), 3);
    assert_eq!(problems[0].line, 3);
    assert!(problems[0].message.contains("no '@'"));
    assert!(problems[1].message.contains("duplicate of line 2"), "{}", problems[1].message);
    assert!(problems[2].message.contains("Windows-1252"));
}

#[test]
fn a_missing_column_lists_what_was_found() {
    let error = entries(b"Name,Department\nx,y\n", None).unwrap_err().to_string();
    assert!(error.contains("'Name', 'Department'") && error.contains("--column"), "{error}");
    let error = entries(b"", None).unwrap_err().to_string();
    assert!(error.contains("empty"), "{error}");
}

#[test]
fn addresses() {
    assert!(check_address("o'brien@contoso.com").is_ok());
    assert!(check_address("jo_fabrikam.com#EXT#@contoso.onmicrosoft.com").is_ok());
    assert!(check_address("a@b").is_err());
    assert!(check_address("a b@c.com").is_err());
    assert!(check_address("a@b@c.com").is_err());
    for invisible in ["ad\u{200B}ele@contoso.com", "\u{FEFF}adele@contoso.com", "adele@contoso.com\u{202E}moc"] {
        let error = check_address(invisible).unwrap_err();
        assert!(error.contains("invisible character U+"), "{error}");
    }
}

#[test]
fn admin_center_export_headers_are_recognised() {
    let users = entries(b"Display name,User principal name,Licenses\nAdele,adele@contoso.com,E3\n", None).unwrap();
    assert_eq!(identities(&users), ["adele@contoso.com"]);
    let mailboxes = entries(b"Display name,Email address,Recipient type\nAlex,alex@contoso.com,UserMailbox\n", None);
    assert_eq!(identities(&mailboxes.unwrap()), ["alex@contoso.com"]);
    let named = entries(b"Display name,Sign-in name\nAdele,adele@contoso.com\n", Some("sign-in name")).unwrap();
    assert_eq!(identities(&named), ["adele@contoso.com"], "--column in any spelling");
}
