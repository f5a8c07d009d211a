//! The journal's line format: a record as JSON, its checksum first (`{"crc":"…",` then the
//! record's own fields), and the check that takes an intact record back out of a line.

use serde::{Deserialize, Serialize};

use crate::engine::Reason;
use crate::engine::events::{Outcome, Row};
use crate::settings::{Setting, Value};
use crate::support::stable_hash::fnv1a;

/// One line of the journal.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case", try_from = "Fields")]
pub(crate) enum Record {
    /// About to write `desired` over `before`.
    Intent { line: u64, identity: String, user_id: String, setting: Setting, before: Option<Value>, desired: Value },
    /// A finished (target, setting); with the outcome `unfinished`, one the run owed and could
    /// not finish (a resume does it).
    Row(Row),
    /// A CSV row that is not a target.
    Rejected { line: u64, reason: String },
}

/// Every field a record may have, read in one pass: serde reads an internally tagged enum by
/// first copying each record into a tree of its own, and reading a journal (each report, resume
/// and rollback) did little else.
#[derive(Deserialize)]
struct Fields {
    record: Kind,
    line: u64,
    #[serde(default)]
    identity: String,
    #[serde(default)]
    user_id: String,
    setting: Option<Setting>,
    #[serde(default)]
    before: Option<Value>,
    desired: Option<Value>,
    #[serde(default)]
    after: Option<Value>,
    outcome: Option<Outcome>,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    error_code: Reason,
    #[serde(default)]
    error_message: String,
    #[serde(default)]
    request_id: String,
    #[serde(default)]
    client_request_id: String,
    #[serde(default)]
    duration_ms: u64,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    control: String,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum Kind {
    Intent,
    Row,
    Rejected,
}

impl TryFrom<Fields> for Record {
    type Error = &'static str;

    fn try_from(fields: Fields) -> std::result::Result<Record, &'static str> {
        let Fields { line, identity, user_id, before, after, .. } = fields;
        let setting = fields.setting.ok_or("a record without its setting");
        let desired = fields.desired.ok_or("a record without the desired value");
        Ok(match fields.record {
            Kind::Intent => Record::Intent { line, identity, user_id, setting: setting?, before, desired: desired? },
            Kind::Row => Record::Row(Row {
                line,
                identity,
                user_id,
                setting: setting?,
                before,
                desired: desired?,
                after,
                outcome: fields.outcome.ok_or("a row without its outcome")?,
                attempts: fields.attempts,
                error_code: fields.error_code,
                error_message: fields.error_message,
                request_id: fields.request_id,
                client_request_id: fields.client_request_id,
                duration_ms: fields.duration_ms,
                tenant: fields.tenant,
                control: fields.control,
            }),
            Kind::Rejected => {
                Record::Rejected { line, reason: fields.reason.ok_or("a rejected row without its reason")? }
            }
        })
    }
}

/// What starts every checksummed line.
pub(super) const MARKER: &[u8] = b"{\"crc\":\"";
/// The marker, 16 hex digits, `",`.
pub(super) const PREFIX_LEN: usize = MARKER.len() + 16 + 2;

/// A record as one journal line, checksum first.
pub(super) fn encode(record: &Record) -> Vec<u8> {
    let json = serde_json::to_vec(record).unwrap_or_default();
    let mut line = Vec::with_capacity(json.len() + PREFIX_LEN + 1);
    line.extend_from_slice(MARKER);
    line.extend_from_slice(format!("{:016x}\",", fnv1a(&json)).as_bytes());
    line.extend_from_slice(&json[1..]);
    line.push(b'\n');
    line
}

/// The record in `segment` if its checksum holds, and whether nothing but it was there.
pub(super) fn verified(segment: &[u8]) -> Option<(Record, bool)> {
    let hex = std::str::from_utf8(segment.get(MARKER.len()..MARKER.len() + 16)?).ok()?;
    let expected = u64::from_str_radix(hex, 16).ok()?;
    if segment.get(MARKER.len() + 16..PREFIX_LEN)? != b"\"," {
        return None;
    }
    let mut json = Vec::with_capacity(segment.len());
    json.push(b'{');
    json.extend_from_slice(&segment[PREFIX_LEN..]);
    // Nearly every segment is one whole record: checked and parsed once. Only one that is not
    // is scanned for where its record ends.
    if fnv1a(&json) == expected
        && let Ok(record) = serde_json::from_slice(&json)
    {
        return Some((record, true));
    }
    let mut values = serde_json::Deserializer::from_slice(&json).into_iter::<serde::de::IgnoredAny>();
    values.next()?.ok()?;
    let end = values.byte_offset();
    let clean = json[end..].trim_ascii().is_empty();
    json.truncate(end);
    if fnv1a(&json) != expected {
        return None;
    }
    Some((serde_json::from_slice(&json).ok()?, clean))
}
