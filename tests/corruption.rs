//! The corruption matrix: one named case per defect of a frame, each with the exact error the
//! library must report, plus a deterministic mutation fuzzer. A corrupt frame must never decode
//! to `Ok` with bytes other than the original, and must never panic.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

use common::{raw_fixture, Lcg};
use weightzip::codec::Method;
use weightzip::frame::{CHECK_LEN, CHUNK_ENTRY_LEN, HEADER_LEN, MAX_CHUNK_SIZE, MAX_MODEL_SIZE, MIN_CHUNK_SIZE};
use weightzip::{compress, decompress, decompress_into, read_info, Error, Kind, Options};
use xxhash_rust::xxh3::xxh3_64;

// Header field offsets (docs: src/frame.rs `compress`).
const OFF_VERSION: usize = 4;
const OFF_KIND: usize = 6;
const OFF_METHOD: usize = 7;
const OFF_ORIG: usize = 8;
const OFF_CHUNK_SIZE: usize = 16;
const OFF_CHUNK_COUNT: usize = 20;
const OFF_MODEL_SIZE: usize = 24;
const OFF_FLAGS: usize = 28;
const OFF_PAYLOAD: usize = 32;
const OFF_HCHECK: usize = 40;

fn one_thread() -> Options {
    Options::with_threads(1)
}

/// A real frame with several coded chunks: the first 1 MiB of the fixture in 64 KiB chunks.
struct Fixture {
    src: Vec<u8>,
    frame: Vec<u8>,
    model_size: usize,
    chunks: usize,
}

impl Fixture {
    fn model_end(&self) -> usize {
        HEADER_LEN + self.model_size
    }
    fn table_end(&self) -> usize {
        self.model_end() + CHUNK_ENTRY_LEN * self.chunks
    }
    fn payload_start(&self) -> usize {
        self.table_end() + CHECK_LEN
    }
    fn entry(&self, i: usize) -> usize {
        self.model_end() + CHUNK_ENTRY_LEN * i
    }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let src = raw_fixture()[..1 << 20].to_vec();
        let frame = compress(
            Kind::Bf16,
            &src,
            &Options { threads: 0, chunk_size: MIN_CHUNK_SIZE, progress: None, fast: false, row_len: 0 },
        )
        .unwrap();
        let info = read_info(&frame).unwrap();
        assert_eq!(info.method, Method::Bf16Hist);
        assert_eq!(info.chunk_count, 16);
        assert!(info.model_size > 8);
        assert_eq!(decompress(&frame, &one_thread()).unwrap(), src);
        Fixture { src, model_size: info.model_size as usize, chunks: info.chunk_count as usize, frame }
    })
}

/// A stored frame (incompressible input): chunk entries are all raw.
fn stored_frame() -> &'static (Vec<u8>, Vec<u8>) {
    static F: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    F.get_or_init(|| {
        let src = Lcg::new(99).bytes(200_000);
        let frame = compress(
            Kind::Bf16,
            &src,
            &Options { threads: 1, chunk_size: MIN_CHUNK_SIZE, progress: None, fast: false, row_len: 0 },
        )
        .unwrap();
        assert_eq!(read_info(&frame).unwrap().method, Method::Stored);
        (src, frame)
    })
}

fn put_u16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(f: &mut [u8], at: usize, v: u64) {
    f[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u32(f: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(f[at..at + 4].try_into().unwrap())
}

/// Recomputes the header checksum, so a crafted header passes it.
fn reseal_header(f: &mut [u8]) {
    let c = xxh3_64(&f[..40]);
    put_u64(f, OFF_HCHECK, c);
}

/// Recomputes the model-and-table checksum from the header's model size and chunk count.
/// Returns false if the frame is too short to hold it.
fn reseal_table(f: &mut [u8]) -> bool {
    if f.len() < HEADER_LEN {
        return false;
    }
    let model = get_u32(f, OFF_MODEL_SIZE) as usize;
    let count = get_u32(f, OFF_CHUNK_COUNT) as usize;
    let Some(end) = count.checked_mul(CHUNK_ENTRY_LEN).and_then(|t| t.checked_add(HEADER_LEN + model)) else {
        return false;
    };
    if end.checked_add(CHECK_LEN).is_none_or(|e| e > f.len()) {
        return false;
    }
    let c = xxh3_64(&f[HEADER_LEN..end]);
    put_u64(f, end, c);
    true
}

/// Asserts that `bad` fails with exactly `want` through every entry point: `decompress`,
/// `decompress_into` (at 1 and 2 threads) and, for header defects, `read_info`. On a
/// `decompress_into` failure the destination is either untouched (defects found before decoding)
/// or zero-filled (defects found while decoding).
fn expect_err(case: &str, bad: &[u8], want: Error) {
    let f = fixture();
    for threads in [1, 2] {
        let o = Options::with_threads(threads);
        match decompress(bad, &o) {
            Ok(v) => panic!(
                "{case}: decompress returned Ok ({} bytes, {} the original) instead of {want:?}",
                v.len(),
                if v == f.src { "equal to" } else { "DIFFERENT from" }
            ),
            Err(e) => assert_eq!(e, want, "{case}: decompress (threads {threads})"),
        }
        let n = read_info(bad).map(|i| i.original_size as usize).unwrap_or(f.src.len());
        if n > 64 << 20 {
            continue; // a crafted size: no buffer of that size is needed to check the error
        }
        let mut dst = vec![0xA5u8; n];
        match decompress_into(bad, &mut dst, &o) {
            Ok(()) => panic!("{case}: decompress_into returned Ok instead of {want:?}"),
            Err(e) => assert_eq!(e, want, "{case}: decompress_into (threads {threads})"),
        }
        let untouched = dst.iter().all(|&b| b == 0xA5);
        let zeroed = dst.iter().all(|&b| b == 0);
        match want {
            Error::CorruptData | Error::CorruptModel => {
                assert!(zeroed, "{case}: destination not zero-filled after {want:?}")
            }
            // Found while parsing (untouched) or, for a model index, once decoding began (zeroed).
            Error::CorruptHeader => assert!(untouched || zeroed, "{case}: destination partly written after {want:?}"),
            _ => assert!(
                untouched,
                "{case}: destination written although the error ({want:?}) was found before decoding"
            ),
        }
    }
}

/// `read_info` must give exactly `want` too (for defects in the fixed header).
fn expect_info_err(case: &str, bad: &[u8], want: Error) {
    assert_eq!(read_info(bad).map(|_| ()), Err(want.clone()), "{case}: read_info");
    expect_err(case, bad, want.clone());
}

fn frame_with(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut f = fixture().frame.clone();
    edit(&mut f);
    f
}

// Magic ----------------------------------------------------------------------------------------

#[test]
fn bad_magic() {
    expect_info_err("first magic byte changed", &frame_with(|f| f[0] = 0x88), Error::BadMagic);
    expect_info_err("magic W -> w", &frame_with(|f| f[1] = b'w'), Error::BadMagic);
    expect_info_err("last magic byte changed", &frame_with(|f| f[3] = b'G'), Error::BadMagic);
    expect_info_err("zip file", &frame_with(|f| f[..4].copy_from_slice(b"PK\x03\x04")), Error::BadMagic);
    expect_info_err("zstd frame", &frame_with(|f| f[..4].copy_from_slice(&[0x28, 0xB5, 0x2F, 0xFD])), Error::BadMagic);
    expect_info_err("one non-magic byte", &[0x00], Error::BadMagic);
    expect_info_err("three bytes, third wrong", &[0x89, b'W', b'X'], Error::BadMagic);
    expect_info_err("all zeros", &[0u8; 100], Error::BadMagic);
}

// Truncation -----------------------------------------------------------------------------------

#[test]
fn truncated_frames() {
    let fx = fixture();
    let f = &fx.frame;
    let cases = [
        ("empty", 0),
        ("3 bytes (magic prefix)", 3),
        ("4 bytes (magic only)", 4),
        ("47 bytes", 47),
        ("48 bytes (header only)", 48),
        ("mid-model", HEADER_LEN + fx.model_size / 2),
        ("model end", fx.model_end()),
        ("mid-chunk-table", fx.model_end() + CHUNK_ENTRY_LEN * fx.chunks / 2 + 3),
        ("table end (no checksum)", fx.table_end()),
        ("mid-table-checksum", fx.table_end() + 4),
        ("payload start", fx.payload_start()),
        ("mid-payload", (fx.payload_start() + f.len()) / 2),
        ("last byte missing", f.len() - 1),
    ];
    for (case, len) in cases {
        if len < HEADER_LEN {
            expect_info_err(case, &f[..len], Error::Truncated);
        } else {
            // The header is intact: read_info succeeds, decoding does not.
            assert!(read_info(&f[..len]).is_ok(), "{case}: read_info needs only the header");
            expect_err(case, &f[..len], Error::Truncated);
        }
    }
    // Every prefix length, cheaply: never Ok.
    for len in 0..f.len() {
        assert!(decompress(&f[..len], &one_thread()).is_err(), "prefix of {len} bytes decoded");
    }
}

#[test]
fn trailing_data() {
    let f = fixture();
    expect_err("one trailing zero byte", &frame_with(|v| v.push(0)), Error::TrailingData);
    expect_err("one trailing 0xFF byte", &frame_with(|v| v.push(0xFF)), Error::TrailingData);
    let mut two = f.frame.clone();
    two.extend_from_slice(&f.frame);
    expect_err("two frames back to back", &two, Error::TrailingData);
}

// Fixed header ---------------------------------------------------------------------------------

#[test]
fn header_bit_flips_at_every_offset() {
    let f = &fixture().frame;
    for at in 0..HEADER_LEN {
        for bit in 0..8 {
            let mut bad = f.clone();
            bad[at] ^= 1 << bit;
            let want = if at < 4 { Error::BadMagic } else { Error::CorruptHeader };
            let case = format!("header byte {at} bit {bit}");
            assert_eq!(read_info(&bad).map(|_| ()), Err(want.clone()), "{case}: read_info");
            assert_eq!(decompress(&bad, &one_thread()).map(|_| ()), Err(want.clone()), "{case}: decompress");
        }
        // The full matrix (both entry points, destination checks) once per byte.
        let mut bad = f.clone();
        bad[at] ^= 0x10;
        expect_err(
            &format!("header byte {at} flipped"),
            &bad,
            if at < 4 { Error::BadMagic } else { Error::CorruptHeader },
        );
    }
}

#[test]
fn header_checksum_replaced() {
    expect_info_err("header checksum zeroed", &frame_with(|f| put_u64(f, OFF_HCHECK, 0)), Error::CorruptHeader);
    expect_info_err(
        "header checksum of other bytes",
        &frame_with(|f| {
            let c = xxh3_64(&f[..41]);
            put_u64(f, OFF_HCHECK, c)
        }),
        Error::CorruptHeader,
    );
}

/// A frame whose header field was changed and whose header checksum was recomputed.
fn resealed(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    frame_with(|f| {
        edit(f);
        reseal_header(f);
    })
}

#[test]
fn resealing_an_unchanged_header_is_a_no_op() {
    // Guards the helpers: recomputing the checksums of an intact frame changes nothing.
    let f = fixture();
    let mut g = f.frame.clone();
    reseal_header(&mut g);
    assert!(reseal_table(&mut g));
    assert!(g == f.frame);
    assert_eq!(decompress(&g, &one_thread()).unwrap(), f.src);
}

#[test]
fn unsupported_version_with_valid_checksum() {
    for v in [0u16, 2, 3, 0x0100, u16::MAX] {
        expect_info_err(&format!("version {v}"), &resealed(|f| put_u16(f, OFF_VERSION, v)), Error::UnsupportedVersion);
    }
}

#[test]
fn unknown_kind_with_valid_checksum() {
    for k in [0u8, 5, 15, 28, 0x7F, 0xFF] {
        expect_info_err(&format!("kind {k}"), &resealed(|f| f[OFF_KIND] = k), Error::UnknownKind);
    }
}

#[test]
fn unknown_method_with_valid_checksum() {
    for m in [2u8, 3, 0xFF] {
        expect_info_err(&format!("method {m}"), &resealed(|f| f[OFF_METHOD] = m), Error::CorruptHeader);
    }
    // Method "stored" while the header announces a model.
    expect_info_err(
        "method stored with a model",
        &resealed(|f| f[OFF_METHOD] = Method::Stored as u8),
        Error::CorruptHeader,
    );
}

#[test]
fn inconsistent_sizes_with_valid_header_checksum() {
    let fx = fixture();
    let n = fx.src.len() as u64;
    let count = fx.chunks as u32;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("chunk count + 1", resealed(|f| put_u32(f, OFF_CHUNK_COUNT, count + 1))),
        ("chunk count - 1", resealed(|f| put_u32(f, OFF_CHUNK_COUNT, count - 1))),
        ("chunk count 0", resealed(|f| put_u32(f, OFF_CHUNK_COUNT, 0))),
        ("chunk count max", resealed(|f| put_u32(f, OFF_CHUNK_COUNT, u32::MAX))),
        ("chunk size 0", resealed(|f| put_u32(f, OFF_CHUNK_SIZE, 0))),
        ("chunk size below minimum", resealed(|f| put_u32(f, OFF_CHUNK_SIZE, MIN_CHUNK_SIZE - 2))),
        ("chunk size odd", resealed(|f| put_u32(f, OFF_CHUNK_SIZE, MIN_CHUNK_SIZE + 1))),
        ("chunk size above maximum", resealed(|f| put_u32(f, OFF_CHUNK_SIZE, MAX_CHUNK_SIZE + 2))),
        ("chunk size doubled, count unchanged", resealed(|f| put_u32(f, OFF_CHUNK_SIZE, 2 * MIN_CHUNK_SIZE))),
        ("original size odd", resealed(|f| put_u64(f, OFF_ORIG, n - 1))),
        ("original size one chunk larger", resealed(|f| put_u64(f, OFF_ORIG, n + MIN_CHUNK_SIZE as u64))),
        ("original size 0", resealed(|f| put_u64(f, OFF_ORIG, 0))),
        ("original size huge", resealed(|f| put_u64(f, OFF_ORIG, u64::MAX - 1))),
        ("flags: an undefined bit", resealed(|f| put_u32(f, OFF_FLAGS, 2))),
        ("flags: the high bit", resealed(|f| put_u32(f, OFF_FLAGS, 0x8000_0000))),
        ("model size above maximum", resealed(|f| put_u32(f, OFF_MODEL_SIZE, MAX_MODEL_SIZE + 1))),
        ("payload size overflows the frame size", resealed(|f| put_u64(f, OFF_PAYLOAD, u64::MAX - 10))),
    ];
    for (case, bad) in &cases {
        expect_info_err(case, bad, Error::CorruptHeader);
    }
    // Consistent headers that disagree with the rest of the frame: the table checksum (which now
    // sits somewhere else, or covers other bytes) or the entry sizes catch them.
    let later: Vec<(&str, Vec<u8>)> = vec![
        (
            "chunk size doubled, count halved",
            resealed(|f| {
                put_u32(f, OFF_CHUNK_SIZE, 2 * MIN_CHUNK_SIZE);
                put_u32(f, OFF_CHUNK_COUNT, count / 2);
            }),
        ),
        (
            "model size + 1",
            resealed(|f| {
                let m = get_u32(f, OFF_MODEL_SIZE);
                put_u32(f, OFF_MODEL_SIZE, m + 1);
            }),
        ),
        (
            "model size - 1",
            resealed(|f| {
                let m = get_u32(f, OFF_MODEL_SIZE);
                put_u32(f, OFF_MODEL_SIZE, m - 1);
            }),
        ),
        (
            "payload size + 1",
            resealed(|f| {
                let p = u64::from_le_bytes(f[OFF_PAYLOAD..OFF_PAYLOAD + 8].try_into().unwrap());
                put_u64(f, OFF_PAYLOAD, p + 1);
            }),
        ),
        (
            "payload size - 2",
            resealed(|f| {
                let p = u64::from_le_bytes(f[OFF_PAYLOAD..OFF_PAYLOAD + 8].try_into().unwrap());
                put_u64(f, OFF_PAYLOAD, p - 2);
            }),
        ),
    ];
    for (case, bad) in &later {
        assert!(read_info(bad).is_ok(), "{case}: the header alone is consistent");
        expect_err(case, bad, Error::CorruptHeader);
    }
}

#[test]
fn original_size_changed_within_the_last_chunk() {
    // Header stays consistent (same chunk count), the last chunk's length changes: a coded last
    // chunk then decodes to a different length and fails; it must never succeed.
    let fx = fixture();
    assert_eq!(fx.src.len() % MIN_CHUNK_SIZE as usize, 0, "the last chunk is full, so the size can only shrink");
    for delta in [-2i64, -64, -(MIN_CHUNK_SIZE as i64) + 2] {
        let bad = resealed(|f| put_u64(f, OFF_ORIG, (fx.src.len() as i64 + delta) as u64));
        let info = read_info(&bad).expect("header consistent");
        assert_eq!(info.chunk_count as usize, fx.chunks);
        let r = decompress(&bad, &one_thread());
        assert!(matches!(r, Err(Error::CorruptData)), "original size {delta:+}: {:?}", r.map(|v| v.len()));
    }
}

// Model and chunk table ------------------------------------------------------------------------

#[test]
fn flips_in_model_and_chunk_table_fail_the_table_checksum() {
    let fx = fixture();
    let end = fx.payload_start(); // model, table and the table checksum itself
    for at in HEADER_LEN..end {
        let mut bad = fx.frame.clone();
        bad[at] ^= 1 << (at % 8);
        assert_eq!(
            decompress(&bad, &one_thread()).map(|_| ()),
            Err(Error::CorruptHeader),
            "byte {at} (model/table/checksum) flipped"
        );
        assert!(read_info(&bad).is_ok(), "byte {at}: the fixed header is unaffected");
    }
    let mut bad = fx.frame.clone();
    bad[HEADER_LEN] ^= 0xFF;
    expect_err("first model byte inverted", &bad, Error::CorruptHeader);
    let mut bad = fx.frame.clone();
    bad[fx.entry(3) + 9] ^= 0x01;
    expect_err("chunk 3 checksum flipped", &bad, Error::CorruptHeader);
}

/// A frame with a chunk-table edit and a recomputed table checksum.
fn table_edit(edit: impl FnOnce(&mut Vec<u8>, &Fixture)) -> Vec<u8> {
    let fx = fixture();
    let mut f = fx.frame.clone();
    edit(&mut f, fx);
    assert!(reseal_table(&mut f));
    f
}

#[test]
fn chunk_entries_with_valid_table_checksum() {
    let fx = fixture();
    let coded: Vec<usize> = (0..fx.chunks).filter(|&i| fx.frame[fx.entry(i) + 4] == 1).collect();
    assert!(coded.len() >= 2, "the fixture needs coded chunks");
    let c = coded[0];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("model index 255", table_edit(|f, fx| f[fx.entry(c) + 5] = 255)),
        (
            "model index = model count",
            table_edit(|f, fx| {
                let n_models = (0..fx.chunks).map(|i| f[fx.entry(i) + 5]).max().unwrap() as usize + 1;
                f[fx.entry(c) + 5] = n_models as u8;
            }),
        ),
        (
            "stored size + 1 (sum disagrees with the header)",
            table_edit(|f, fx| {
                let s = get_u32(f, fx.entry(c));
                put_u32(f, fx.entry(c), s + 1);
            }),
        ),
        ("stored size huge", table_edit(|f, fx| put_u32(f, fx.entry(c), u32::MAX))),
        ("chunk flag 2", table_edit(|f, fx| f[fx.entry(c) + 4] = 2)),
        ("chunk flag 0xFF", table_edit(|f, fx| f[fx.entry(c) + 4] = 0xFF)),
        ("entry reserved byte 6", table_edit(|f, fx| f[fx.entry(c) + 6] = 1)),
        ("entry reserved byte 7", table_edit(|f, fx| f[fx.entry(c) + 7] = 0x80)),
        (
            "coded chunk marked raw (stored size != chunk size)",
            table_edit(|f, fx| {
                f[fx.entry(c) + 4] = 0;
                f[fx.entry(c) + 5] = 0;
            }),
        ),
    ];
    for (case, bad) in &cases {
        expect_err(case, bad, Error::CorruptHeader);
    }

    // Defects the table checksum cannot see, found while decoding.
    let shifted = table_edit(|f, fx| {
        // Move two bytes from one coded chunk to the next: sizes still sum to the payload size.
        let (a, b) = (fx.entry(coded[0]), fx.entry(coded[1]));
        let (sa, sb) = (get_u32(f, a), get_u32(f, b));
        put_u32(f, a, sa - 2);
        put_u32(f, b, sb + 2);
    });
    expect_err("two bytes moved between chunk payloads", &shifted, Error::CorruptData);
    let wrong_sum = table_edit(|f, fx| {
        let at = fx.entry(coded[1]) + 8;
        let v = u64::from_le_bytes(f[at..at + 8].try_into().unwrap());
        put_u64(f, at, v ^ 1);
    });
    expect_err("chunk checksum in the table wrong", &wrong_sum, Error::CorruptData);
    let swapped = table_edit(|f, fx| {
        // Swap the entries of two coded chunks (payloads stay in place).
        let (a, b) = (fx.entry(coded[0]), fx.entry(coded[1]));
        let ea: Vec<u8> = f[a..a + CHUNK_ENTRY_LEN].to_vec();
        let eb: Vec<u8> = f[b..b + CHUNK_ENTRY_LEN].to_vec();
        f[a..a + CHUNK_ENTRY_LEN].copy_from_slice(&eb);
        f[b..b + CHUNK_ENTRY_LEN].copy_from_slice(&ea);
    });
    let r = decompress(&swapped, &one_thread());
    assert!(matches!(r, Err(Error::CorruptData)), "swapped entries: {:?}", r.map(|v| v.len()));
}

#[test]
fn stored_frame_table_defects() {
    let (src, frame) = stored_frame();
    let info = read_info(frame).unwrap();
    assert!(info.chunk_count >= 2);
    let e0 = HEADER_LEN; // no model
    let edit = |g: &dyn Fn(&mut Vec<u8>)| {
        let mut f = frame.clone();
        g(&mut f);
        assert!(reseal_table(&mut f));
        f
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("coded flag in a stored frame", edit(&|f| f[e0 + 4] = 1)),
        ("raw chunk with a model index", edit(&|f| f[e0 + 5] = 1)),
        (
            "raw chunk stored size - 2",
            edit(&|f| {
                let s = get_u32(f, e0);
                put_u32(f, e0, s - 2);
            }),
        ),
    ];
    for (case, bad) in &cases {
        assert_eq!(decompress(bad, &one_thread()).map(|_| ()), Err(Error::CorruptHeader), "{case}");
    }
    // A payload flip in a raw chunk is caught by the chunk checksum.
    let mut bad = frame.clone();
    let at = frame.len() - 1000;
    bad[at] ^= 4;
    let mut dst = vec![0xA5u8; src.len()];
    assert_eq!(decompress_into(&bad, &mut dst, &one_thread()), Err(Error::CorruptData));
    assert!(dst.iter().all(|&b| b == 0), "destination zero-filled after CorruptData");
    assert_eq!(decompress(frame, &one_thread()).unwrap(), *src);
}

#[test]
fn model_defects_with_valid_table_checksum() {
    let fx = fixture();
    // Garbage model bytes: the table parser must reject them (or the decode must fail).
    for fill in [0x00u8, 0xFF, 0x55] {
        let bad = table_edit(|f, fx| f[HEADER_LEN..fx.model_end()].fill(fill));
        let r = decompress(&bad, &one_thread());
        assert!(
            matches!(r, Err(Error::CorruptModel) | Err(Error::CorruptData)),
            "model filled with {fill:#x}: {:?}",
            r.map(|v| v.len())
        );
        let mut dst = vec![0xA5u8; fx.src.len()];
        let r2 = decompress_into(&bad, &mut dst, &one_thread());
        assert_eq!(r2, r.map(|_| ()));
        // A model rejected while validating leaves the destination untouched; a failure while
        // decoding zero-fills it.
        let expect = if r2 == Err(Error::CorruptModel) { 0xA5 } else { 0 };
        assert!(dst.iter().all(|&b| b == expect), "model filled with {fill:#x}: destination {expect:#x}-filled");
    }
    // Single bit flips in the model with a recomputed checksum: never a panic, and never Ok with
    // other bytes. (Ok with the original bytes is fine: a flip in the padding bits of the last
    // byte, or a level change that normalises to the same frequencies, leaves the model as it was.)
    for at in HEADER_LEN..fx.model_end() {
        for bit in [0, 3, 7] {
            let bad = table_edit(|f, _| f[at] ^= 1 << bit);
            let r = catch_unwind(AssertUnwindSafe(|| decompress(&bad, &one_thread())));
            match r {
                Err(_) => panic!("model byte {at} bit {bit} (resealed): decompress panicked"),
                Ok(Ok(v)) => assert!(v == fx.src, "model byte {at} bit {bit} (resealed): Ok with DIFFERENT bytes"),
                Ok(Err(e)) => assert!(
                    matches!(e, Error::CorruptModel | Error::CorruptData),
                    "model byte {at} bit {bit} (resealed): unexpected {e:?}"
                ),
            }
        }
    }
}

// Payload --------------------------------------------------------------------------------------

#[test]
fn payload_flips_are_corrupt_data() {
    let fx = fixture();
    let start = fx.payload_start();
    let len = fx.frame.len() - start;
    let mut rng = Lcg::new(3);
    let mut offsets: Vec<usize> = (0..300).map(|_| start + rng.below_usize(len)).collect();
    // Chunk boundaries, first and last payload bytes, the rANS state headers of the first chunk.
    let mut at = start;
    for i in 0..fx.chunks {
        let s = get_u32(&fx.frame, fx.entry(i)) as usize;
        offsets.extend([at, at + 1, at + s / 2, at + s - 2, at + s - 1]);
        at += s;
    }
    offsets.push(fx.frame.len() - 1);
    for &o in &offsets {
        let mut bad = fx.frame.clone();
        bad[o] ^= 1 << (o % 8);
        assert_eq!(decompress(&bad, &one_thread()).map(|_| ()), Err(Error::CorruptData), "payload byte {o} flipped");
    }
    // The full check (both threads, decompress_into zero-fill) on a few of them.
    for &o in offsets.iter().take(20) {
        let mut bad = fx.frame.clone();
        bad[o] ^= 0x80;
        expect_err(&format!("payload byte {o} high bit"), &bad, Error::CorruptData);
    }
}

#[test]
fn zeroed_and_swapped_payload_regions_are_corrupt_data() {
    let fx = fixture();
    let start = fx.payload_start();
    let mut zero = fx.frame.clone();
    zero[start + 1000..start + 3000].fill(0);
    expect_err("2000 payload bytes zeroed", &zero, Error::CorruptData);
    let mut ones = fx.frame.clone();
    let end = ones.len();
    ones[end - 500..].fill(0xFF);
    expect_err("last 500 payload bytes set to 0xFF", &ones, Error::CorruptData);
}

// Destination sizes ----------------------------------------------------------------------------

#[test]
fn destination_size_must_be_exact() {
    let fx = fixture();
    let n = fx.src.len();
    for (len, want) in [
        (0, Error::DstTooSmall),
        (n - 2, Error::DstTooSmall),
        (n - 1, Error::DstTooSmall),
        (n + 1, Error::DstSizeMismatch),
        (n + 2, Error::DstSizeMismatch),
        (2 * n, Error::DstSizeMismatch),
    ] {
        let mut dst = vec![0xA5u8; len];
        assert_eq!(
            decompress_into(&fx.frame, &mut dst, &one_thread()),
            Err(want.clone()),
            "dst of {len} bytes for {n}"
        );
        assert!(dst.iter().all(|&b| b == 0xA5), "dst of {len} bytes: written although the size is wrong");
    }
    let mut dst = vec![0u8; n];
    decompress_into(&fx.frame, &mut dst, &one_thread()).unwrap();
    assert_eq!(dst, fx.src);
}

#[test]
fn corrupt_data_zero_fills_the_destination() {
    let fx = fixture();
    // Corrupt the last chunk only: earlier chunks decode fine and must be wiped too.
    let mut bad = fx.frame.clone();
    let last = bad.len() - 10;
    bad[last] ^= 0x21;
    for threads in [1, 2, 0] {
        let mut dst = vec![0xA5u8; fx.src.len()];
        assert_eq!(decompress_into(&bad, &mut dst, &Options::with_threads(threads)), Err(Error::CorruptData));
        assert!(dst.iter().all(|&b| b == 0), "threads {threads}: destination not zero-filled");
    }
}

// Fuzzing --------------------------------------------------------------------------------------

#[derive(Debug)]
#[allow(dead_code)] // the fields are read through Debug, in failure messages
enum Mutation {
    Flips(Vec<(usize, u8)>),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn mutate(rng: &mut Lcg, f: &[u8], payload_start: usize) -> (Mutation, Vec<u8>) {
    let mut g = f.to_vec();
    let m = match rng.below(8) {
        0..=3 => {
            let k = 1 + rng.below_usize(4);
            let flips: Vec<(usize, u8)> = (0..k)
                .map(|_| {
                    // Half the flips land in the payload, the rest anywhere.
                    let at = if rng.below(2) == 0 {
                        payload_start + rng.below_usize(f.len() - payload_start)
                    } else {
                        rng.below_usize(f.len())
                    };
                    (at, 1u8 << rng.below(8))
                })
                .collect();
            for &(at, b) in &flips {
                g[at] ^= b;
            }
            Mutation::Flips(flips)
        }
        4 => {
            let n = rng.below_usize(f.len());
            g.truncate(n);
            Mutation::Truncate(n)
        }
        5 | 6 => {
            let at = rng.below_usize(f.len() + 1);
            let k = 1 + rng.below_usize(8);
            let ins = rng.bytes(k);
            g.splice(at..at, ins.iter().copied());
            Mutation::Insert(at, ins)
        }
        _ => {
            let at = rng.below_usize(f.len());
            let k = (1 + rng.below_usize(8)).min(f.len() - at);
            g.drain(at..at + k);
            Mutation::Delete(at, k)
        }
    };
    (m, g)
}

/// Runs one mutated frame through `decompress` and `decompress_into`; returns a description of a
/// failure (panic, or Ok with wrong bytes).
fn check_mutant(src: &[u8], bad: &[u8]) -> Option<String> {
    let r = catch_unwind(AssertUnwindSafe(|| decompress(bad, &one_thread())));
    match r {
        Err(_) => return Some("decompress panicked".into()),
        Ok(Ok(v)) if v != src => {
            return Some(format!("decompress returned Ok with different bytes ({} bytes)", v.len()))
        }
        _ => {}
    }
    let mut dst = vec![0u8; src.len()];
    let r = catch_unwind(AssertUnwindSafe(|| decompress_into(bad, &mut dst, &one_thread())));
    match r {
        Err(_) => Some("decompress_into panicked".into()),
        Ok(Ok(())) if dst != src => Some("decompress_into returned Ok with different bytes".into()),
        Ok(Err(_)) if dst.iter().any(|&b| b != 0) && read_info(bad).is_ok() => {
            // Errors before decoding leave dst untouched (it was zero already); errors while
            // decoding zero it. Either way it must be all zeros here.
            Some("decompress_into left non-zero bytes after an error".into())
        }
        _ => None,
    }
}

fn fuzz(name: &str, src: &[u8], frame: &[u8], iterations: usize, seed: u64, reseal: bool) {
    let info = read_info(frame).unwrap();
    let payload_start = HEADER_LEN + info.model_size as usize + CHUNK_ENTRY_LEN * info.chunk_count as usize + CHECK_LEN;
    let mut rng = Lcg::new(seed);
    let mut failures = Vec::new();
    let mut errors = std::collections::BTreeMap::<String, usize>::new();
    let mut ok_same = 0;
    for i in 0..iterations {
        let (m, mut bad) = mutate(&mut rng, frame, payload_start);
        if reseal {
            // Make an insertion or deletion inside a chunk payload consistent with the table
            // (that chunk's stored size and the header's payload size), then recompute both
            // checksums, so the mutation reaches the model parser and the decoder.
            let edit = match &m {
                Mutation::Insert(at, ins) if *at > payload_start => Some((*at, ins.len() as i64)),
                Mutation::Delete(at, k) if *at >= payload_start => Some((*at, -(*k as i64))),
                _ => None,
            };
            if let Some((at, delta)) = edit {
                fix_sizes(&mut bad, frame, payload_start, at, delta);
            }
            if bad.len() >= HEADER_LEN && bad[..4] == frame[..4] {
                reseal_header(&mut bad);
                reseal_table(&mut bad);
            }
        }
        if let Some(why) = check_mutant(src, &bad) {
            failures.push(format!("{name} iteration {i} (seed {seed}): {why}; mutation {m:?}"));
            if failures.len() >= 10 {
                break;
            }
        }
        let key = match decompress(&bad, &one_thread()) {
            Ok(_) => {
                ok_same += 1;
                "Ok (identical bytes)".to_string()
            }
            Err(e) => format!("{e:?}"),
        };
        *errors.entry(key).or_default() += 1;
    }
    println!("{name}: {iterations} mutants, outcomes {errors:?} ({ok_same} decoded to the original, e.g. a flip undone by another)");
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Adds `delta` to the stored size of the chunk whose payload holds byte `at` (an insertion at a
/// chunk boundary goes to the earlier chunk) and to the header's payload size.
fn fix_sizes(bad: &mut [u8], frame: &[u8], payload_start: usize, at: usize, delta: i64) {
    let info = read_info(frame).unwrap();
    let model_end = HEADER_LEN + info.model_size as usize;
    let mut cum = payload_start;
    for i in 0..info.chunk_count as usize {
        let e = model_end + CHUNK_ENTRY_LEN * i;
        let s = get_u32(frame, e) as usize;
        let inside = if delta > 0 { at > cum && at <= cum + s } else { at >= cum && at < cum + s };
        if inside {
            let new = s as i64 + delta;
            if new < 0 || e + 4 > bad.len() {
                return;
            }
            put_u32(bad, e, new as u32);
            let p = info.payload_size as i64 + delta;
            put_u64(bad, OFF_PAYLOAD, p as u64);
            return;
        }
        cum += s;
    }
}

fn small_frame() -> &'static (Vec<u8>, Vec<u8>) {
    static F: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    F.get_or_init(|| {
        let src = raw_fixture()[..200_000].to_vec();
        let frame = compress(
            Kind::Bf16,
            &src,
            &Options { threads: 1, chunk_size: MIN_CHUNK_SIZE, progress: None, fast: false, row_len: 0 },
        )
        .unwrap();
        assert_eq!(read_info(&frame).unwrap().method, Method::Bf16Hist);
        (src, frame)
    })
}

#[test]
fn fuzz_20000_mutations_of_a_real_frame() {
    let (src, frame) = small_frame();
    fuzz("real frame", src, frame, 20_000, 0x5EED, false);
}

#[test]
fn fuzz_mutations_with_recomputed_checksums() {
    // Past both checksums, mutations reach the model parser and the rANS decoder directly.
    let (src, frame) = small_frame();
    fuzz("real frame, resealed", src, frame, 6_000, 0xC0FFEE, true);
}

#[test]
fn fuzz_mutations_of_a_stored_frame() {
    let (src, frame) = stored_frame();
    fuzz("stored frame", src, frame, 3_000, 11, false);
    fuzz("stored frame, resealed", src, frame, 2_000, 12, true);
}
