//! Making text safe for a CSV cell that people open in Excel: one line, bounded length, no
//! leading character that a spreadsheet would run as a formula (OWASP's CSV-injection advice),
//! and no control character for a terminal that shows the file to obey.

use std::borrow::Cow;

/// The longest text a cell keeps; service messages can be pages long.
pub(super) const MAX_CELL: usize = 500;

/// Every cell whose text came from a user's file or from a server (identities, error codes and
/// messages, request ids, tenants, user ids) goes through here.
pub(crate) fn safe(text: &str) -> Cow<'_, str> {
    let needs_work = text.len() > MAX_CELL
        || text.starts_with(['=', '+', '-', '@', '\t', '\r'])
        || text.chars().any(crate::logging::unprintable);
    if !needs_work {
        return Cow::Borrowed(text);
    }
    let line: String = text.split(['\r', '\n']).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(" ");
    let mut line = crate::logging::printable(&line).into_owned();
    if line.len() > MAX_CELL {
        let mut end = MAX_CELL;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
        line.push('…');
    }
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        line.insert(0, '\'');
    }
    Cow::Owned(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(safe("=HYPERLINK(\"http://x\",\"y\")"), "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(safe("+1"), "'+1");
        assert_eq!(safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(safe("\tx"), "'\tx");
        assert_eq!(safe("plain@contoso.com"), "plain@contoso.com");
    }

    #[test]
    fn messages_become_one_bounded_line() {
        assert_eq!(safe("a\r\nb\nc"), "a b c");
        assert_eq!(safe("=cmd|' /C calc'!A0\x1b[31m\u{202e}"), "'=cmd|' /C calc'!A0\\x1b[31m\\u{202e}");
        let long = "é".repeat(600);
        let cut = safe(&long);
        assert!(cut.len() <= MAX_CELL + '…'.len_utf8());
        assert!(cut.ends_with('…'));
    }
}
