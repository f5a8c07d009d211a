//! Where each row of the CSV starts, and the guard on line and row lengths: the csv crate counts
//! lines wrongly in CRLF files, and a broken file must not grow the reader's buffer without bound.

use std::io::{self, Read};

use super::MAX_LINE;

/// Line breaks seen so far, to turn a record's byte offset into its line number (the csv crate
/// miscounts lines in CRLF files), and the guard that fails the read when a line runs past
/// [`MAX_LINE`] bytes, so a broken file cannot make the reader's buffer grow without bound.
#[derive(Debug)]
pub(super) struct LineIndex {
    /// Where each recent line break starts and ends (CRLF is one break of two bytes).
    breaks: std::collections::VecDeque<(u64, u64)>,
    /// Line breaks older than those kept.
    forgotten: u64,
    offset: u64,
    /// Bytes since the last line break, and since the last row's end (quoted line breaks do not
    /// end a row).
    line_run: usize,
    row_run: usize,
    after_cr: bool,
    delimiter: u8,
    /// Inside a quoted field, and the line where its opening quote stands.
    quoted: Option<u64>,
    /// A quote inside a quoted field: the end of it, or the first half of `""`.
    quote_pending: bool,
    at_field_start: bool,
}

/// How far behind the read position a record can start: the csv buffer plus one long row.
const INDEX_WINDOW: u64 = 2 * MAX_ROW as u64;

/// The longest row accepted, quoted line breaks included.
pub(super) const MAX_ROW: usize = 256 * 1024;

impl LineIndex {
    pub(super) fn new(delimiter: u8) -> LineIndex {
        LineIndex {
            breaks: Default::default(),
            forgotten: 0,
            offset: 0,
            line_run: 0,
            row_run: 0,
            after_cr: false,
            delimiter,
            quoted: None,
            quote_pending: false,
            at_field_start: true,
        }
    }

    /// The line of the record whose parse began at `offset`. The csv crate starts a record right
    /// after the byte that ended the previous one, so the offset can point at the `\n` of a CRLF
    /// or at blank lines; a record's line is that of its first byte after them.
    pub(super) fn line_of(&self, offset: u64) -> u64 {
        let mut index = self.breaks.partition_point(|&(_, end)| end <= offset);
        let mut at = offset;
        while let Some(&(start, end)) = self.breaks.get(index) {
            if start > at {
                break;
            }
            at = end;
            index += 1;
        }
        1 + self.forgotten + index as u64
    }

    /// Counts `lines` the reader never sees (PowerShell's `#TYPE` line) before its first, so
    /// that line numbers stay those of the file.
    pub(super) fn after_lines(mut self, lines: u64) -> LineIndex {
        self.forgotten = lines;
        self
    }

    fn current_line(&self) -> u64 {
        1 + self.forgotten + self.breaks.len() as u64
    }

    /// A quote still open at the end of the file: the line it opened on.
    pub(super) fn unclosed_quote(&self) -> Option<u64> {
        self.quoted.filter(|_| !self.quote_pending)
    }

    fn track_quotes(&mut self, b: u8) {
        if self.quoted.is_some() {
            if self.quote_pending {
                self.quote_pending = false;
                if b == b'"' {
                    return; // `""`: an escaped quote
                }
                self.quoted = None;
            } else {
                if b == b'"' {
                    self.quote_pending = true;
                }
                return;
            }
        }
        if b == b'"' && self.at_field_start {
            self.quoted = Some(self.current_line());
        }
        self.at_field_start = b == self.delimiter || b == b'\n' || b == b'\r';
    }

    fn scan(&mut self, bytes: &[u8]) -> io::Result<()> {
        for &b in bytes {
            let at = self.offset;
            if self.after_cr {
                self.breaks.push_back((at - 1, if b == b'\n' { at + 1 } else { at }));
            } else if b == b'\n' {
                self.breaks.push_back((at, at + 1));
            }
            self.after_cr = b == b'\r';
            self.offset += 1;
            self.track_quotes(b);
            let line_break = b == b'\n' || b == b'\r';
            self.line_run = if line_break { 0 } else { self.line_run + 1 };
            self.row_run = if line_break && self.quoted.is_none() { 0 } else { self.row_run + 1 };
            if self.line_run > MAX_LINE {
                let text = format!("a line is longer than {} KiB", MAX_LINE / 1024);
                return Err(io::Error::new(io::ErrorKind::InvalidData, text));
            }
            if self.row_run > MAX_ROW {
                let opened = self
                    .quoted
                    .map(|line| format!(" (is the quote opened on line {line} ever closed?)"))
                    .unwrap_or_default();
                let text = format!("a row is longer than {} KiB{opened}", MAX_ROW / 1024);
                return Err(io::Error::new(io::ErrorKind::InvalidData, text));
            }
        }
        while self.breaks.front().is_some_and(|&(_, end)| end + INDEX_WINDOW < self.offset) {
            self.breaks.pop_front();
            self.forgotten += 1;
        }
        Ok(())
    }
}

pub(super) struct LineLimit<R> {
    pub(super) inner: R,
    pub(super) index: std::sync::Arc<std::sync::Mutex<LineIndex>>,
    /// The SHA-256 of every byte read, for the run record.
    pub(super) digest: Option<aws_lc_rs::digest::Context>,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buffer)?;
        self.index.lock().unwrap_or_else(|e| e.into_inner()).scan(&buffer[..n])?;
        if let Some(digest) = &mut self.digest {
            digest.update(&buffer[..n]);
        }
        Ok(n)
    }
}
