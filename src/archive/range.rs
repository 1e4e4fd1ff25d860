//! Ranged reads: any run of bytes of one tensor, or of the original file, decoding only the
//! chunks that hold them. This is what lets a loader that reads a model file with `pread`
//! (llama.cpp's `llama_file`, a safetensors slice) read the archive instead: it asks for the
//! original file's bytes at an offset and gets exactly those, at the cost of the chunks they
//! touch.

use std::sync::atomic::Ordering;

use super::{frame_fault, Archive, Entry};
use crate::error::{Error, Result};
use crate::frame::{FrameReader, Options};
use crate::memory::alloc_zeroed;

/// One tensor in the original file's order, with what the layout of the file needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Placed {
    /// Where its bytes start in the original file.
    start: u64,
    end: u64,
    /// Its index in the container's order.
    index: usize,
    /// Bytes of all tensors before it in the file: a file offset outside every tensor, less
    /// this, is its position in the extra bytes (metadata, gaps and tail, stored in file order).
    tensors_before: u64,
}

/// The tensors in file order (the index checked that they do not overlap and fit the file).
pub(super) fn file_layout(tensors: &[Entry], order: &[usize]) -> Vec<Placed> {
    let mut before = 0;
    order
        .iter()
        .map(|&i| {
            let t = &tensors[i];
            let p = Placed { start: t.orig_offset, end: t.orig_offset + t.orig_size, index: i, tensors_before: before };
            before += t.orig_size;
            p
        })
        .collect()
}

impl Archive<'_> {
    /// Decodes bytes `[offset, offset + dst.len())` of tensor `i` into `dst`
    /// ([INVALID_ARGUMENT] if they are not all inside it). Only the chunks holding them are
    /// read and decoded (each checked against its checksum); a range that starts or ends inside
    /// a chunk decodes that chunk into a scratch buffer. On a decoding error `dst` is zero-filled.
    pub fn read_tensor_range(&self, i: usize, offset: u64, dst: &mut [u8], opts: &Options) -> Result<()> {
        let t = self.index.tensors.get(i).ok_or(Error::InvalidArgument)?;
        let end = offset.checked_add(dst.len() as u64).ok_or(Error::InvalidArgument)?;
        if end > t.orig_size {
            return Err(Error::InvalidArgument);
        }
        if dst.is_empty() {
            return Ok(());
        }
        let fr = self.frame_reader(t)?;
        let r = self.decode_span(&fr, t.orig_size, offset, dst, opts);
        if r.is_err() {
            dst.fill(0);
        }
        r
    }

    /// `read_tensor_range` once the frame is open: whole chunks straight into `dst`, the partial
    /// chunks at either end through a scratch chunk.
    fn decode_span(&self, fr: &FrameReader, size: u64, offset: u64, dst: &mut [u8], opts: &Options) -> Result<()> {
        let cs = fr.info().chunk_size as u64;
        let end = offset + dst.len() as u64;
        let mut scratch = Vec::new();
        let mut partial = |chunk: u64, dst: &mut [u8], from: u64| -> Result<()> {
            let n = cs.min(size - chunk) as usize;
            if scratch.len() < n {
                scratch = alloc_zeroed(n as u64)?;
            }
            self.decode(fr, chunk, &mut scratch[..n], opts)?;
            let skip = (from - chunk) as usize;
            dst.copy_from_slice(&scratch[skip..skip + dst.len()]);
            Ok(())
        };
        let head = offset / cs * cs;
        let whole_from = offset.div_ceil(cs) * cs;
        if head != offset {
            let n = (end.min(head + cs) - offset) as usize;
            partial(head, &mut dst[..n], offset)?;
        }
        // The last chunk may be short: a range reaching the tensor's end ends on a chunk boundary.
        let whole_to = if end == size { end } else { end / cs * cs };
        if whole_from < whole_to {
            let (a, b) = ((whole_from - offset) as usize, (whole_to - offset) as usize);
            self.decode(fr, whole_from, &mut dst[a..b], opts)?;
        }
        if whole_to < end && whole_to >= whole_from {
            let a = (whole_to - offset) as usize;
            partial(whole_to, &mut dst[a..], whole_to)?;
        }
        Ok(())
    }

    /// Decodes whole chunks from `offset` into `dst`, counting them in `decoded_bytes`.
    pub(super) fn decode(&self, fr: &FrameReader, offset: u64, dst: &mut [u8], opts: &Options) -> Result<()> {
        self.decoded.fetch_add(dst.len() as u64, Ordering::Relaxed);
        fr.decode_range(offset, dst, opts).map_err(frame_fault)
    }

    /// Bytes `[offset, offset + dst.len())` of the original file, as `pread` on it would give
    /// them ([INVALID_ARGUMENT] past its end): the metadata and padding from the extra bytes,
    /// tensor data through `read_tensor_range`. On an error `dst` is zero-filled.
    pub fn pread(&self, offset: u64, dst: &mut [u8], opts: &Options) -> Result<()> {
        let end = offset.checked_add(dst.len() as u64).ok_or(Error::InvalidArgument)?;
        if end > self.original_size() {
            return Err(Error::InvalidArgument);
        }
        let r = self.pread_in(offset, dst, opts);
        if r.is_err() {
            dst.fill(0);
        }
        r
    }

    fn pread_in(&self, offset: u64, dst: &mut [u8], opts: &Options) -> Result<()> {
        let layout = self.layout.get_or_init(|| file_layout(&self.index.tensors, &self.index.in_file_order()));
        let end = offset + dst.len() as u64;
        // The first tensor that ends after `offset`; empty tensors are skipped as they come.
        let mut k = layout.partition_point(|p| p.end <= offset);
        let mut pos = offset;
        while pos < end {
            let out = &mut dst[(pos - offset) as usize..];
            match layout.get(k) {
                Some(p) if p.end <= pos => k += 1,
                Some(p) if p.start <= pos => {
                    let n = (end.min(p.end) - pos) as usize;
                    self.read_tensor_range(p.index, pos - p.start, &mut out[..n], opts)?;
                    pos += n as u64;
                    k += 1;
                }
                next => {
                    // Outside every tensor: up to the next tensor's start (or the file's end).
                    let (stop, before) = match next {
                        Some(p) => (p.start, p.tensors_before),
                        None => {
                            (self.original_size(), layout.last().map_or(0, |p| p.tensors_before + (p.end - p.start)))
                        }
                    };
                    let n = (end.min(stop) - pos) as usize;
                    let from = (pos - before) as usize;
                    let extra = self.extra()?;
                    let src = extra.get(from..from + n).ok_or(Error::CorruptHeader)?;
                    out[..n].copy_from_slice(src);
                    pos += n as u64;
                }
            }
        }
        Ok(())
    }

    /// Original bytes this handle has decoded so far, counted in whole chunks (a ranged read
    /// counts the chunks it touched; the metadata is not counted). For checking that a ranged
    /// read decoded no more than it needed, and for a loader's statistics.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded.load(Ordering::Relaxed)
    }
}
