//! What a hostile input of N bytes can make the library allocate, measured with a counting global
//! allocator: the largest single allocation (or reallocation) made while a decode or an open runs.
//!
//! The bounds the library enforces, read from the code and measured here (docs/FORMAT.md,
//! section 9, says the same in prose):
//!
//! - Parsing and validating (`gguf::read`, `safetensors::read`, `frame::read_info` and
//!   `FrameReader::new`, `Archive::from_bytes`) allocates at most `PARSE_FACTOR × N + PARSE_SLACK`
//!   in one block: counts are bounded by the bytes that remain, vectors grow as entries are read.
//! - Decoding allocates the output, whose size the frame header claims once the whole frame has
//!   validated (`decompress`, `tensor_vec`; `restore_to` and `verify` a window of at most
//!   max(16 MiB, chunk size) at a time). A coded chunk may claim at most 2^15 original bytes per
//!   stored byte (the expansion rule), and no less than its method's smallest coding
//!   (`Codec::min_coded_len`); `frame_claim_ratios` measures the largest claim each method
//!   accepts per frame byte.
//! - An archive's extra frame may claim (extra_size + 1) × 2^15 bytes (`MAX_EXPANSION`).
#[path = "../fuzz/seeds.rs"]
mod seeds;
#[path = "../fuzz/targets.rs"]
mod targets;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use seeds::{Fixtures, Lcg};
use weightzip::archive::Archive;
use weightzip::{frame, gguf, safetensors, Error, Kind, Options};
use xxhash_rust::xxh3::xxh3_64;

/// Counts the largest request while `ACTIVE` is set. Requests above `REFUSE` fail (null), so a
/// bug cannot make the test touch gigabytes: fallible paths return OUT_OF_MEMORY, infallible ones
/// abort with the message below.
struct Counting;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static LARGEST: AtomicUsize = AtomicUsize::new(0);
const REFUSE: usize = 1 << 30;

impl Counting {
    fn note(size: usize) -> bool {
        if ACTIVE.load(Ordering::Relaxed) {
            LARGEST.fetch_max(size, Ordering::Relaxed);
        }
        if size > REFUSE {
            let msg = b"allocation_limits: refused an allocation over 1 GiB\n";
            // SAFETY: writing a static buffer to stderr; no allocation.
            unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
            return false;
        }
        true
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if !Counting::note(l.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if !Counting::note(l.size()) {
            return std::ptr::null_mut();
        }
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if !Counting::note(new) {
            return std::ptr::null_mut();
        }
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One measurement at a time: the counter is global, and the tests of this file run in parallel.
static SERIAL: Mutex<()> = Mutex::new(());

/// The largest single allocation `f` makes (on any thread while it runs), and its result.
fn largest<T>(f: impl FnOnce() -> T) -> (usize, T) {
    LARGEST.store(0, Ordering::SeqCst);
    ACTIVE.store(true, Ordering::SeqCst);
    let r = f();
    ACTIVE.store(false, Ordering::SeqCst);
    (LARGEST.load(Ordering::SeqCst), r)
}

/// Parsing allocates at most this many bytes per input byte in one block, plus `PARSE_SLACK`.
const PARSE_FACTOR: usize = 40;
const PARSE_SLACK: usize = 64 << 10;

fn fixtures() -> &'static Fixtures {
    static FX: OnceLock<Fixtures> = OnceLock::new();
    FX.get_or_init(|| Fixtures::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")))
}

fn one() -> Options {
    Options::with_threads(1)
}

/// Mutations of `seeds`, each also with its checksums recomputed by `fix` (so the edits reach past
/// the checksums): `n` per seed.
fn hostile(seeds: &seeds::Seeds, n: usize, fix: Option<fn(&mut [u8])>, rng: u64) -> Vec<Vec<u8>> {
    let mut r = Lcg::new(rng);
    let mut out = Vec::new();
    for (_, s) in seeds {
        for _ in 0..n {
            let o = &seeds[r.below_usize(seeds.len())].1;
            let mut m = seeds::mutate(&mut r, s, o);
            out.push(m.clone());
            if let Some(fix) = fix {
                fix(&mut m);
                out.push(m);
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Frames

/// A frame with the given header fields, model, chunk table entries (stored size, coded, model)
/// and payload; checksums are right, chunk checks are zero.
fn craft_frame(
    kind: Kind,
    method: u8,
    original_size: u64,
    chunk_size: u32,
    model: &[u8],
    entries: &[(u32, bool, u8)],
    payload: &[u8],
) -> Vec<u8> {
    let mut f = frame::MAGIC.to_vec();
    f.extend_from_slice(&frame::FORMAT_VERSION.to_le_bytes());
    f.push(kind.id() as u8);
    f.push(method);
    f.extend_from_slice(&original_size.to_le_bytes());
    f.extend_from_slice(&chunk_size.to_le_bytes());
    f.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    f.extend_from_slice(&(model.len() as u32).to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let hc = xxh3_64(&f);
    f.extend_from_slice(&hc.to_le_bytes());
    let meta = f.len();
    f.extend_from_slice(model);
    for &(stored, coded, m) in entries {
        f.extend_from_slice(&stored.to_le_bytes());
        f.extend_from_slice(&[coded as u8, m, 0, 0]);
        f.extend_from_slice(&0u64.to_le_bytes());
    }
    let mc = xxh3_64(&f[meta..]);
    f.extend_from_slice(&mc.to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// The model section of a real frame of `kind`.
fn model_of(kind: Kind) -> (u8, Vec<u8>) {
    let f = seeds::frame_of(fixtures(), kind, frame::MIN_CHUNK_SIZE as usize + 4096, frame::MIN_CHUNK_SIZE);
    let info = frame::read_info(&f).unwrap();
    let m = f[frame::HEADER_LEN..frame::HEADER_LEN + info.model_size as usize].to_vec();
    (info.method as u8, m)
}

/// The largest original size a frame of `kind` accepts for one coded chunk of `chunk` bytes,
/// as (frame bytes, claimed bytes): the payload is the method's smallest accepted size, found
/// by trying sizes upward.
fn smallest_accepted(kind: Kind, chunk: u32) -> Option<(usize, u64)> {
    let (method, model) = model_of(kind);
    let mut lo = 0u32;
    // Sizes are monotone: find the first accepted by doubling, then bisect.
    let accepted = |stored: u32| {
        let f =
            craft_frame(kind, method, chunk as u64, chunk, &model, &[(stored, true, 0)], &vec![0x55; stored as usize]);
        frame::FrameReader::new(&f).is_ok()
    };
    let mut hi = 1u32;
    while !accepted(hi) {
        lo = hi;
        hi = hi.checked_mul(2)?;
        if hi > chunk {
            return None;
        }
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if accepted(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let f = craft_frame(kind, method, chunk as u64, chunk, &model, &[(hi, true, 0)], &vec![0x55; hi as usize]);
    Some((f.len(), chunk as u64))
}

/// For each method, the largest original size one frame byte can claim (one coded chunk of
/// 16 MiB with the smallest payload the method accepts): the ratio `decompress` allocates.
#[test]
fn frame_claim_ratios() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let chunk = 16u32 << 20;
    let mut report = Vec::new();
    for kind in [Kind::Bytes, Kind::Q8_0, Kind::Q4K, Kind::Bf16, Kind::F32] {
        let es = kind.element_size() as u32;
        let cs = chunk / es * es;
        let (n, claim) = smallest_accepted(kind, cs).expect("some payload size is accepted");
        let ratio = claim as f64 / n as f64;
        report.push(format!("{}: {n}-byte frame claims {claim} bytes ({ratio:.0}x)", kind.name()));
        // What the code enforces today (see the module comment), not what it should.
        let limit = match kind {
            Kind::Bytes => 2_000_000.0,
            Kind::Q8_0 | Kind::Q4K => 100_000.0,
            Kind::Bf16 => 4.1,
            Kind::F32 => 8.1,
            _ => unreachable!(),
        };
        assert!(ratio <= limit, "{}", report.last().unwrap());
    }
    eprintln!("frame claim ratios (16 MiB chunk, one coded chunk):\n  {}", report.join("\n  "));
}

/// Constant data codes to almost nothing under the rANS methods (a symbol with the whole
/// probability mass costs no bits), so writers store a chunk raw when it would expand more than
/// `frame::MAX_EXPANSION`-fold, which lets readers refuse larger claims. With 16 MiB chunks of
/// zeros every kind stays within the bound; with the default 256 KiB chunks zeros still compress
/// several hundred-fold.
#[test]
fn real_frames_of_constant_data_stay_within_the_expansion_bound() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut report = Vec::new();
    for kind in [Kind::Q4K, Kind::Q8_0, Kind::Bytes] {
        let es = kind.element_size();
        let n = (16usize << 20) / es * es;
        for cs in [(16u32 << 20) / es as u32 * es as u32, 0] {
            let f = frame::compress(
                kind,
                &vec![0u8; n],
                &Options { threads: 1, chunk_size: cs, progress: None, fast: false, row_len: 0 },
            )
            .unwrap();
            let ratio = n as f64 / f.len() as f64;
            report.push(format!(
                "{}: {} zero bytes, chunk {cs} -> {}-byte frame ({ratio:.0}x)",
                kind.name(),
                n,
                f.len()
            ));
            assert!(ratio <= frame::MAX_EXPANSION as f64, "{}", report.last().unwrap());
            if cs == 0 {
                assert!(ratio >= 200.0, "{}", report.last().unwrap());
            }
            let (big, back) = largest(|| frame::decompress(&f, &one()));
            assert_eq!(back.unwrap().len(), n);
            assert!(big <= n + PARSE_SLACK, "decompress of a valid frame allocated {big} for {n} bytes of output");
        }
    }
    eprintln!("real frames of zeros:\n  {}", report.join("\n  "));
}

/// decompress(): the output is allocated only after the whole frame validated, so a frame that
/// fails to validate allocates O(N); one that validates allocates its claimed original size.
#[test]
fn hostile_frames_allocate_at_most_their_claim_plus_a_linear_term() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let inputs = hostile(&seeds::frame_seeds(fixtures()), 40, Some(targets::fix_frame), 11);
    let mut worst = (0f64, 0usize, 0usize);
    for f in &inputs {
        let valid = frame::FrameReader::new(f).map(|r| r.info().original_size).ok();
        let (big, r) = largest(|| frame::decompress(f, &one()));
        assert!(!matches!(r, Err(Error::Panic)));
        let claim = valid.unwrap_or(0) as usize;
        let over = big.saturating_sub(claim);
        assert!(
            over <= PARSE_FACTOR * f.len() + PARSE_SLACK,
            "a {}-byte frame (claim {claim}) allocated {big} bytes in one block",
            f.len()
        );
        if valid.is_none() {
            assert!(big <= PARSE_FACTOR * f.len() + PARSE_SLACK, "an invalid {}-byte frame allocated {big}", f.len());
        }
        let ratio = big as f64 / f.len() as f64;
        if ratio > worst.0 {
            worst = (ratio, f.len(), big);
        }
    }
    eprintln!("frames: {} inputs, worst {:.1}x ({} bytes -> {} bytes)", inputs.len(), worst.0, worst.1, worst.2);
}

/// An 82-byte grouped frame claiming 64 MiB is refused before anything is allocated: a reader
/// refuses any coded chunk claiming more than `frame::MAX_EXPANSION` (2^15) bytes per stored byte
/// (zstd expands at most ~32,768-fold: 4 bytes per 128 KiB run-length block), and writers store
/// chunks that would expand further raw. So a frame's claim is bounded by ~2^15 x its size.
#[test]
fn grouped_frame_claims_are_bounded_by_zstd_expansion() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let chunk = 64u32 << 20;
    let payload = [0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0, 0];
    let f = craft_frame(Kind::Bytes, 4, chunk as u64, chunk, &[1], &[(9, true, 0)], &payload);
    assert_eq!(f.len(), 82);
    let (big, r) = largest(|| frame::decompress(&f, &one()));
    assert!(r.is_err());
    let bound = (1usize << 15) * f.len() + PARSE_SLACK;
    assert!(
        big <= bound,
        "an {}-byte grouped frame made decompress allocate {big} bytes ({}x its size; bound {bound})",
        f.len(),
        big / f.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Containers

#[test]
fn hostile_gguf_headers_allocate_linearly() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut inputs = hostile(&seeds::gguf_seeds(fixtures()), 200, None, 12);
    // Crafted headers claiming huge counts and lengths.
    let head = |version: u32, nt: u64, nkv: u64| {
        let mut o = b"GGUF".to_vec();
        o.extend_from_slice(&version.to_le_bytes());
        o.extend_from_slice(&nt.to_le_bytes());
        o.extend_from_slice(&nkv.to_le_bytes());
        o
    };
    inputs.push(head(3, u64::MAX, u64::MAX));
    inputs.push(head(3, 1 << 40, 0));
    let mut h = head(3, 0, 1);
    seeds::put_str(&mut h, b"k");
    h.extend_from_slice(&9u32.to_le_bytes()); // array
    h.extend_from_slice(&8u32.to_le_bytes()); // of strings
    h.extend_from_slice(&(1u64 << 62).to_le_bytes());
    inputs.push(h);
    let mut h = head(3, 1, 0);
    h.extend_from_slice(&(u64::MAX - 1).to_le_bytes()); // name length
    h.extend_from_slice(&[0; 64]);
    inputs.push(h);
    // Many tiny tensor infos: the largest honest header per byte.
    let mut h = head(3, 1000, 0);
    for _ in 0..1000 {
        seeds::put_str(&mut h, b"");
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&0u64.to_le_bytes());
    }
    inputs.push(h);
    let mut worst = (0f64, 0, 0);
    for f in &inputs {
        let (big, _) = largest(|| gguf::read(f));
        assert!(big <= PARSE_FACTOR * f.len() + PARSE_SLACK, "a {}-byte GGUF allocated {big} in one block", f.len());
        if f.len() > 4096 && big as f64 / f.len() as f64 > worst.0 {
            worst = (big as f64 / f.len() as f64, f.len(), big);
        }
    }
    eprintln!("gguf: {} inputs, worst over 4 KiB {:.2}x ({} -> {})", inputs.len(), worst.0, worst.1, worst.2);
}

#[test]
fn hostile_safetensors_headers_allocate_linearly() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut inputs = hostile(&seeds::safetensors_seeds(fixtures()), 200, None, 13);
    let with_header = |json: &[u8], n: u64| {
        let mut o = n.to_le_bytes().to_vec();
        o.extend_from_slice(json);
        o
    };
    inputs.push(with_header(b"{}", u64::MAX));
    inputs.push(with_header(b"{}", safetensors::MAX_HEADER_LEN + 1));
    inputs.push(with_header(b"{}", safetensors::MAX_HEADER_LEN));
    // JSON whose parsed form is largest per byte: an array of one-digit numbers, a long shape.
    let mut arr = b"[0".to_vec();
    arr.extend(std::iter::repeat_n(&b",0"[..], 50_000).flatten());
    arr.push(b']');
    inputs.push(with_header(&arr, arr.len() as u64));
    let mut shape = br#"{"t":{"dtype":"U8","shape":[1"#.to_vec();
    shape.extend(std::iter::repeat_n(&b",1"[..], 50_000).flatten());
    shape.extend_from_slice(br#"],"data_offsets":[0,1]}}"#);
    inputs.push(with_header(&shape, shape.len() as u64));
    let mut worst = (0f64, 0, 0);
    for f in &inputs {
        let (big, _) = largest(|| safetensors::read(f));
        assert!(big <= PARSE_FACTOR * f.len() + PARSE_SLACK, "a {}-byte safetensors file allocated {big}", f.len());
        if f.len() > 4096 && big as f64 / f.len() as f64 > worst.0 {
            worst = (big as f64 / f.len() as f64, f.len(), big);
        }
    }
    eprintln!("safetensors: {} inputs, worst over 4 KiB {:.2}x ({} -> {})", inputs.len(), worst.0, worst.1, worst.2);
}

// ---------------------------------------------------------------------------------------------
// Archives

/// Opening allocates O(N). Reading allocates what the frames claim (bounded as for frames),
/// a window of at most max(16 MiB, chunk size) while restoring, and the extra frame's claim,
/// at most (extra_size + 1) × 2^15.
#[test]
fn hostile_archives_allocate_linearly_to_open_and_their_claims_to_read() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let inputs = hostile(&seeds::archive_seeds(fixtures()), 60, Some(targets::fix_archive), 14);
    let mut worst_open = (0f64, 0, 0);
    for a in &inputs {
        let (big, r) = largest(|| Archive::from_bytes(a).map(|_| ()));
        assert!(big <= PARSE_FACTOR * a.len() + PARSE_SLACK, "opening a {}-byte archive allocated {big}", a.len());
        if a.len() > 4096 && big as f64 / a.len() as f64 > worst_open.0 {
            worst_open = (big as f64 / a.len() as f64, a.len(), big);
        }
        if r.is_err() {
            continue;
        }
        let ar = Archive::from_bytes(a).unwrap();
        let claim = ar.tensors().iter().map(|t| t.orig_size).max().unwrap_or(0) as usize;
        let extra = ar.index().extra;
        let extra_claim = extra.raw_size as usize;
        assert!(extra.raw_size <= (extra.size + 1) << 15);
        let (big, _) = largest(|| {
            for i in 0..ar.tensors().len() {
                let _ = ar.tensor_vec(i, &one());
            }
            let _ = ar.restore_to(&mut std::io::sink(), &one());
            let _ = ar.verify(&one());
        });
        let bound = claim.max(extra_claim) + PARSE_FACTOR * a.len() + PARSE_SLACK;
        assert!(
            big <= bound,
            "reading a {}-byte archive allocated {big} (claims {claim}, extra {extra_claim})",
            a.len()
        );
    }
    eprintln!(
        "archives: {} inputs, worst open over 4 KiB {:.2}x ({} -> {})",
        inputs.len(),
        worst_open.0,
        worst_open.1,
        worst_open.2
    );
}

/// An archive whose one tensor is the 82-byte grouped frame above (329 bytes in all): the archive
/// opens (the index is consistent), but every read refuses the frame's claim before allocating it.
#[test]
fn archive_reads_refuse_an_impossible_claim_before_allocating_it() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let chunk = 64u32 << 20;
    let payload = [0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0, 0];
    let fr = craft_frame(Kind::Bytes, 4, chunk as u64, chunk, &[1], &[(9, true, 0)], &payload);
    let a = archive_with_one_tensor(&fr, chunk as u64);
    assert_eq!(a.len(), 329);
    let ar = Archive::from_bytes(&a).expect("the crafted archive opens");
    let small = 1 << 20;
    let (big, r) = largest(|| ar.tensor_vec(0, &one()));
    assert_eq!(r, Err(Error::CorruptHeader));
    assert!(big < small, "tensor_vec allocated {big}");
    let (big, r) = largest(|| ar.restore_to(&mut std::io::sink(), &one()));
    assert_eq!(r, Err(Error::CorruptHeader));
    assert!(big < small, "restore_to allocated {big}");
    let (big, r) = largest(|| ar.verify(&one()));
    assert_eq!(r, Err((Some(0), Error::CorruptHeader)));
    assert!(big < small, "verify allocated {big}");
}

/// A GGUF archive holding `frame` as its one tensor of `orig_size` bytes, with an empty extra
/// frame (metadata_size 0): header, frame, extra frame, index.
fn archive_with_one_tensor(frame: &[u8], orig_size: u64) -> Vec<u8> {
    use weightzip::archive::{Container, Entry, Extra, Header, Index};
    // The extra frame of an archive of a GGUF file without tensors (24 bytes: magic, version,
    // counts), taken from the library's own writer: the metadata of this archive too.
    let empty =
        seeds::archive_of(&seeds::GgufSpec { version: 3, alignment: 32, n_kv: 0, kv: vec![], tensors: vec![] }.build());
    let e = Archive::from_bytes(&empty).unwrap().index().extra;
    let (z, raw_size, sha) = (&empty[e.offset as usize..(e.offset + e.size) as usize], e.raw_size, e.sha256);
    let mut a = vec![0u8; weightzip::archive::format::HEADER_LEN];
    let arc_offset = a.len() as u64;
    a.extend_from_slice(frame);
    let extra = Extra {
        method: 0,
        offset: a.len() as u64,
        size: z.len() as u64,
        raw_size,
        metadata_size: raw_size,
        sha256: sha,
    };
    a.extend_from_slice(z);
    let index = Index {
        extra,
        tensors: vec![Entry {
            name: b"t".to_vec(),
            name_c: b"t\0".to_vec(),
            container_type: 99,
            kind: Kind::Bytes,
            dims: vec![orig_size],
            orig_offset: raw_size,
            orig_size,
            arc_offset,
            arc_size: frame.len() as u64,
            sha256: [0; 32],
        }],
    };
    let ib = index.write();
    let hd = Header {
        container: Container::Gguf,
        original_size: raw_size + orig_size,
        index_offset: a.len() as u64,
        index_size: ib.len() as u64,
        index_check: xxh3_64(&ib),
    };
    a.extend_from_slice(&ib);
    a[..weightzip::archive::format::HEADER_LEN].copy_from_slice(&hd.write());
    a
}
