/*
 * gguf_loader.c: load a GGUF model straight from a weightzip archive (model.gguf.wz), as a
 * llama.cpp-style loader would, without ever writing the decompressed file; then check that every
 * tensor is exactly what the original GGUF holds.
 *
 * Usage:
 *   gguf_loader --compress ORIGINAL.gguf ARCHIVE [--threads N]   make ARCHIVE from a GGUF file
 *   gguf_loader ARCHIVE [ORIGINAL.gguf] [--threads N]             load ARCHIVE (and compare)
 *
 *   --threads N   decoding threads per wz_* call; 0 (the default) = all cores
 *
 * Loading opens the archive, takes the original GGUF metadata out of it, parses that with the
 * small GGUF parser below (the loader's own, as llama.cpp has its own), and reads every tensor of
 * the parsed table into a malloc'ed buffer. With ORIGINAL, the metadata and every buffer are
 * compared with the original file's bytes. Then READERS threads read all tensors again through
 * the same handle at once, and the error statuses a loader can meet are provoked on purpose.
 * Prints one summary line ending in "OK" and exits 0 only when every check passes.
 *
 * What a loader needs, in about 20 lines (error checks left out; every call returns a wz_status,
 * and wz_status_str() describes it):
 *
 *   wz_archive *ar = NULL;
 *   const void *meta;
 *   size_t meta_size, idx;
 *   wz_tensor_info ti;
 *   void *buf;
 *   wz_archive_open("model.gguf.wz", &ar);
 *   wz_archive_metadata(ar, &meta, &meta_size); // GGUF header, key/values, tensor infos, padding
 *   // ...parse meta[0, meta_size) as the start of a GGUF file; the data section starts at
 *   // meta_size, and each tensor's bytes are the original file's bytes at its offset...
 *   for (each tensor `name` the parser found) {
 *       memset(&ti, 0, sizeof ti);
 *       ti.struct_size = sizeof ti;              // lets the struct grow in later versions
 *       wz_archive_find_tensor(ar, name, &idx);
 *       wz_archive_tensor_info(ar, idx, &ti);    // ti.original_size: the exact size to read
 *       buf = malloc(ti.original_size);          // or the backend's own buffer
 *       wz_archive_read_tensor(ar, idx, buf, ti.original_size, NULL); // NULL: all cores
 *   }
 *   wz_archive_close(ar);                        // meta and ti.name die with the handle
 *
 * C99 plus POSIX threads; needs only weightzip.h and libweightzip. Everything is freed on every
 * path, so it runs clean under AddressSanitizer, UBSan and LeakSanitizer.
 */

#define _POSIX_C_SOURCE 200809L /* fseeko, ftello, clock_gettime */
#define _FILE_OFFSET_BITS 64    /* a 64-bit off_t on 32-bit systems too: models exceed 2 GiB */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include "weightzip.h"

#define MAX_DIMS 4 /* GGML_MAX_DIMS: ggml refuses more, so the loader does too */
#define READERS 3  /* threads of the concurrent pass */

/* Number of failed checks; the program exits 1 if this is non-zero. */
static int failures = 0;

/* Records a failed check and prints why. */
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

/* ---- The loader's GGUF parser. The metadata is hostile input: a truncated or crafted header must
 * give an error message, never a read past its end or a huge allocation. ------------------------ */

typedef struct {
    char *name;             /* NUL-terminated copy, so it can be given to wz_archive_find_tensor */
    uint32_t type;          /* ggml type */
    uint32_t n_dims;
    uint64_t dims[MAX_DIMS];
    uint64_t offset;        /* from the start of the data section */
    uint64_t size;          /* bytes, from the type and the dims (as ggml_nbytes) */
    unsigned char *data;    /* the loaded bytes */
} tensor;

typedef struct {
    uint32_t alignment;  /* general.alignment, 32 when absent */
    uint64_t data_start; /* first byte of the data section = size of the metadata */
    size_t n_tensors;
    tensor *tensors;
} gguf;

/* A cursor over the metadata. Every read checks what is left; the first error is printed and
 * sticks, after which reads return nothing, so the parser checks once per step, not per read. */
typedef struct {
    const unsigned char *p;
    size_t size, pos;
    int failed;
} cursor;

/* Prints the first parse error with its position. */
static void bad(cursor *c, const char *fmt, ...)
{
    va_list ap;
    if (c->failed++) {
        return;
    }
    va_start(ap, fmt);
    fprintf(stderr, "gguf_loader: bad GGUF metadata at byte %zu: ", c->pos);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Takes the next n bytes, or returns NULL. n is 64-bit because lengths in the file are: a length
 * near 2^64 must be refused here, not wrapped by a conversion to size_t. */
static const unsigned char *take(cursor *c, uint64_t n, const char *what)
{
    const unsigned char *b = c->p + c->pos;
    if (!c->failed && n > (uint64_t)(c->size - c->pos)) {
        bad(c, "%s needs %" PRIu64 " bytes, only %zu left", what, n, c->size - c->pos);
    }
    if (c->failed) {
        return NULL;
    }
    c->pos += (size_t)n;
    return b;
}

/* An n-byte integer (0 after an error). GGUF is little-endian whatever the host, so it is
 * assembled byte by byte. */
static uint64_t get_le(cursor *c, unsigned n, const char *what)
{
    const unsigned char *b = take(c, n, what);
    uint64_t v = 0;
    while (b != NULL && n-- > 0) {
        v = v << 8 | b[n];
    }
    return v;
}

/* A GGUF string: a u64 length, then that many bytes (no NUL). NULL after an error. */
static const unsigned char *get_str(cursor *c, const char *what, uint64_t *len)
{
    *len = get_le(c, 8, what);
    return take(c, *len, what);
}

/* GGUF value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string, 9 array,
 * 10 u64, 11 i64, 12 f64. The bytes of each fixed-size one; 0 for string and array. */
enum { GGUF_U32 = 4, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_TYPES = 13 };
static const unsigned char value_size[GGUF_TYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

/* Skips a value of type `type`. This loader needs no key but general.alignment; a real one keeps
 * what it needs (architecture, hyperparameters, vocabulary) the same way. */
static void skip_value(cursor *c, uint32_t type)
{
    uint64_t n, i, len;
    uint32_t elem;

    if (type < GGUF_TYPES && value_size[type] != 0) {
        take(c, value_size[type], "a value");
        return;
    }
    if (type == GGUF_STRING) {
        get_str(c, "a string value", &len);
        return;
    }
    if (type != GGUF_ARRAY) {
        bad(c, "unknown value type %" PRIu32, type);
        return;
    }
    elem = (uint32_t)get_le(c, 4, "an array's type");
    n = get_le(c, 8, "an array's length");
    if (elem < GGUF_TYPES && value_size[elem] != 0) {
        /* Divide rather than multiply: a hostile count must not wrap the product. */
        if (n > (c->size - c->pos) / value_size[elem]) {
            bad(c, "an array of %" PRIu64 " values overruns the metadata", n);
        }
        take(c, n * value_size[elem], "array values");
    } else if (elem != GGUF_STRING) { /* ggml refuses arrays of arrays as well */
        bad(c, "arrays of value type %" PRIu32 " are not supported", elem);
    }
    /* Each string takes at least its 8-byte length, so a huge n stops at the first error. */
    for (i = 0; elem == GGUF_STRING && i < n && !c->failed; i++) {
        get_str(c, "a string in an array", &len);
    }
}

/* Values per block and bytes per block of each ggml type by number ({0, 0}: retired numbers).
 * A loader needs them to know a tensor's size from its dims, as ggml_nbytes does. */
static const struct { uint32_t block, bytes; } ggml_types[] = {
    {1, 4}, {1, 2}, {32, 18}, {32, 20}, {0, 0}, {0, 0}, {32, 22}, {32, 24}, /* F32 .. Q5_1 */
    {32, 34}, {32, 36}, {256, 84}, {256, 110}, {256, 144}, {256, 176},      /* Q8_0 .. Q5_K */
    {256, 210}, {256, 292}, {256, 66}, {256, 74}, {256, 98}, {256, 50},     /* Q6_K .. IQ1_S */
    {32, 18}, {256, 110}, {256, 82}, {256, 136}, {1, 1}, {1, 2}, {1, 4},    /* IQ4_NL .. I32 */
    {1, 8}, {1, 8}, {256, 56}, {1, 2}, {0, 0}, {0, 0}, {0, 0}, {256, 54},   /* I64 .. TQ1_0 */
    {256, 66},                                                              /* TQ2_0 */
};

/* Sets t->size from its type and dims, refusing unknown types, partial blocks and overflow. */
static void tensor_size(cursor *c, tensor *t)
{
    uint64_t elements = 1, block, bytes;
    uint32_t d;

    if (t->type >= sizeof ggml_types / sizeof ggml_types[0] || ggml_types[t->type].block == 0) {
        bad(c, "tensor '%s' has unknown ggml type %" PRIu32, t->name, t->type);
        return;
    }
    block = ggml_types[t->type].block;
    bytes = ggml_types[t->type].bytes;
    if (t->dims[0] % block != 0) {
        bad(c, "tensor '%s': rows of %" PRIu64 " values are not whole blocks", t->name,
            t->dims[0]);
    }
    for (d = 0; d < t->n_dims; d++) { /* as in ggml, the element count must fit in int64_t */
        if (t->dims[d] > INT64_MAX || (t->dims[d] != 0 && elements > INT64_MAX / t->dims[d])) {
            bad(c, "tensor '%s' has too many elements", t->name);
            return;
        }
        elements *= t->dims[d];
    }
    if (elements / block > INT64_MAX / bytes) {
        bad(c, "tensor '%s' is too large", t->name);
    }
    t->size = elements / block * bytes;
}

/* Parses the metadata of a GGUF file of `file_size` bytes into *g (free it with free_gguf, even
 * after a failure). Returns 0 or, after printing why, -1. */
static int parse_gguf(const unsigned char *p, size_t size, uint64_t file_size, gguf *g)
{
    cursor c = {NULL, 0, 0, 0};
    const unsigned char *b;
    uint64_t n_tensors, n_kv, i, len, data_size;
    uint32_t version, type, d;

    c.p = p;
    c.size = size;
    memset(g, 0, sizeof *g);
    g->alignment = 32;
    if ((b = take(&c, 4, "the magic")) != NULL && memcmp(b, "GGUF", 4) != 0) {
        bad(&c, "no GGUF magic");
    }
    version = (uint32_t)get_le(&c, 4, "the version");
    if (!c.failed && (version < 2 || version > 3)) { /* version 1 had 32-bit counts */
        bad(&c, "GGUF version %" PRIu32 " is not supported (2 and 3 are)%s", version,
            version > 0xffff ? "; a big-endian file?" : "");
    }
    n_tensors = get_le(&c, 8, "the tensor count");
    n_kv = get_le(&c, 8, "the key/value count");
    for (i = 0; i < n_kv && !c.failed; i++) {
        b = get_str(&c, "a key", &len);
        type = (uint32_t)get_le(&c, 4, "a value type");
        if (b == NULL || len != 17 || memcmp(b, "general.alignment", 17) != 0) {
            skip_value(&c, type);
        } else if (type != GGUF_U32) {
            bad(&c, "general.alignment has value type %" PRIu32 ", not u32", type);
        } else {
            g->alignment = (uint32_t)get_le(&c, 4, "general.alignment");
            if (g->alignment == 0 || (g->alignment & (g->alignment - 1)) != 0) {
                bad(&c, "general.alignment %" PRIu32 " is not a power of two", g->alignment);
            }
        }
    }
    /* A tensor info takes at least 32 bytes (name length, n_dims, one dim, type, offset): refuse a
     * count the rest cannot hold before it sizes an allocation. */
    if (n_tensors > (c.size - c.pos) / 32) {
        bad(&c, "%" PRIu64 " tensor infos cannot fit in %zu bytes", n_tensors, c.size - c.pos);
    }
    if (c.failed || (g->tensors = (tensor *)calloc(n_tensors + 1, sizeof *g->tensors)) == NULL) {
        bad(&c, "out of memory for the tensor infos");
        return -1;
    }
    g->n_tensors = (size_t)n_tensors;
    for (i = 0; i < n_tensors && !c.failed; i++) {
        tensor *t = &g->tensors[i];
        if ((b = get_str(&c, "a tensor name", &len)) == NULL) {
            break;
        }
        if (memchr(b, 0, (size_t)len) != NULL) { /* could not be looked up by a C string */
            bad(&c, "a tensor name holds a NUL byte");
        } else if ((t->name = (char *)malloc((size_t)len + 1)) == NULL) {
            bad(&c, "out of memory for a tensor name");
        } else {
            memcpy(t->name, b, (size_t)len);
            t->name[len] = '\0';
            t->n_dims = (uint32_t)get_le(&c, 4, "n_dims");
        }
        if (!c.failed && (t->n_dims == 0 || t->n_dims > MAX_DIMS)) {
            bad(&c, "tensor '%s' has %" PRIu32 " dims, not 1 to %d", t->name, t->n_dims, MAX_DIMS);
        }
        for (d = 0; d < t->n_dims && !c.failed; d++) {
            t->dims[d] = get_le(&c, 8, "a dimension");
        }
        t->type = (uint32_t)get_le(&c, 4, "a ggml type");
        t->offset = get_le(&c, 8, "a tensor offset");
        if (!c.failed && t->offset % g->alignment != 0) {
            bad(&c, "tensor '%s' offset %" PRIu64 " is not aligned", t->name, t->offset);
        }
        if (!c.failed) {
            tensor_size(&c, t);
        }
    }
    /* Every tensor must lie in the file, whose size a loader learns from the archive. */
    g->data_start = ((uint64_t)c.pos + g->alignment - 1) / g->alignment * g->alignment;
    data_size = file_size - g->data_start;
    if (!c.failed && g->data_start > file_size) {
        bad(&c, "the data section would start past the end of the file");
    }
    for (i = 0; i < n_tensors && !c.failed; i++) {
        const tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->size > data_size - t->offset) {
            bad(&c, "tensor '%s' lies past the end of the file", t->name);
        }
    }
    return c.failed ? -1 : 0;
}

static void free_gguf(gguf *g)
{
    size_t i;
    for (i = 0; g->tensors != NULL && i < g->n_tensors; i++) {
        free(g->tensors[i].name);
        free(g->tensors[i].data);
    }
    free(g->tensors);
    memset(g, 0, sizeof *g);
}

/* ---- Checks ------------------------------------------------------------------------------ */

/* Checks that the archive's view of a tensor agrees with the loader's own parse. */
static int check_info(const tensor *t, const wz_tensor_info *ti, uint64_t data_start)
{
    uint32_t d;
    int ok = ti->container_type == t->type && ti->n_dims == t->n_dims &&
             ti->original_size == t->size && ti->original_offset == data_start + t->offset &&
             ti->name_len == strlen(t->name) && strcmp(ti->name, t->name) == 0;
    for (d = 0; ok && d < t->n_dims; d++) {
        ok = ti->dims[d] == t->dims[d];
    }
    if (!ok) {
        fail("tensor '%s': the archive says type %" PRIu32 ", %" PRIu32 " dims, %" PRIu64
             " bytes at %" PRIu64 "; the GGUF says type %" PRIu32 ", %" PRIu32 " dims, %" PRIu64
             " bytes at %" PRIu64, t->name, ti->container_type, ti->n_dims, ti->original_size,
             ti->original_offset, t->type, t->n_dims, t->size, data_start + t->offset);
    }
    return ok ? 0 : -1;
}

/* Compares n bytes of `f` at `offset` with `buf`, 64 KiB at a time: a loader checking a
 * many-GB model must not hold the file in memory. */
static int same_as_file(FILE *f, uint64_t offset, const unsigned char *buf, uint64_t n,
                        const char *what)
{
    unsigned char piece[1 << 16];
    uint64_t done = 0;
    if (fseeko(f, (off_t)offset, SEEK_SET) != 0) {
        fail("%s: cannot seek the original to %" PRIu64 ": %s", what, offset, strerror(errno));
        return -1;
    }
    while (done < n) {
        size_t k = n - done < sizeof piece ? (size_t)(n - done) : sizeof piece;
        if (fread(piece, 1, k, f) != k) {
            fail("%s: the original ends before byte %" PRIu64, what, offset + n);
            return -1;
        }
        if (memcmp(piece, buf + done, k) != 0) {
            fail("%s differs from the original within bytes %" PRIu64 "..%" PRIu64, what,
                 offset + done, offset + done + k);
            return -1;
        }
        done += k;
    }
    return 0;
}

/* Checks that status `got` is `want`, printing wz_status_str's text either way: these lines show
 * a reader what each error looks like. */
static void expect_status(const char *what, wz_status got, wz_status want)
{
    if (got != want) {
        fail("%s: got status %u (%s), expected %u (%s)", what, (unsigned)got,
             wz_status_str(got), (unsigned)want, wz_status_str(want));
    } else {
        printf("  %-52s -> %2u: %s\n", what, (unsigned)got, wz_status_str(got));
    }
}

/* ---- Concurrent reads -------------------------------------------------------------------- */

typedef struct {
    const wz_archive *ar;   /* one handle, shared by all readers */
    const gguf *g;
    const wz_options *opts;
    size_t first;           /* reads tensors first, first + READERS, ... */
    int failures;
} reader_job;

/* Reads its share of the tensors into fresh buffers and compares them with the loaded ones. */
static void *reader_main(void *arg)
{
    reader_job *job = (reader_job *)arg;
    size_t i;
    for (i = job->first; i < job->g->n_tensors; i += READERS) {
        const tensor *t = &job->g->tensors[i];
        unsigned char *buf = (unsigned char *)malloc(t->size ? (size_t)t->size : 1);
        wz_status st = buf == NULL ? WZ_STATUS_OUT_OF_MEMORY
                                   : wz_archive_read_tensor(job->ar, i, buf, (size_t)t->size,
                                                            job->opts);
        if (st != WZ_STATUS_OK || memcmp(buf, t->data, (size_t)t->size) != 0) {
            /* failures is this job's own, so no lock; one fprintf call per line stays whole */
            fprintf(stderr, "FAIL: reader %zu, tensor '%s': %s\n", job->first, t->name,
                    st != WZ_STATUS_OK ? wz_status_str(st) : "differs from the first read");
            job->failures++;
        }
        free(buf);
    }
    return NULL;
}

static void concurrent_reads(const wz_archive *ar, const gguf *g, const wz_options *opts)
{
    pthread_t threads[READERS];
    reader_job jobs[READERS];
    size_t i, started = 0;
    for (i = 0; i < READERS; i++) {
        jobs[i].ar = ar;
        jobs[i].g = g;
        jobs[i].opts = opts;
        jobs[i].first = i;
        jobs[i].failures = 0;
        if (pthread_create(&threads[i], NULL, reader_main, &jobs[i]) != 0) {
            fail("pthread_create failed");
            break;
        }
        started++;
    }
    for (i = 0; i < started; i++) {
        pthread_join(threads[i], NULL);
        failures += jobs[i].failures;
    }
}

/* ---- Main -------------------------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Provokes the errors a loader can meet, on the smallest non-empty tensor (cheap to read). */
static void error_paths(const wz_archive *ar, const gguf *g, const char *original,
                        const wz_options *opts)
{
    const tensor *t = NULL;
    unsigned char *buf;
    wz_archive *other = NULL;
    size_t i, idx = 12345;
    wz_tensor_info ti;

    for (i = 0; i < g->n_tensors; i++) {
        if (g->tensors[i].size != 0 && (t == NULL || g->tensors[i].size < t->size)) {
            t = &g->tensors[i];
        }
    }
    if (t != NULL && (buf = (unsigned char *)malloc((size_t)t->size + 1)) != NULL) {
        idx = (size_t)(t - g->tensors);
        /* A wrong size is refused before anything is decoded, so buf must stay as it was. */
        memset(buf, 0xa5, (size_t)t->size + 1);
        expect_status("read_tensor with dst_size = original_size - 1",
                      wz_archive_read_tensor(ar, idx, buf, (size_t)t->size - 1, opts),
                      WZ_STATUS_DST_TOO_SMALL);
        expect_status("read_tensor with dst_size = original_size + 1",
                      wz_archive_read_tensor(ar, idx, buf, (size_t)t->size + 1, opts),
                      WZ_STATUS_DST_SIZE_MISMATCH);
        for (i = 0; i <= t->size; i++) {
            if (buf[i] != 0xa5) {
                fail("a read_tensor with a wrong dst_size wrote to dst");
                break;
            }
        }
        free(buf);
    } else if (t != NULL) {
        fail("out of memory for the error-path buffer");
    }
    idx = 12345;
    expect_status("find_tensor(\"no.such.tensor\")",
                  wz_archive_find_tensor(ar, "no.such.tensor", &idx), WZ_STATUS_NOT_FOUND);
    if (idx != 12345) {
        fail("a failed wz_archive_find_tensor wrote *index");
    }
    memset(&ti, 0, sizeof ti);
    ti.struct_size = (uint32_t)sizeof ti;
    expect_status("tensor_info(tensor_count)", wz_archive_tensor_info(ar, g->n_tensors, &ti),
                  WZ_STATUS_INVALID_ARGUMENT);
    expect_status("open(\"/nonexistent/model.gguf.wz\")",
                  wz_archive_open("/nonexistent/model.gguf.wz", &other), WZ_STATUS_IO);
    wz_archive_close(other); /* NULL after a failed open; closing NULL is allowed */
    if (original != NULL) {  /* a GGUF file is not an archive */
        other = NULL;
        expect_status("open(ORIGINAL.gguf)", wz_archive_open(original, &other),
                      WZ_STATUS_BAD_MAGIC);
        if (other != NULL) {
            fail("a failed wz_archive_open left a handle");
            wz_archive_close(other);
        }
    }
}

/* Compresses the GGUF file `src` into the archive `dst`: the writing half of the API. */
static int compress(const char *src, const char *dst, const wz_options *opts)
{
    wz_archive *ar = NULL;
    wz_archive_info info;
    double t0 = now();
    wz_status st = wz_archive_compress_file(src, dst, opts);
    if (st == WZ_STATUS_OK) {
        st = wz_archive_open(dst, &ar);
    }
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    if (st == WZ_STATUS_OK) {
        st = wz_archive_get_info(ar, &info);
    }
    wz_archive_close(ar);
    if (st != WZ_STATUS_OK) {
        fprintf(stderr, "gguf_loader: compressing %s into %s: %s\n", src, dst, wz_status_str(st));
        return 1;
    }
    printf("%s -> %s: %" PRIu64 " tensors, %" PRIu64 " -> %" PRIu64 " bytes, ratio %.4f, "
           "%.2f s OK\n", src, dst, info.tensor_count, info.original_size, info.archive_size,
           (double)info.original_size / (double)info.archive_size, now() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    const char *paths[2] = {NULL, NULL}, *original;
    int i, n_paths = 0, compress_mode = 0;
    unsigned long threads = 0;
    wz_options opts;
    wz_archive *ar = NULL;
    wz_archive_info info;
    const void *meta = NULL;
    size_t meta_size = 0, t;
    gguf g;
    FILE *orig = NULL;
    uint64_t bytes = 0;
    double t0, load_s = 0.0;
    wz_status st;

    memset(&g, 0, sizeof g);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--compress") == 0) {
            compress_mode = 1;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            char *end = NULL;
            errno = 0;
            threads = strtoul(argv[++i], &end, 10);
            if (errno != 0 || end == argv[i] || *end != '\0' || threads > 4096) {
                fprintf(stderr, "gguf_loader: --threads wants 0 to 4096, got '%s'\n", argv[i]);
                return 1;
            }
        } else if (argv[i][0] != '-' && n_paths < 2) {
            paths[n_paths++] = argv[i];
        } else {
            n_paths = -1;
            break;
        }
    }
    if (n_paths < (compress_mode ? 2 : 1)) {
        fprintf(stderr, "usage: gguf_loader ARCHIVE [ORIGINAL.gguf] [--threads N]\n"
                        "       gguf_loader --compress ORIGINAL.gguf ARCHIVE [--threads N]\n");
        return 1;
    }
    wz_options_init(&opts);
    opts.threads = (uint32_t)threads;
    if (compress_mode) {
        return compress(paths[0], paths[1], &opts);
    }
    original = paths[1];

    /* ---- Open the archive and parse the GGUF metadata it holds --------------------------- */
    t0 = now();
    st = wz_archive_open(paths[0], &ar);
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info; /* the library fills only what we know of */
    if (st == WZ_STATUS_OK) {
        st = wz_archive_get_info(ar, &info);
    }
    if (st == WZ_STATUS_OK) {
        st = wz_archive_metadata(ar, &meta, &meta_size);
    }
    if (st != WZ_STATUS_OK) {
        fail("%s: %s", paths[0], wz_status_str(st));
        goto done;
    }
    if (info.container != WZ_CONTAINER_GGUF) {
        fail("%s holds container %u, not GGUF", paths[0], (unsigned)info.container);
        goto done;
    }
    if (parse_gguf((const unsigned char *)meta, meta_size, info.original_size, &g) != 0) {
        failures++;
        goto done;
    }
    /* The archive's metadata ends where the data section starts, padding included. */
    if (g.data_start != meta_size || g.n_tensors != info.tensor_count ||
        g.n_tensors != wz_archive_tensor_count(ar)) {
        fail("the GGUF has %zu tensors and data at %" PRIu64 "; the archive %" PRIu64
             " tensors and %zu bytes of metadata", g.n_tensors, g.data_start, info.tensor_count,
             meta_size);
        goto done;
    }

    /* ---- Load every tensor of the loader's own table ------------------------------------- */
    for (t = 0; t < g.n_tensors; t++) {
        tensor *x = &g.tensors[t];
        wz_tensor_info ti;
        size_t idx = 0;
        memset(&ti, 0, sizeof ti);
        ti.struct_size = (uint32_t)sizeof ti;
        st = wz_archive_find_tensor(ar, x->name, &idx);
        if (st == WZ_STATUS_OK) {
            st = wz_archive_tensor_info(ar, idx, &ti);
        }
        if (st != WZ_STATUS_OK) {
            fail("tensor '%s': %s", x->name, wz_status_str(st));
            goto done;
        }
        /* The archive keeps the GGUF's order and find_tensor returns the first match, so any
         * other index means a duplicate name, which GGUF forbids. */
        if (idx != t) {
            fail("tensor '%s' is number %zu in the GGUF but %zu in the archive", x->name, t, idx);
            goto done;
        }
        if (check_info(x, &ti, g.data_start) != 0) {
            goto done;
        }
        /* malloc(0) may return NULL, so an empty tensor gets 1 byte */
        if (x->size < SIZE_MAX) {
            x->data = (unsigned char *)malloc(x->size ? (size_t)x->size : 1);
        }
        if (x->data == NULL) {
            fail("tensor '%s': out of memory for %" PRIu64 " bytes", x->name, x->size);
            goto done;
        }
        st = wz_archive_read_tensor(ar, idx, x->data, (size_t)x->size, &opts);
        if (st != WZ_STATUS_OK) {
            fail("reading tensor '%s': %s", x->name, wz_status_str(st));
            goto done;
        }
        bytes += x->size;
    }
    load_s = now() - t0;

    /* ---- Compare with the original file, piece by piece --------------------------------- */
    if (original != NULL) {
        if ((orig = fopen(original, "rb")) == NULL) {
            fail("cannot open %s: %s", original, strerror(errno));
            goto done;
        }
        if (fseeko(orig, 0, SEEK_END) != 0 || ftello(orig) != (off_t)info.original_size) {
            fail("%s is not %" PRIu64 " bytes long, as the archive says", original,
                 info.original_size);
            goto done;
        }
        if (same_as_file(orig, 0, (const unsigned char *)meta, meta_size, "the metadata") != 0) {
            goto done;
        }
        for (t = 0; t < g.n_tensors; t++) {
            const tensor *x = &g.tensors[t];
            if (same_as_file(orig, g.data_start + x->offset, x->data, x->size, x->name) != 0) {
                goto done;
            }
        }
    }

    concurrent_reads(ar, &g, &opts);
    printf("error paths, as a loader meets them:\n");
    error_paths(ar, &g, original, &opts);

done:
    if (failures == 0) {
        printf("%s: %zu tensors, %" PRIu64 " bytes loaded in %.3f s (%.0f MB/s, threads %lu); "
               "%s; %d concurrent readers agreed OK\n", paths[0], g.n_tensors, bytes, load_s,
               load_s > 0 ? (double)bytes / 1e6 / load_s : 0.0, threads,
               original != NULL ? "all tensors matched the original" : "no ORIGINAL to compare",
               READERS);
    } else {
        fprintf(stderr, "gguf_loader: %d check(s) failed\n", failures);
    }
    if (orig != NULL) {
        fclose(orig);
    }
    free_gguf(&g);
    wz_archive_close(ar); /* after this, meta and every name pointer are invalid */
    return failures == 0 ? 0 : 1;
}
