//! Timestamps as the report, the run record and the lock file write them: RFC 3339, UTC. (The
//! simulator formats its own, as the service would.)

/// `at` in RFC 3339.
pub(crate) fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// Now, in RFC 3339.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}
