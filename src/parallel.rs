//! Running independent chunk jobs on a fixed number of threads.
//!
//! Chunks of one frame are equal in size, so a static split into contiguous runs balances well and
//! keeps every result in its place: the output never depends on the thread count.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Result;

/// The shared pool with `threads` workers, made on first use; None if the OS refuses threads.
fn pool(threads: usize) -> Option<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Some(p.clone());
    }
    let p = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("weightzip-{i}"))
            .build()
            .ok()?,
    );
    pools.insert(threads, p.clone());
    Some(p)
}

/// The thread count to use for a request of `threads` (0 = all available cores) and `jobs` jobs.
pub fn effective_threads(threads: u32, jobs: usize) -> usize {
    let want = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads as usize
    };
    want.clamp(1, jobs.max(1))
}

/// Calls `f(index, item)` for every item, on up to `threads` threads.
pub fn for_each_mut<T: Send, F>(items: &mut [T], threads: u32, f: F) -> Result<()>
where
    F: Fn(usize, &mut T) -> Result<()> + Sync,
{
    for_each_mut_with(items, threads, || (), |_, i, it| f(i, it))
}

/// Like `for_each_mut`, with a per-thread state made by `init` (for example a decoding table that
/// consecutive chunks can share). Returns the error of the lowest-numbered failing item, so the
/// reported error does not depend on timing either.
pub fn for_each_mut_with<T: Send, S, I, F>(
    items: &mut [T],
    threads: u32,
    init: I,
    f: F,
) -> Result<()>
where
    I: Fn() -> S + Sync,
    F: Fn(&mut S, usize, &mut T) -> Result<()> + Sync,
{
    let t = effective_threads(threads, items.len());
    let pool = if t > 1 { pool(t) } else { None };
    let Some(pool) = pool else {
        let mut state = init();
        return items
            .iter_mut()
            .enumerate()
            .try_for_each(|(i, it)| f(&mut state, i, it));
    };
    let per = items.len().div_ceil(t);
    let (f, init) = (&f, &init);
    let mut results: Vec<Result<()>> = Vec::new();
    results.resize_with(items.len().div_ceil(per), || Ok(()));
    // Pools are kept per thread count: spawning threads per call costs tens of microseconds,
    // as much as decoding a small tensor.
    pool.scope(|s| {
        for (k, (run, r)) in items.chunks_mut(per).zip(results.iter_mut()).enumerate() {
            s.spawn(move |_| {
                let mut state = init();
                *r = run
                    .iter_mut()
                    .enumerate()
                    .try_for_each(|(j, it)| f(&mut state, k * per + j, it));
            });
        }
    });
    results.into_iter().collect()
}
