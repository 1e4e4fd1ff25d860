//! The archive's fixed header and tensor index: writing them, and reading them back as hostile
//! input. Byte layout in `docs/FORMAT.md`, section 8.

use crate::checksum::xxh3_64;

use crate::codec::Kind;
// The extra frame is one zstd frame, held to the frames' expansion rule: a larger claim is
// corrupt, and refusing it bounds what a hostile archive can make a reader allocate.
use crate::error::{Error, Result};
use crate::frame::MAX_EXPANSION;

pub const MAGIC: [u8; 4] = [0x89, b'W', b'Z', b'A'];
pub const FORMAT_VERSION: u16 = 1;
pub const HEADER_LEN: usize = 64;
/// Extra methods (the index's `extra_method`): one zstd frame, or a GGUF header's key/values
/// split into streams (`archive::metadata`), with its numeric arrays as they are (1) or as
/// columns (2).
pub const EXTRA_ZSTD: u32 = 0;
pub const EXTRA_GGUF_SPLIT: u32 = 1;
pub const EXTRA_GGUF_COLUMNS: u32 = 2;
/// Bytes of an index entry without its name and dims.
const ENTRY_FIXED: usize = 4 + 4 + 4 + 4 + 8 * 4 + 32;
const INDEX_FIXED: usize = 4 + 4 + 8 * 4 + 32;
/// Most dimensions a tensor may have in an archive.
pub const MAX_DIMS: usize = 8;
/// Longest tensor name an archive may hold.
pub const MAX_NAME: usize = 1 << 16;

/// The file format an archive restores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Gguf = 1,
    Safetensors = 2,
}

impl Container {
    fn from_u8(v: u8) -> Result<Container> {
        match v {
            1 => Ok(Container::Gguf),
            2 => Ok(Container::Safetensors),
            _ => Err(Error::CorruptHeader),
        }
    }
    /// The name of a tensor type id of this container.
    pub fn type_name(self, container_type: u32) -> &'static str {
        match self {
            Container::Gguf => crate::gguf::type_name(container_type),
            Container::Safetensors => crate::safetensors::dtype_name(container_type),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Container::Gguf => "gguf",
            Container::Safetensors => "safetensors",
        }
    }
}

/// The fixed header: where the index is, and what it restores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub container: Container,
    /// Bytes of the restored file.
    pub original_size: u64,
    pub index_offset: u64,
    pub index_size: u64,
    pub index_check: u64,
}

impl Header {
    pub fn archive_size(&self) -> u64 {
        self.index_offset + self.index_size
    }

    pub fn write(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..4].copy_from_slice(&MAGIC);
        h[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[6] = self.container as u8;
        h[8..16].copy_from_slice(&self.original_size.to_le_bytes());
        h[16..24].copy_from_slice(&self.index_offset.to_le_bytes());
        h[24..32].copy_from_slice(&self.index_size.to_le_bytes());
        h[32..40].copy_from_slice(&self.index_check.to_le_bytes());
        let c = xxh3_64(&h[..56]);
        h[56..].copy_from_slice(&c.to_le_bytes());
        h
    }

    /// Reads the header of an archive of `total` bytes whose first bytes are `src`.
    pub fn read(src: &[u8], total: u64) -> Result<Header> {
        crate::frame::check_magic(src, &MAGIC, HEADER_LEN)?;
        let h = &src[..HEADER_LEN];
        if xxh3_64(&h[..56]) != u64_at(h, 56) {
            return Err(Error::CorruptHeader);
        }
        if u16::from_le_bytes([h[4], h[5]]) != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion);
        }
        let container = Container::from_u8(h[6])?;
        if h[7] != 0 || h[40..56].iter().any(|&b| b != 0) {
            return Err(Error::CorruptHeader);
        }
        let hd = Header {
            container,
            original_size: u64_at(h, 8),
            index_offset: u64_at(h, 16),
            index_size: u64_at(h, 24),
            index_check: u64_at(h, 32),
        };
        let end = hd.index_offset.checked_add(hd.index_size).ok_or(Error::CorruptHeader)?;
        if hd.index_offset < HEADER_LEN as u64 || (hd.index_size as usize) < INDEX_FIXED {
            return Err(Error::CorruptHeader);
        }
        if total < end {
            return Err(Error::Truncated);
        }
        if total > end {
            return Err(Error::TrailingData);
        }
        Ok(hd)
    }
}

/// One tensor of the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name's bytes as the container stores them.
    pub name: Vec<u8>,
    /// The same bytes with a NUL after them, for the C API.
    pub name_c: Vec<u8>,
    /// The container's type id (a ggml type for GGUF).
    pub container_type: u32,
    /// The kind its frame holds.
    pub kind: Kind,
    pub dims: Vec<u64>,
    /// Where the tensor's bytes are in the original file.
    pub orig_offset: u64,
    pub orig_size: u64,
    /// Where its frame is in the archive.
    pub arc_offset: u64,
    pub arc_size: u64,
    /// SHA-256 of the original bytes.
    pub sha256: [u8; 32],
}

/// Everything in the archive that is not a tensor: the container's metadata (the bytes before
/// the data section), the bytes between and after tensors (alignment padding), as one zstd frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extra {
    /// How the extra bytes are stored: `EXTRA_ZSTD`, `EXTRA_GGUF_SPLIT` or `EXTRA_GGUF_COLUMNS`.
    pub method: u32,
    pub offset: u64,
    pub size: u64,
    /// Bytes it decodes to: the metadata, then every gap in file order, then the tail.
    pub raw_size: u64,
    /// Bytes of container metadata at its start.
    pub metadata_size: u64,
    /// SHA-256 of all `raw_size` bytes.
    pub sha256: [u8; 32],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub extra: Extra,
    /// In the container's order.
    pub tensors: Vec<Entry>,
}

impl Index {
    pub fn write(&self) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(&(self.tensors.len() as u32).to_le_bytes());
        let e = &self.extra;
        o.extend_from_slice(&e.method.to_le_bytes());
        for v in [e.offset, e.size, e.raw_size, e.metadata_size] {
            o.extend_from_slice(&v.to_le_bytes());
        }
        o.extend_from_slice(&e.sha256);
        for t in &self.tensors {
            o.extend_from_slice(&(t.name.len() as u32).to_le_bytes());
            o.extend_from_slice(&t.name);
            o.extend_from_slice(&t.container_type.to_le_bytes());
            o.extend_from_slice(&t.kind.id().to_le_bytes());
            o.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                o.extend_from_slice(&d.to_le_bytes());
            }
            for v in [t.orig_offset, t.orig_size, t.arc_offset, t.arc_size] {
                o.extend_from_slice(&v.to_le_bytes());
            }
            o.extend_from_slice(&t.sha256);
        }
        o
    }

    /// Parses and checks an index: every field in range, tensors and the extra frame inside the
    /// archive without overlapping, original extents inside the original file without
    /// overlapping, and the byte count adding up to the original size.
    pub fn read(src: &[u8], hd: &Header) -> Result<Index> {
        if xxh3_64(src) != hd.index_check {
            return Err(Error::CorruptHeader);
        }
        let mut r = Cursor { b: src, pos: 0 };
        let n = r.u32()? as usize;
        let method = r.u32()?;
        if !matches!(method, EXTRA_ZSTD | EXTRA_GGUF_SPLIT | EXTRA_GGUF_COLUMNS) {
            return Err(Error::CorruptHeader);
        }
        let extra = Extra {
            method,
            offset: r.u64()?,
            size: r.u64()?,
            raw_size: r.u64()?,
            metadata_size: r.u64()?,
            sha256: r.take(32)?.try_into().unwrap(),
        };
        if n > (src.len() - INDEX_FIXED) / ENTRY_FIXED {
            return Err(Error::CorruptHeader);
        }
        let mut tensors = Vec::with_capacity(n.min(1 << 12));
        for _ in 0..n {
            let len = r.u32()? as usize;
            if len > MAX_NAME {
                return Err(Error::CorruptHeader);
            }
            let name = r.take(len)?.to_vec();
            let container_type = r.u32()?;
            let kind = Kind::from_u32(r.u32()?).map_err(|_| Error::CorruptHeader)?;
            let nd = r.u32()? as usize;
            if nd > MAX_DIMS {
                return Err(Error::CorruptHeader);
            }
            let dims = (0..nd).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
            let (orig_offset, orig_size, arc_offset, arc_size) = (r.u64()?, r.u64()?, r.u64()?, r.u64()?);
            let sha256 = r.take(32)?.try_into().unwrap();
            let mut name_c = name.clone();
            name_c.push(0);
            if orig_size % kind.element_size() as u64 != 0 {
                return Err(Error::CorruptHeader);
            }
            tensors.push(Entry {
                name,
                name_c,
                container_type,
                kind,
                dims,
                orig_offset,
                orig_size,
                arc_offset,
                arc_size,
                sha256,
            });
        }
        if r.pos != src.len() {
            return Err(Error::CorruptHeader);
        }
        let idx = Index { extra, tensors };
        idx.check(hd)?;
        Ok(idx)
    }

    fn check(&self, hd: &Header) -> Result<()> {
        let bad = || Error::CorruptHeader;
        let e = &self.extra;
        // Archive side: frames and the extra frame lie between the header and the index, apart.
        let mut spans: Vec<(u64, u64)> = self.tensors.iter().map(|t| (t.arc_offset, t.arc_size)).collect();
        spans.push((e.offset, e.size));
        spans.sort_unstable();
        let mut at = HEADER_LEN as u64;
        for (off, size) in spans {
            let end = off.checked_add(size).ok_or_else(bad)?;
            if off < at || end > hd.index_offset {
                return Err(bad());
            }
            at = end;
        }
        // Original side: the metadata, then tensors in order without overlap, inside the file;
        // everything else is the extra frame's.
        let mut at = e.metadata_size;
        let mut tensor_bytes = 0u64;
        for t in self.in_file_order().into_iter().map(|i| &self.tensors[i]) {
            let end = t.orig_offset.checked_add(t.orig_size).ok_or_else(bad)?;
            if t.orig_offset < at || end > hd.original_size {
                return Err(bad());
            }
            at = end;
            tensor_bytes += t.orig_size;
        }
        if e.metadata_size > e.raw_size
            || e.raw_size.checked_add(tensor_bytes) != Some(hd.original_size)
            || e.raw_size > (e.size + 1).saturating_mul(MAX_EXPANSION)
        {
            return Err(bad());
        }
        Ok(())
    }

    /// Indices of the tensors, sorted by where they are in the original file.
    pub fn in_file_order(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.tensors.len()).collect();
        v.sort_by_key(|&i| (self.tensors[i].orig_offset, self.tensors[i].orig_size));
        v
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.b.len() - self.pos {
            return Err(Error::CorruptHeader);
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
}
