//! Running independent chunk jobs on a fixed number of threads.
//!
//! Chunks of one frame are equal in size, so a static split into contiguous runs balances well and
//! keeps every result in its place: the output never depends on the thread count.

use crate::error::Result;

/// The thread count to use for a request of `threads` (0 = all available cores) and `jobs` jobs.
pub fn effective_threads(threads: u32, jobs: usize) -> usize {
    let want = if threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
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
pub fn for_each_mut_with<T: Send, S, I, F>(items: &mut [T], threads: u32, init: I, f: F) -> Result<()>
where
    I: Fn() -> S + Sync,
    F: Fn(&mut S, usize, &mut T) -> Result<()> + Sync,
{
    let t = effective_threads(threads, items.len());
    if t <= 1 {
        let mut state = init();
        return items.iter_mut().enumerate().try_for_each(|(i, it)| f(&mut state, i, it));
    }
    let per = items.len().div_ceil(t);
    let (f, init) = (&f, &init);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks_mut(per)
            .enumerate()
            .map(|(k, run)| {
                s.spawn(move || {
                    let mut state = init();
                    run.iter_mut().enumerate().try_for_each(|(j, it)| f(&mut state, k * per + j, it))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    results.into_iter().collect()
}
