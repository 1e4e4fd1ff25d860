//! Allocation shared by frames and archives.

use crate::error::{Error, Result};

/// The size of a transparent huge page on x86-64 and most aarch64 kernels.
const HUGE_PAGE: usize = 2 << 20;

/// Asks the kernel to back the 2 MiB-aligned whole pages inside `[p, p + n)` with transparent
/// huge pages when they are first touched. Why: a restore or a compression writes every page
/// of its large buffers once, and the first touch of a 4 KiB page is a page fault; measured on a
/// 2-core KVM guest (Zen 3), 3.4-3.6 us a 4 KiB page against 0.12-0.56 us per 4 KiB within a
/// huge page, and faults were 15-20% of decompressing or compressing a 45 MB bf16 stream. Many
/// kernels grant huge pages only where they are asked for (`enabled` = `madvise`, the default
/// on Debian and Ubuntu). Only a hint: contents are unchanged, and where the kernel has no
/// huge pages (or another OS) nothing happens. The range must be memory the caller owns.
pub(crate) fn advise_huge(p: *mut u8, n: usize) {
    #[cfg(target_os = "linux")]
    {
        let start = (p as usize).next_multiple_of(HUGE_PAGE);
        let end = (p as usize).saturating_add(n) / HUGE_PAGE * HUGE_PAGE;
        if end > start {
            // SAFETY: the range lies inside `[p, p + n)`, which the caller owns; MADV_HUGEPAGE
            // changes how its pages are backed, never what they hold. An error (a kernel
            // without transparent huge pages) leaves them as they were.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (p, n);
}

/// A reusable window buffer whose bytes start on a huge-page boundary, so that even a window of
/// 2 MiB is backed by huge pages (`advise_huge`; an allocation of exactly 2 MiB almost never
/// contains an aligned 2 MiB page). It holds a huge page more than it is asked for: address
/// space only, since the bytes before the aligned start are never touched.
#[derive(Default)]
pub(crate) struct Window {
    buf: Vec<u8>,
    off: usize,
}

impl Window {
    /// The window's first `n` bytes (stale contents), grown to hold them if needed [OUT_OF_MEMORY].
    pub fn get(&mut self, n: usize) -> Result<&mut [u8]> {
        if self.room() < n {
            let room = n.checked_add(HUGE_PAGE).ok_or(Error::TooLarge)?;
            self.buf = alloc_zeroed(room as u64)?;
            let p = self.buf.as_ptr() as usize;
            self.off = p.next_multiple_of(HUGE_PAGE) - p;
        }
        Ok(&mut self.buf[self.off..self.off + n])
    }

    /// Bytes the window holds without growing.
    pub fn room(&self) -> usize {
        self.buf.len() - self.off
    }

    /// The window's first `n` bytes, grown to hold them if needed (keeping the first `keep`).
    pub fn grow(&mut self, n: usize, keep: usize) -> Result<&mut [u8]> {
        if self.room() < n {
            let old = std::mem::take(self);
            self.get(n)?[..keep].copy_from_slice(&old.bytes(old.room())[..keep]);
        }
        self.get(n)
    }

    /// The first `n` bytes, which the last `get` made room for.
    pub fn bytes(&self, n: usize) -> &[u8] {
        &self.buf[self.off..self.off + n]
    }
}

/// A zeroed buffer of `n` bytes, or OUT_OF_MEMORY. The zeroed pages come straight from the
/// allocator (calloc-style), so a large buffer costs memory only where it is written: a decode
/// that fails early on hostile data has not touched the rest (a large buffer's pages come as
/// 2 MiB huge pages where the kernel has them: `advise_huge`).
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
        advise_huge(p, n);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A window's bytes start on a huge-page boundary whatever its size, it grows only when
    /// asked for more room, and growing keeps the bytes asked to be kept.
    #[test]
    fn window_is_aligned_and_grows_keeping_its_bytes() {
        let mut w = Window::default();
        assert_eq!(w.room(), 0);
        for n in [1, 4096, 3 << 19] {
            let b = w.get(n).unwrap();
            assert_eq!(b.len(), n);
            assert_eq!(b.as_ptr() as usize % HUGE_PAGE, 0, "{n}");
        }
        let room = w.room();
        assert!(room >= 3 << 19);
        let b = w.get(1000).unwrap();
        b.iter_mut().enumerate().for_each(|(i, x)| *x = i as u8);
        // Within its room a window is the same buffer, stale bytes and all.
        assert_eq!(w.grow(room, 10).unwrap().len(), room);
        assert_eq!(w.room(), room);
        assert!(w.bytes(1000).iter().enumerate().all(|(i, &x)| x == i as u8));
        // Past it, a new buffer, aligned, holding the bytes kept.
        let b = w.grow(room + 1, 700).unwrap();
        assert_eq!(b.as_ptr() as usize % HUGE_PAGE, 0);
        assert!(b[..700].iter().enumerate().all(|(i, &x)| x == i as u8));
        assert!(w.room() > room);
    }

    /// Advising huge pages changes no byte of the buffer, whatever its size and alignment.
    #[test]
    fn advising_huge_pages_keeps_the_contents() {
        for n in [0usize, 100, (2 << 20) + 1, 5 << 20] {
            let mut v: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            advise_huge(v.as_mut_ptr(), v.len());
            assert!(v.iter().enumerate().all(|(i, &x)| x == (i * 7) as u8), "{n}");
        }
    }
}
