//! `journal.jsonl`: the append-only record of a run. Before each write an `intent` (target,
//! setting, before, desired); after every (target, setting) its `row`; and every CSV row that was
//! not a target. The report is rendered from it, and resume and rollback read it.
//!
//! Records are queued in memory on the caller's thread, and a thread of their own writes and
//! syncs (`fdatasync`) them in groups: one `write` and one sync for all that came meanwhile, not
//! a system call per record (a throttled run spends its CPU on waking up, not on work).
//! An intent is on disk before its write goes out: the write waits for it past its turn at the
//! pacer, and while writes wait in the pacer's line, one sync covers every intent in it. Rows are
//! written and synced by the next sync, within a second in any case: a crash in that second (of
//! the process or the machine) can lose only rows a resume tells again by reading, for any write
//! behind them has its intent on disk. Dropping the journal writes what is queued (a run that
//! fails or panics keeps its rows); the end of a run makes everything durable before the report.
//!
//! Each line carries a checksum of its record (`{"crc":"…",` then the record's own fields), so
//! a damaged journal (a disk that filled up mid-record, a flipped byte, a line break lost) costs
//! only the records actually damaged: they are counted and skipped, and every intact record
//! after them still counts, even two that lost the line break between them.
//!
//! A facade over its parts, as fjall's journal is: the line format (`format.rs`), the writer
//! (`writer.rs`), the reader (`reader.rs`) and what a resume needs (`resume.rs`).

mod format;
mod reader;
mod resume;
mod writer;

pub(crate) use format::Record;
pub(crate) use reader::read;
pub(crate) use resume::{Done, user_key};
pub(crate) use writer::Journal;

pub(crate) const FILE_NAME: &str = "journal.jsonl";

#[cfg(test)]
mod tests;
