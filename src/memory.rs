//! Allocation shared by frames and archives.

use crate::error::{Error, Result};

/// A zeroed buffer of `n` bytes, or OUT_OF_MEMORY. The zeroed pages come straight from the
/// allocator (calloc-style), so a large buffer costs memory only where it is written: a decode
/// that fails early on hostile data has not touched the rest.
pub fn alloc_zeroed(n: u64) -> Result<Vec<u8>> {
    let n = usize::try_from(n).map_err(|_| Error::TooLarge)?;
    if n == 0 {
        return Ok(Vec::new());
    }
    let layout = std::alloc::Layout::array::<u8>(n).map_err(|_| Error::TooLarge)?;
    // SAFETY: the layout has a non-zero size; on success the block holds n zeroed bytes, owned by
    // the Vec made from it with the same size, capacity and the global allocator's alignment 1.
    unsafe {
        let p = std::alloc::alloc_zeroed(layout);
        if p.is_null() {
            return Err(Error::OutOfMemory);
        }
        Ok(Vec::from_raw_parts(p, n, n))
    }
}

/// Buffers a thread keeps for its next uses (`take_spare`, `keep_spare`): reused buffers spare
/// the page faults and zeroing of fresh ones, chunk after chunk.
pub(crate) type Spares<T> = std::cell::RefCell<Vec<T>>;

/// Buffers kept per thread and kind: two, for encoders that code two chunks at once.
const SPARES: usize = 2;

/// A buffer this thread kept (stale contents), or a new empty one.
pub(crate) fn take_spare<T: Default>(key: &'static std::thread::LocalKey<Spares<T>>) -> T {
    key.try_with(|s| s.borrow_mut().pop()).ok().flatten().unwrap_or_default()
}

/// Keeps `v` for this thread's next `take_spare` (unless it keeps enough already).
pub(crate) fn keep_spare<T>(key: &'static std::thread::LocalKey<Spares<T>>, v: T) {
    let _ = key.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < SPARES {
            s.push(v);
        }
    });
}
