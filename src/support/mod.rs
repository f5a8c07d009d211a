//! Small pieces every room uses and none owns: files written safely (`files`), a secret that never
//! prints (`secret`), the one stable hash (`stable_hash`) and RFC 3339 timestamps (`timestamp`).

pub(crate) mod files;
pub(crate) mod secret;
pub(crate) mod stable_hash;
pub(crate) mod timestamp;
