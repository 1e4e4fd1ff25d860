//! Writing an archive: a GGUF file's tensors each coded by its type's codec, the rest of the
//! file (metadata, padding) as one zstd frame, then the index.

use std::io::{Seek, SeekFrom, Write};

use super::format::{Container, Entry, Extra, Header, Index, EXTRA_GGUF_COLUMNS, EXTRA_ZSTD, HEADER_LEN};
use crate::codec::Kind;
use crate::digest;
use crate::error::{Error, Result};
use crate::frame::{self, Options};
use crate::source::Source;
use crate::zstd;
use crate::{gguf, safetensors};

/// zstd level of an extra frame of method 0 (safetensors, and GGUF metadata that
/// `metadata::split` does not take): level 19 gains 10% over 9 on text. It is compressed on its
/// own thread while the tensors are coded.
const EXTRA_LEVEL: i32 = 19;

/// Tensors from this size are hashed on a thread of their own while they are coded (a thread
/// costs tens of microseconds; hashing 1 MiB about 0.6 ms).
const SHA_ASIDE_MIN: usize = 1 << 20;

/// Tensors under this size are small: coded a batch at a time, one tensor per thread, rather than
/// one at a time with their chunks in parallel (a tensor of a chunk or two cannot use two cores).
const SMALL_TENSOR: u64 = 2 << 20;

/// The most bytes of small tensors in one batch: what a batch holds in memory twice (its input
/// and its frames).
const BATCH_BYTES: u64 = 16 << 20;

fn is_small(p: &Part) -> bool {
    p.size < SMALL_TENSOR
}

/// How many of the tensors `order` (indices into `parts`) starts with go in one batch: the run
/// of small ones up to `BATCH_BYTES`; 1 for a large tensor or a small one alone.
fn small_run(parts: &[Part], order: &[usize]) -> usize {
    let mut bytes = 0;
    let n = order
        .iter()
        .take_while(|&&i| {
            bytes += parts[i].size;
            is_small(&parts[i]) && bytes <= BATCH_BYTES
        })
        .count();
    n.max(1)
}

/// The buffers the reader of `write_parts` reads tensors into, back from coding.
#[derive(Default)]
struct Spares(Vec<Vec<u8>>);

impl Spares {
    /// A buffer for `n` bytes: the smallest that holds them, else the largest (to grow), else a
    /// new one. Taking the smallest that fits keeps small tensors off the large buffers, so
    /// buffers grow only where none is large enough.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let fits = (0..self.0.len()).filter(|&k| self.0[k].capacity() >= n).min_by_key(|&k| self.0[k].capacity());
        let pick = fits.or_else(|| (0..self.0.len()).max_by_key(|&k| self.0[k].capacity()));
        pick.map(|k| self.0.swap_remove(k)).unwrap_or_default()
    }

    /// Keeps `b` for a later tensor. What is kept stays within two of the largest buffers and
    /// two batches of small tensors (the smallest buffers go first): about what reading ahead
    /// holds at its peak anyway.
    fn give(&mut self, b: Vec<u8>) {
        self.0.push(b);
        let total = |v: &[Vec<u8>]| v.iter().map(|b| b.capacity()).sum::<usize>();
        let largest = self.0.iter().map(|b| b.capacity()).max().unwrap_or(0);
        while self.0.len() > 2 && total(&self.0) > 2 * largest + 2 * BATCH_BYTES as usize {
            let k = (0..self.0.len()).min_by_key(|&k| self.0[k].capacity()).expect("not empty");
            self.0.swap_remove(k);
        }
    }
}

/// Extra bytes from which a GGUF split is used without trying one zstd frame too.
const SPLIT_ALONE_MIN: usize = 64 << 10;

/// The kind whose codec a ggml type goes through; types without one are coded as bytes.
pub fn kind_of_ggml(ggml_type: u32) -> Kind {
    Kind::ALL.into_iter().find(|k| k.ggml_type() == Some(ggml_type)).unwrap_or(Kind::Bytes)
}

/// What `compress_gguf` wrote.
#[derive(Clone, Debug)]
pub struct Written {
    pub container: Container,
    pub original_size: u64,
    pub archive_size: u64,
    pub index: Index,
}

/// A tensor to write: where it is in the original file and what it is.
pub(crate) struct Part {
    pub name: Vec<u8>,
    pub container_type: u32,
    pub kind: Kind,
    pub dims: Vec<u64>,
    /// Values per row (the innermost dimension).
    pub row_len: u64,
    pub offset: u64,
    pub size: u64,
}

/// Compresses a whole GGUF file into an archive written to `out`. The output depends only on
/// `src` and `opts.chunk_size`, never on the thread count.
pub fn compress_gguf<W: Write + Seek>(src: &[u8], out: &mut W, opts: &Options) -> Result<Written> {
    gguf_parts(&Source::Slice(src), gguf::read(src)?, out, opts)
}

/// The archive of a GGUF file whose header is `g`.
fn gguf_parts<W: Write + Seek>(src: &Source, g: gguf::Gguf, out: &mut W, opts: &Options) -> Result<Written> {
    // A tensor of a type whose size this crate does not know extends to the next tensor (or the
    // end of the file): its bytes then restore exactly whatever they are.
    let mut order: Vec<usize> = (0..g.tensors.len()).collect();
    order.sort_by_key(|&i| (g.tensors[i].offset, g.tensors[i].len.unwrap_or(0), i));
    let mut sizes = vec![0u64; g.tensors.len()];
    for (k, &i) in order.iter().enumerate() {
        let t = &g.tensors[i];
        sizes[i] = match t.len {
            Some(n) => n,
            None => order.get(k + 1).map_or(src.len(), |&j| g.tensors[j].offset) - t.offset,
        };
    }
    let parts: Vec<Part> = g
        .tensors
        .iter()
        .zip(&sizes)
        .map(|(t, &size)| Part {
            name: t.name_bytes.clone(),
            container_type: t.ggml_type,
            kind: if t.len.is_some() { kind_of_ggml(t.ggml_type) } else { Kind::Bytes },
            dims: t.dims.clone(),
            // ggml lists dimensions innermost first.
            row_len: t.dims.first().copied().unwrap_or(0),
            offset: t.offset,
            size,
        })
        .collect();
    write_parts(Container::Gguf, src, g.data_start, &parts, out, opts)
}

/// The kind whose codec a safetensors dtype goes through; others are coded as bytes.
pub fn kind_of_dtype(dtype: &str) -> Kind {
    Kind::ALL.into_iter().find(|k| k.safetensors_dtype() == Some(dtype)).unwrap_or(Kind::Bytes)
}

/// Compresses a whole safetensors file into an archive written to `out` (see `compress_gguf`).
pub fn compress_safetensors<W: Write + Seek>(src: &[u8], out: &mut W, opts: &Options) -> Result<Written> {
    safetensors_parts(&Source::Slice(src), safetensors::read(src)?, out, opts)
}

/// The archive of a safetensors file whose header is `st`.
fn safetensors_parts<W: Write + Seek>(
    src: &Source,
    st: safetensors::SafeTensors,
    out: &mut W,
    opts: &Options,
) -> Result<Written> {
    let parts: Vec<Part> = st
        .tensors
        .iter()
        .map(|t| Part {
            name: t.name.as_bytes().to_vec(),
            container_type: t.dtype_code(),
            kind: kind_of_dtype(&t.dtype),
            dims: t.shape.clone(),
            // safetensors lists dimensions outermost first.
            row_len: t.shape.last().copied().unwrap_or(0),
            offset: t.offset,
            size: t.len,
        })
        .collect();
    write_parts(Container::Safetensors, src, st.data_start, &parts, out, opts)
}

/// Compresses a model file of either container, told apart by content: GGUF by its magic,
/// safetensors by its header [CONTAINER_BAD_MAGIC for anything else].
pub fn compress_any<W: Write + Seek>(src: &[u8], out: &mut W, opts: &Options) -> Result<Written> {
    if src.starts_with(b"GGUF") || src.len() < 8 {
        compress_gguf(src, out, opts)
    } else if safetensors::looks_like(src) {
        compress_safetensors(src, out, opts)
    } else {
        Err(Error::ContainerBadMagic)
    }
}

/// `compress_any` of a model file read from `src`: the container's metadata is read first (a
/// GGUF header is read in growing prefixes until it parses), then each tensor as it is coded.
fn compress_source<W: Write + Seek>(src: &Source, out: &mut W, opts: &Options) -> Result<Written> {
    let len = src.len();
    let head = src.read(0, len.min(16) as usize)?;
    if head.starts_with(b"GGUF") || len < 8 {
        // Metadata is usually a few MiB (tokenizer vocabularies); parse a prefix, and read more
        // only while the prefix ends inside the metadata.
        let mut n = len.min(1 << 20);
        loop {
            match gguf::read_sized(&src.read(0, n as usize)?, len) {
                Err(Error::ContainerTruncated) if n < len => n = (2 * n).min(len),
                r => return gguf_parts(src, r?, out, opts),
            }
        }
    }
    if safetensors::looks_like(&head) {
        let header_len = u64::from_le_bytes(head[..8].try_into().unwrap());
        let n = 8u64.saturating_add(header_len).min(len).min(8 + safetensors::MAX_HEADER_LEN);
        let st = safetensors::read_sized(&src.read(0, n as usize)?, len)?;
        return safetensors_parts(src, st, out, opts);
    }
    Err(Error::ContainerBadMagic)
}

/// Compresses the model file (GGUF or safetensors) open as `file` (a regular file; `name`
/// names it in errors) into an archive written to `out`. The file is read with `pread`, a tensor
/// at a time: memory is the metadata and a tensor or two, and a file truncated while it is read
/// gives an I/O error. The output is the bytes `compress_any` writes for the same file.
pub fn compress_open_file<W: Write + Seek>(
    file: std::fs::File,
    name: &std::path::Path,
    out: &mut W,
    opts: &Options,
) -> Result<Written> {
    let src = Source::from_file(file, name)?;
    if src.is_empty() {
        return Err(Error::ContainerTruncated);
    }
    compress_source(&src, out, opts)
}

/// Compresses the model file (GGUF or safetensors) at `src_path` into an archive at `dst_path`,
/// written atomically. Refuses [INVALID_ARGUMENT] to write over its input.
pub fn compress_file(src_path: &std::path::Path, dst_path: &std::path::Path, opts: &Options) -> Result<Written> {
    if crate::atomic::same_file(src_path, dst_path) {
        return Err(Error::InvalidArgument);
    }
    // Read with pread, a tensor at a time, never mapped (see `source`): memory is the metadata
    // and a tensor or two, and a model file truncated while it is read gives an error.
    let src = Source::open(src_path)?;
    if src.is_empty() {
        return Err(Error::ContainerTruncated);
    }
    let mut written = None;
    crate::atomic::write_file(dst_path, |w| {
        written = Some(compress_source(&src, w, opts)?);
        Ok(())
    })?;
    written.ok_or(Error::Panic) // `write_file` returned Ok, so `fill` ran
}

/// The options for one tensor's frame: a chunk size asked for is rounded to whole elements of
/// the tensor's kind (a Q4_K block is 144 bytes), staying within the frame's limits.
fn tensor_options(opts: &Options, kind: Kind, row_len: u64) -> Options {
    let mut o = Options { row_len, ..opts.clone() };
    if o.chunk_size != 0 {
        let es = kind.element_size() as u32;
        let mut cs = o.chunk_size / es * es;
        if cs < frame::MIN_CHUNK_SIZE {
            cs = frame::MIN_CHUNK_SIZE.div_ceil(es) * es;
        }
        o.chunk_size = cs.min(frame::MAX_CHUNK_SIZE / es * es);
    }
    o
}

/// `compress_file` (kept under its first name: it takes safetensors too).
pub fn compress_gguf_file(src_path: &std::path::Path, dst_path: &std::path::Path, opts: &Options) -> Result<Written> {
    compress_file(src_path, dst_path, opts)
}

/// Writes an archive of `src` whose tensors are `parts` (in container order, not overlapping,
/// after `metadata_size`).
pub(crate) fn write_parts<W: Write + Seek>(
    container: Container,
    src: &Source,
    metadata_size: u64,
    parts: &[Part],
    out: &mut W,
    opts: &Options,
) -> Result<Written> {
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| (parts[i].offset, parts[i].size));
    // The extra bytes: metadata, every gap, the tail.
    let mut extra_raw = src.read(0, metadata_size as usize)?.into_owned();
    let mut at = metadata_size;
    for &i in &order {
        extra_raw.extend_from_slice(&src.read(at, (parts[i].offset - at) as usize)?);
        at = parts[i].offset + parts[i].size;
    }
    extra_raw.extend_from_slice(&src.read(at, (src.len() - at) as usize)?);

    if parts.iter().any(|p| p.name.len() > super::format::MAX_NAME) {
        return Err(Error::BadContainer);
    }
    // The writer's name is the caller's: `atomic::write_file` adds it.
    let io = |e| Error::io("write", None, e);
    std::thread::scope(|s| {
        let extra_job = s.spawn(|| {
            // A GGUF file's key/values split into streams, numeric arrays as columns (method
            // 2), where they parse: on a tokenizer, smaller than level 19 on the whole and about
            // ten times faster. Small extra bytes (no tokenizer to speak of) try both and keep
            // the smaller: there the split's three frames can cost more than they save.
            let split = match container {
                Container::Gguf => super::metadata::encode(&extra_raw, true)?,
                _ => None,
            };
            let (method, z) = match split {
                Some(z) if extra_raw.len() >= SPLIT_ALONE_MIN => (EXTRA_GGUF_COLUMNS, z),
                split => {
                    let whole = zstd::compress(&extra_raw, EXTRA_LEVEL, 1)?;
                    match split {
                        Some(z) if z.len() < whole.len() => (EXTRA_GGUF_COLUMNS, z),
                        _ => (EXTRA_ZSTD, whole),
                    }
                }
            };
            let sha = digest::sha256(&extra_raw);
            opts.tick(extra_raw.len());
            Ok::<_, Error>((method, z, sha))
        });
        // Reading a tensor runs on its own thread, a tensor ahead of coding and writing (which
        // left the cores idle while it ran on this one). Buffers come back once their tensors
        // are coded and are read into again (`Spares`), small tensors' too. What cut the page
        // faults is the huge-page advice on a buffer that grows (`Source::read_with`): on
        // Qwen2.5-Coder-1.5B's archive 111K -> 31K, where reuse alone left 114K. Reuse spares the
        // small tensors' fresh pages once a batch has come back. A slice source is not copied
        // at all.
        let (loaded_tx, loaded) = std::sync::mpsc::sync_channel::<Result<Vec<u8>>>(0);
        let (spare_tx, spare) = std::sync::mpsc::channel::<Vec<u8>>();
        let order_ref = &order;
        s.spawn(move || {
            let mut spares = Spares::default();
            for &i in order_ref {
                let p = &parts[i];
                while let Ok(b) = spare.try_recv() {
                    spares.give(b);
                }
                let mut buf = spares.take(p.size as usize);
                let r = src.read_with(p.offset, p.size as usize, &mut buf).map(|_| ());
                let stop = r.is_err();
                if loaded_tx.send(r.map(|()| buf)).is_err() || stop {
                    return;
                }
            }
        });
        out.write_all(&[0u8; HEADER_LEN]).map_err(io)?;
        let mut pos = HEADER_LEN as u64;
        let mut entries: Vec<Option<Entry>> = vec![None; parts.len()];
        let mut record = |i: usize, arc_size: u64, sha256: [u8; 32]| {
            let p = &parts[i];
            let mut name_c = p.name.clone();
            name_c.push(0);
            entries[i] = Some(Entry {
                name: p.name.clone(),
                name_c,
                container_type: p.container_type,
                kind: p.kind,
                dims: p.dims.clone(),
                orig_offset: p.offset,
                orig_size: p.size,
                arc_offset: pos,
                arc_size,
                sha256,
            });
            pos += arc_size;
        };
        let mut k = 0;
        while k < order.len() {
            let batch = small_run(parts, &order[k..]);
            if batch > 1 {
                // Small tensors (norms, biases, a layer's narrow matrices) are coded a batch at
                // a time, one tensor per thread, each frame into memory, then written in order:
                // one at a time, each kept one core busy and the other idle.
                let bufs = (0..batch).map(|_| loaded.recv().map_err(|_| Error::Panic)?).collect::<Result<Vec<_>>>()?;
                let mut jobs = Vec::with_capacity(batch);
                for (&i, buf) in order[k..k + batch].iter().zip(&bufs) {
                    let p = &parts[i];
                    let data = src.borrow(p.offset, p.size as usize).unwrap_or(Ok(&buf[..]))?;
                    jobs.push((i, data, Vec::new(), [0u8; 32]));
                }
                // Largest first, so that the batch does not end on one thread coding a large
                // tensor while the other has nothing left; written back in `order` (sorting by
                // offset would move a zero-size tensor past the one at its offset).
                jobs.sort_by_key(|j| std::cmp::Reverse(j.1.len()));
                crate::parallel::for_each_mut(&mut jobs, opts.threads, |_, (i, data, frame, sha)| {
                    // The frame's bytes are those `write_frame` writes to the file (a frame's
                    // bytes never depend on the thread count).
                    let p = &parts[*i];
                    let o = Options { threads: 1, ..tensor_options(opts, p.kind, p.row_len) };
                    frame::write_frame(p.kind, data, &o, &mut std::io::Cursor::new(&mut *frame))?;
                    *sha = digest::sha256(data);
                    Ok(())
                })?;
                for &i in &order[k..k + batch] {
                    let (_, _, frame, sha) = jobs.iter().find(|j| j.0 == i).expect("every tensor of the batch coded");
                    out.write_all(frame).map_err(io)?;
                    record(i, frame.len() as u64, *sha);
                }
                drop(jobs);
                for b in bufs {
                    let _ = spare_tx.send(b);
                }
                k += batch;
                continue;
            }
            let i = order[k];
            let p = &parts[i];
            let buf = loaded.recv().map_err(|_| Error::Panic)??;
            let data = src.borrow(p.offset, p.size as usize).unwrap_or(Ok(&buf[..]))?;
            // Written a window of chunks at a time (the frame's table by seeking back).
            let (frame_size, sha256) = std::thread::scope(|s| {
                // A large tensor's SHA-256 runs on a thread of its own while the tensor is
                // coded. Taken with the reading, a tensor ahead, it made a serial stage slower
                // than the coding on two cores (SHA-256 runs at ~1.9 GB/s at best), which then waited.
                let sha = (data.len() >= SHA_ASIDE_MIN).then(|| s.spawn(|| digest::sha256(data)));
                let frame_size = frame::write_frame(p.kind, data, &tensor_options(opts, p.kind, p.row_len), &mut *out)?;
                let sha = match sha {
                    Some(h) => h.join().map_err(|_| Error::Panic)?,
                    None => digest::sha256(data),
                };
                Ok::<_, Error>((frame_size, sha))
            })?;
            let _ = spare_tx.send(buf);
            record(i, frame_size, sha256);
            k += 1;
        }
        let (method, z, sha) = extra_job.join().map_err(|_| Error::Panic)??;
        out.write_all(&z).map_err(io)?;
        let extra = Extra {
            method,
            offset: pos,
            size: z.len() as u64,
            raw_size: extra_raw.len() as u64,
            metadata_size,
            sha256: sha,
        };
        pos += z.len() as u64;
        let index = Index { extra, tensors: entries.into_iter().map(|e| e.expect("every part written")).collect() };
        let ib = index.write();
        out.write_all(&ib).map_err(io)?;
        let hd = Header {
            container,
            original_size: src.len(),
            index_offset: pos,
            index_size: ib.len() as u64,
            index_check: crate::checksum::xxh3_64(&ib),
        };
        out.seek(SeekFrom::Start(0)).map_err(io)?;
        out.write_all(&hd.write()).map_err(io)?;
        out.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(Written { container, original_size: src.len(), archive_size: pos + ib.len() as u64, index })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reader's buffers: the smallest that holds a tensor, else the largest to grow, else a
    /// new one; what it keeps stays within two of the largest and two batches.
    #[test]
    fn spares_take_the_smallest_that_fits_and_stay_bounded() {
        let mut s = Spares::default();
        assert_eq!(s.take(10).capacity(), 0);
        for cap in [100usize, 1000, 10_000] {
            s.give(Vec::with_capacity(cap));
        }
        let b = s.take(500);
        assert!((1000..10_000).contains(&b.capacity()), "{}", b.capacity());
        s.give(b);
        let b = s.take(50_000);
        assert!(b.capacity() >= 10_000, "the largest, to grow: {}", b.capacity());
        s.give(b);
        // Many small buffers of a batch: kept within the bound, the large ones kept.
        let big = 64 << 20;
        s.give(Vec::with_capacity(big));
        for _ in 0..100 {
            s.give(Vec::with_capacity(1 << 20));
        }
        let total: usize = s.0.iter().map(|b| b.capacity()).sum();
        assert!(total <= 2 * big + 2 * BATCH_BYTES as usize, "{total}");
        assert!(s.0.iter().any(|b| b.capacity() >= big));
    }
}
