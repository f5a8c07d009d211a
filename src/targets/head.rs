//! What the first bytes of a mailbox CSV say before it is parsed: its delimiter, and a line
//! PowerShell put before the header.

/// Windows PowerShell's `Export-Csv` (and `ConvertTo-Csv`) writes `#TYPE` and the objects' type
/// name as the first line unless given `-NoTypeInformation` (PowerShell 6 and later only with
/// `-IncludeTypeInformation`; learn.microsoft.com/powershell/module/microsoft.powershell.utility/
/// export-csv): the header is the line after it. The bytes of that line, line break included.
pub(super) fn type_line_length(head: &[u8]) -> usize {
    if !head.starts_with(b"#TYPE ") {
        return 0;
    }
    head.iter().position(|&b| b == b'\n').map_or(head.len(), |end| end + 1)
}

pub(super) fn sniff_delimiter(head: &[u8]) -> u8 {
    let first_line = head.split(|&b| b == b'\n' || b == b'\r').next().unwrap_or_default();
    let mut best = (0, b',');
    for delimiter in [b',', b';', b'\t'] {
        let mut count = 0;
        let mut quoted = false;
        for &b in first_line {
            match b {
                b'"' => quoted = !quoted,
                _ if b == delimiter && !quoted => count += 1,
                _ => {}
            }
        }
        if count > best.0 {
            best = (count, delimiter);
        }
    }
    best.1
}
