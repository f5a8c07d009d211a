//! Finding rows that repeat an earlier row's identity, in memory that does not grow with the file.
//!
//! Remembering every identity seen costs tens of bytes a row: a hundred megabytes for a tenant
//! migration's CSV. Instead, a first pass over the file puts each identity's hash in a Bloom
//! filter (about a byte a row) and keeps the hashes it meets again: every true repeat, and the
//! filter's rare false alarms. The reading pass then remembers first lines for those hashes
//! alone. A file that cannot be read twice (a pipe) falls back to remembering every hash.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// The hash an identity is compared by: its trimmed text in lower case (addresses match in any
/// letter case).
pub(super) fn identity_hash(identity: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    identity.trim().to_lowercase().hash(&mut hasher);
    hasher.finish()
}

/// The identities' first lines, for the hashes that may repeat.
#[derive(Clone, Debug, Default)]
pub(super) struct Duplicates {
    /// Hashes met more than once in the first pass; `None` when there was no first pass.
    candidates: Option<HashSet<u64>>,
    first_lines: HashMap<u64, u32>,
}

/// The first pass, fed one hash at a time.
pub(super) struct FirstPass {
    filter: Bloom,
    candidates: HashSet<u64>,
}

impl FirstPass {
    pub(super) fn new(bytes: u64) -> FirstPass {
        FirstPass { filter: Bloom::for_bytes(bytes), candidates: HashSet::new() }
    }

    pub(super) fn insert(&mut self, hash: u64) {
        if !self.filter.insert(hash) {
            self.candidates.insert(hash);
        }
    }

    pub(super) fn finish(self) -> Duplicates {
        Duplicates { candidates: Some(self.candidates), first_lines: HashMap::new() }
    }
}

impl Duplicates {
    /// Without a first pass: every hash is remembered.
    pub(super) fn remembering_all() -> Duplicates {
        Duplicates::default()
    }

    /// From the hashes of every row of the file, in any order; `bytes` is the file's size, which
    /// bounds the number of rows and so sizes the filter.
    #[cfg(test)]
    pub(super) fn from_first_pass(hashes: impl Iterator<Item = u64>, bytes: u64) -> Duplicates {
        let mut pass = FirstPass::new(bytes);
        hashes.for_each(|hash| pass.insert(hash));
        pass.finish()
    }

    /// The line this identity was first on, if an earlier row had it; else remembers `line`.
    pub(super) fn check(&mut self, hash: u64, line: u64) -> Option<u32> {
        if self.candidates.as_ref().is_some_and(|candidates| !candidates.contains(&hash)) {
            return None;
        }
        let line = line.min(u64::from(u32::MAX)) as u32;
        match self.first_lines.entry(hash) {
            std::collections::hash_map::Entry::Occupied(first) => Some(*first.get()),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(line);
                None
            }
        }
    }
}

/// A Bloom filter over 64-bit hashes, with four probes from double hashing.
struct Bloom {
    bits: Vec<u64>,
    mask: u64,
}

const PROBES: u64 = 4;

impl Bloom {
    /// Half a bit per byte of the file: a row of 20 bytes or more gets ten bits or more, which
    /// keeps false alarms under one in a hundred rows.
    fn for_bytes(bytes: u64) -> Bloom {
        let wanted = (bytes / 2).clamp(1 << 16, 1 << 34);
        let size = wanted.next_power_of_two();
        Bloom { bits: vec![0; (size / 64) as usize], mask: size - 1 }
    }

    /// Adds `hash`; false when it (probably) was there already.
    fn insert(&mut self, hash: u64) -> bool {
        let step = hash.rotate_left(32) | 1;
        let mut added = false;
        for probe in 0..PROBES {
            let bit = hash.wrapping_add(probe.wrapping_mul(step)) & self.mask;
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            added |= self.bits[word] & mask == 0;
            self.bits[word] |= mask;
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of_repeats(identities: &[&str], first_pass: bool) -> Vec<Option<u32>> {
        let hashes = identities.iter().map(|i| identity_hash(i));
        let mut duplicates =
            if first_pass { Duplicates::from_first_pass(hashes, 100) } else { Duplicates::remembering_all() };
        identities.iter().enumerate().map(|(i, id)| duplicates.check(identity_hash(id), i as u64 + 2)).collect()
    }

    #[test]
    fn repeats_are_found_with_or_without_a_first_pass() {
        let identities = ["a@contoso.com", "b@contoso.com", " A@Contoso.com", "c@contoso.com", "b@CONTOSO.com"];
        let expected = vec![None, None, Some(2), None, Some(3)];
        assert_eq!(lines_of_repeats(&identities, true), expected);
        assert_eq!(lines_of_repeats(&identities, false), expected);
    }

    #[test]
    fn distinct_rows_leave_few_candidates() {
        let hashes = (0..200_000u64).map(|i| identity_hash(&format!("user{i}@contoso.com")));
        let duplicates = Duplicates::from_first_pass(hashes, 200_000 * 23);
        let candidates = duplicates.candidates.map_or(usize::MAX, |c| c.len());
        assert!(candidates < 2_000, "{candidates} false alarms in 200,000 rows");
    }
}
