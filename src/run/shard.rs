//! One shard of a run (`--shard K/N`): the targets whose identity hashes to K among N, so that N
//! runs side by side cover a tenant's targets once each. A small type with its parser, instead of
//! a `(u32, u32)` whose halves every caller must keep apart (as nextest's `partition.rs` does).

use std::fmt;
use std::str::FromStr;

use crate::support::stable_hash::fnv1a;

/// Shard `index` of `count`, with `index < count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
// Kept in run records as `[K, N]`, as the pair was: a resume of an older run reads it.
#[serde(try_from = "(u32, u32)", into = "(u32, u32)")]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` of `count`, if `index < count`.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// How many shards the run is cut into.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Which one this is, from 0.
    pub fn index(self) -> u32 {
        self.index
    }

    /// Whether the target `identity` is this shard's: by a hash of its lowercase form that is the
    /// same on every machine and in every version, so a resume and its siblings agree.
    pub fn holds(self, identity: &str) -> bool {
        self.owns(fnv1a(identity.to_lowercase().as_bytes()))
    }

    /// Whether a rejected row of the input, by its line, is this shard's to report (each is
    /// reported by one shard only).
    pub fn holds_line(self, line: u64) -> bool {
        self.owns(line)
    }

    fn owns(self, number: u64) -> bool {
        number % u64::from(self.count) == u64::from(self.index)
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `K/N` with `K < N`.
    fn from_str(text: &str) -> Result<Shard, String> {
        let number = |part: &str| part.trim().parse::<u32>().ok();
        text.split_once('/')
            .and_then(|(k, n)| Shard::new(number(k)?, number(n)?))
            .ok_or_else(|| format!("'{text}' is not a shard: write K/N with 0 <= K < N, e.g. 0/3"))
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl TryFrom<(u32, u32)> for Shard {
    type Error = String;

    fn try_from((index, count): (u32, u32)) -> Result<Shard, String> {
        Shard::new(index, count).ok_or_else(|| format!("shard {index}/{count}: K must be below N"))
    }
}

impl From<Shard> for (u32, u32) {
    fn from(shard: Shard) -> (u32, u32) {
        (shard.index, shard.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_k_of_n_and_refuses_the_rest() {
        assert_eq!("0/3".parse::<Shard>(), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(" 2 / 3 ".parse::<Shard>().map(|s| s.to_string()), Ok("2/3".into()));
        for bad in ["3/3", "0/0", "1", "a/3", "-1/3", "1/3/4", ""] {
            let error = bad.parse::<Shard>().unwrap_err();
            assert!(error.contains("K/N"), "{bad}: {error}");
        }
    }

    #[test]
    fn shards_cover_every_identity_exactly_once_whatever_its_case() {
        for i in 0..1000 {
            let identity = format!("user{i}@contoso.com");
            let owners = (0..3).filter(|&k| Shard { index: k, count: 3 }.holds(&identity)).count();
            assert_eq!(owners, 1);
            let one = Shard { index: 1, count: 3 };
            assert_eq!(one.holds(&identity), one.holds(&identity.to_uppercase()));
        }
        let lines = (1..=30).filter(|&line| Shard { index: 2, count: 3 }.holds_line(line)).count();
        assert_eq!(lines, 10);
    }

    /// A run record keeps `[K, N]` as before the type, and a tampered one is refused.
    #[test]
    fn kept_in_a_run_record_as_the_pair_it_was() {
        let shard = Shard { index: 1, count: 4 };
        assert_eq!(serde_json::to_string(&shard).unwrap(), "[1,4]");
        assert_eq!(serde_json::from_str::<Shard>("[1,4]").unwrap(), shard);
        assert!(serde_json::from_str::<Shard>("[4,4]").is_err());
    }

    /// The hash is the one shards have always used: a resume of an older run keeps its targets.
    #[test]
    fn the_hash_never_changes() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
