//! The journal's reader: every intact record in order, the damaged places counted and skipped,
//! two records that lost the line break between them both kept.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::format::{MARKER, Record, verified};
use crate::error::{Error, Result};

/// The records of a journal, in order; damaged ones are counted in `damaged` and skipped.
pub(crate) struct Records {
    lines: BufReader<File>,
    buffer: Vec<u8>,
    ready: std::collections::VecDeque<Record>,
    /// Places where the bytes were not an intact record.
    pub damaged: u64,
}

/// Reads a journal, skipping (and counting) what is damaged.
pub(crate) fn read(path: &Path) -> Result<Records> {
    let file = File::open(path).map_err(Error::io(format!("cannot read the journal {}", path.display())))?;
    Ok(Records { lines: BufReader::new(file), buffer: Vec::new(), ready: Default::default(), damaged: 0 })
}

impl Iterator for Records {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if let Some(record) = self.ready.pop_front() {
                return Some(record);
            }
            self.buffer.clear();
            match self.lines.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(_) => {
                    self.damaged += 1;
                    return None;
                }
            }
            let line = std::mem::take(&mut self.buffer);
            self.parse_line(&line);
            self.buffer = line;
        }
    }
}

impl Records {
    /// Every intact record in `line`: normally one, two when a line break between them was lost.
    fn parse_line(&mut self, line: &[u8]) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        let starts: Vec<usize> =
            (0..line.len()).filter(|&i| line[i] == MARKER[0] && line[i..].starts_with(MARKER)).collect();
        if starts.is_empty() {
            // A journal written before records carried checksums.
            match serde_json::from_slice(line) {
                Ok(record) => self.ready.push_back(record),
                Err(_) => self.damaged += 1,
            }
            return;
        }
        if starts[0] > 0 {
            self.damaged += 1;
        }
        for (i, &start) in starts.iter().enumerate() {
            let end = starts.get(i + 1).copied().unwrap_or(line.len());
            match verified(&line[start..end]) {
                Some((record, clean)) => {
                    self.ready.push_back(record);
                    self.damaged += u64::from(!clean);
                }
                None => self.damaged += 1,
            }
        }
    }
}
