//! A run beyond one session of it: what it was asked (`record`, saved as run.json for a resume),
//! who it leaves alone (`scope`: exclusions and the sign-in log's choice), its pace (`tuning`) and
//! the budgets measured per tenant (`budgets`), its shard of the targets (`shard`), the lock that
//! keeps one writer per tenant (`lock`), and how it stops (`stop`).

pub(crate) mod budgets;
pub(crate) mod lock;
pub(crate) mod record;
pub(crate) mod scope;
pub(crate) mod shard;
pub(crate) mod stop;
pub(crate) mod tuning;
