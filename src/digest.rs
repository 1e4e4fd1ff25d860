//! SHA-256 of tensors (the archive index's per-tensor digests), fed to the `sha2` crate from
//! the cache.
//!
//! Why not `Sha256::digest` straight over a tensor: with the CPU's SHA extensions the hash runs
//! at ~1.9 GB/s on data in cache but at ~1.3 GB/s on a buffer of hundreds of MB in memory (this
//! 2-core Sapphire Rapids VM, whose memory reads at ~12 GB/s). It asks for only 64 bytes per
//! ~100 cycles, and at every 4 KiB page it starts over cold: the hardware prefetcher does not
//! cross pages, and the page's translation is missing too. Reading one byte of each page of a
//! 64 KiB piece first, then hashing the piece, starts all of its pages at once: 1.85-1.87 GB/s
//! end to end. (Measured on 500 MB: one load per 64-byte line instead, 1.69; per page with
//! pieces of 256 KiB or more, 1.16-1.49, past what the first-level TLB holds; a software
//! prefetch of the next piece, 1.58.)

use sha2::{Digest, Sha256};

/// Bytes touched and hashed at a time: 16 pages, within what the first-level TLB holds.
const PIECE: usize = 64 << 10;

/// Feeds `data` to `h` a piece at a time, each piece's pages touched first.
pub fn update(h: &mut Sha256, data: &[u8]) {
    for piece in data.chunks(PIECE) {
        touch(piece);
        h.update(piece);
    }
}

/// The SHA-256 of `data` (see `update`).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    update(&mut h, data);
    h.finalize().into()
}

/// One load from each 4 KiB page of `b` (see the module's note).
fn touch(b: &[u8]) {
    let mut x = 0u8;
    for page in b.chunks(4096) {
        x ^= page[0];
    }
    std::hint::black_box(x);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same digest as the crate's one-shot hash at every length around the piece size and
    /// the block size, and in pieces fed through `update`.
    #[test]
    fn same_digest_as_one_shot() {
        let data: Vec<u8> = (0..3 * PIECE + 200).map(|i| (i * 131 + (i >> 9)) as u8).collect();
        for n in [0, 1, 63, 64, 65, PIECE - 1, PIECE, PIECE + 1, 2 * PIECE + 64, data.len()] {
            let want: [u8; 32] = Sha256::digest(&data[..n]).into();
            assert_eq!(sha256(&data[..n]), want, "length {n}");
            let mut h = Sha256::new();
            update(&mut h, &data[..n / 3]);
            update(&mut h, &data[n / 3..n]);
            assert_eq!(<[u8; 32]>::from(h.finalize()), want, "length {n} in two parts");
        }
    }
}
