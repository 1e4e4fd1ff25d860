//! Running independent chunk jobs on a fixed number of threads.
//!
//! Chunks of one frame are equal in size, so a static split into contiguous runs balances well and
//! keeps every result in its place: the output never depends on the thread count.

use std::sync::OnceLock;

use crate::error::Result;

/// The process-wide pool, one worker per available core, made on first use; None if the OS
/// refuses threads (work then runs on the caller's thread). A request for `t` threads runs `t`
/// jobs in it, so at most `t` workers are busy for that request; one pool for every thread count
/// means a program that varies `threads` never accumulates threads.
fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(available_cores())
            .thread_name(|i| format!("weightzip-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// Cores available to this process, asked once: the standard library reads cgroup files to
/// answer, which cost more than decoding a small tensor.
fn available_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// The thread count to use for a request of `threads` (0 = all available cores) and `jobs` jobs.
pub fn effective_threads(threads: u32, jobs: usize) -> usize {
    // More threads than cores would only time-slice: requests are capped at the core count.
    let want = if threads == 0 { available_cores() } else { (threads as usize).min(available_cores()) };
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
pub fn for_each_mut_with<T: Send, S, I, F>(items: &mut [T], threads: u32, init: I, f: F) -> Result<()>
where
    I: Fn() -> S + Sync,
    F: Fn(&mut S, usize, &mut T) -> Result<()> + Sync,
{
    let t = effective_threads(threads, items.len());
    let pool = if t > 1 { pool() } else { None };
    let Some(pool) = pool else {
        let mut state = init();
        return items.iter_mut().enumerate().try_for_each(|(i, it)| f(&mut state, i, it));
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
                *r = run.iter_mut().enumerate().try_for_each(|(j, it)| f(&mut state, k * per + j, it));
            });
        }
    });
    results.into_iter().collect()
}
