//! Crash points for the loader's crash test: with `WEIR_WAREHOUSE_CRASH_AT=<point>:<n>` in the
//! environment, the process aborts (no destructors, no flushes — as close to a kill as a process can
//! do to itself) the n-th time the loader reaches `<point>`: `staged` (object read, rows not
//! inserted), `inserted` (rows inserted, not committed) or `committed` (committed, staging not
//! cleaned up). Unset, a point costs one comparison.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

pub const ENV: &str = "WEIR_WAREHOUSE_CRASH_AT";

fn plan() -> Option<&'static (String, u64)> {
    static PLAN: OnceLock<Option<(String, u64)>> = OnceLock::new();
    PLAN.get_or_init(|| {
        let value = std::env::var(ENV).ok()?;
        let (point, n) = value.split_once(':')?;
        Some((point.to_owned(), n.parse().ok()?))
    })
    .as_ref()
}

pub(crate) fn point(name: &str) {
    static REACHED: AtomicU64 = AtomicU64::new(0);
    if let Some((point, n)) = plan()
        && point == name
        && REACHED.fetch_add(1, Ordering::Relaxed) + 1 == *n
    {
        eprintln!("{ENV}: aborting at {name} #{n}");
        std::process::abort();
    }
}
