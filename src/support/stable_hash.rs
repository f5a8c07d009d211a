//! FNV-1a, 64 bits: a hash that never changes between versions or machines, unlike std's. The
//! journal checksums its lines with it, and a shard (`--shard K/N`) takes its targets by it, so
//! that a resume and its sibling shards agree with the run that began.

/// Any one changed byte changes it (each step is a bijection of the state).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}
