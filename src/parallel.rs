//! Running independent chunk jobs on a fixed number of threads.
//!
//! Every job writes only its own item, so the output never depends on the thread count or on
//! which thread ran which job.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::error::{Error, Result};

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
///
/// Items are handed out one at a time, in order, to whichever job is free. A fixed split into
/// one run per thread left a core idle at the end of every call whenever another thread of the
/// process (an archive's reader, a tensor's SHA-256, a restore's writer) had taken time from one
/// run; each result still lands in its item's place. (The calling thread taking items too
/// measured slower: 5% on a two-thread restore, where it is also the one that hands windows to
/// the writer.)
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
    let queue = Mutex::new(items.iter_mut().enumerate());
    // The lowest failing item and its error. No item is handed out after a failure, and items
    // are handed out in order, so every item below a failure has run: the lowest failure is the
    // one a single thread would have met first.
    let failed: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    let stop = AtomicBool::new(false);
    let work = || {
        let mut state = init();
        while !stop.load(Ordering::Relaxed) {
            // The lock is never held while `f` runs, so a panic in `f` cannot poison it.
            let Some((i, it)) = queue.lock().unwrap_or_else(|e| e.into_inner()).next() else { break };
            if let Err(e) = f(&mut state, i, it) {
                stop.store(true, Ordering::Relaxed);
                let mut first = failed.lock().unwrap_or_else(|e| e.into_inner());
                if first.as_ref().is_none_or(|(j, _)| i < *j) {
                    *first = Some((i, e));
                }
            }
        }
    };
    // Pools are kept for the process: spawning threads per call costs tens of microseconds, as
    // much as decoding a small tensor.
    pool.scope(|s| {
        for _ in 0..t {
            s.spawn(|_| work());
        }
    });
    match failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every item runs once with its own index, at every thread count, and of several failing
    /// items the lowest one's error comes back, whichever thread met which first.
    #[test]
    fn every_item_once_and_the_lowest_failure() {
        for threads in [1, 2, 3, 0] {
            let mut items: Vec<(usize, u32)> = (0..1000).map(|i| (i, 0)).collect();
            for_each_mut(&mut items, threads, |i, (j, n)| {
                assert_eq!(i, *j);
                *n += 1;
                Ok(())
            })
            .unwrap();
            assert!(items.iter().all(|&(_, n)| n == 1), "threads {threads}");

            for _ in 0..50 {
                let mut items = vec![0u8; 400];
                let r = for_each_mut(&mut items, threads, |i, _| match i {
                    // A slow early failure and a quick later one: the early one is reported.
                    137 => {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                        Err(Error::CorruptData)
                    }
                    138 | 390 => Err(Error::Truncated),
                    _ => Ok(()),
                });
                assert!(matches!(r, Err(Error::CorruptData)), "threads {threads}: {r:?}");
            }
        }
    }
}
