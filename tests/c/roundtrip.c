/*
 * roundtrip.c: compress a raw bf16 file with weightzip, decompress it, and check that every byte
 * comes back; then exercise the documented error paths of the C API.
 *
 * Usage: roundtrip FILE.bf16 [THREADS]
 *
 *   FILE.bf16  raw little-endian bfloat16 values (an even number of bytes)
 *   THREADS    worker threads for compression and decompression; 0 (default) = all cores
 *
 * Prints one summary line ending in "OK" and exits 0 when every check passes; otherwise prints
 * what failed (with wz_status_str) and exits 1. Everything allocated is freed on every path, so
 * the program runs clean under AddressSanitizer and LeakSanitizer.
 *
 * Plain C99; needs only weightzip.h and libweightzip.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weightzip.h"

/* Number of failed checks; the program exits 1 if this is non-zero. */
static int failures = 0;

/* Records a failed check and prints why. */
static void fail(const char *what, const char *why)
{
    fprintf(stderr, "FAIL: %s: %s\n", what, why);
    failures++;
}

/* Checks that `got` is exactly `want`; prints both descriptions otherwise. */
static void expect_status(const char *what, wz_status got, wz_status want)
{
    if (got != want) {
        fprintf(stderr, "FAIL: %s: got status %u (%s), expected %u (%s)\n", what, (unsigned)got,
                wz_status_str(got), (unsigned)want, wz_status_str(want));
        failures++;
    }
}

/* Checks that `got` is an error (anything but WZ_STATUS_OK). */
static void expect_error(const char *what, wz_status got)
{
    if (got == WZ_STATUS_OK) {
        fail(what, "got WZ_STATUS_OK, expected an error");
    }
}

/* Returns 1 if all `n` bytes at `p` are zero. */
static int all_zero(const unsigned char *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (p[i] != 0) {
            return 0;
        }
    }
    return 1;
}

/*
 * Reads the whole file at `path` into a new malloc'ed buffer. On success stores the buffer and
 * its length and returns 0 (the buffer is non-NULL even for an empty file); on failure prints
 * why and returns -1. Reads in a loop rather than trusting ftell, so pipes work too.
 */
static int read_file(const char *path, unsigned char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL) {
        fprintf(stderr, "roundtrip: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t got;
        if (len == cap) {
            size_t new_cap = cap ? cap * 2 : (size_t)1 << 20;
            unsigned char *grown;
            if (new_cap < cap) { /* overflow */
                fprintf(stderr, "roundtrip: %s is too large\n", path);
                goto fail;
            }
            grown = (unsigned char *)realloc(buf, new_cap);
            if (grown == NULL) {
                fprintf(stderr, "roundtrip: out of memory reading %s\n", path);
                goto fail;
            }
            buf = grown;
            cap = new_cap;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        fprintf(stderr, "roundtrip: error reading %s\n", path);
        goto fail;
    }
    fclose(f);
    *out = buf;
    *out_len = len;
    return 0;

fail:
    free(buf);
    fclose(f);
    return -1;
}

int main(int argc, char **argv)
{
    unsigned char *input = NULL;   /* the original file */
    unsigned char *frame = NULL;   /* its compressed frame (capacity: the bound) */
    unsigned char *output = NULL;  /* decompressed data, exactly original_size bytes */
    unsigned char *bigger = NULL;  /* original_size + 1 bytes, for the size-mismatch check */
    unsigned char *damaged = NULL; /* a copy of the frame with one byte flipped */
    size_t input_size = 0, bound = 0, frame_size = 0;
    unsigned long threads = 0;
    wz_options opts;
    wz_frame_info info;
    wz_status st;

    /* ---- Arguments ---------------------------------------------------------------------- */
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s FILE.bf16 [THREADS]\n", argc > 0 ? argv[0] : "roundtrip");
        return 1;
    }
    if (argc == 3) {
        char *end = NULL;
        errno = 0;
        threads = strtoul(argv[2], &end, 10);
        if (errno != 0 || end == argv[2] || *end != '\0' || threads > 4096) {
            fprintf(stderr, "roundtrip: THREADS must be an integer from 0 to 4096, got '%s'\n",
                    argv[2]);
            return 1;
        }
    }
    if (read_file(argv[1], &input, &input_size) != 0) {
        return 1;
    }

    /* This example is built against the header of the same source tree, so the library it
     * loads must be exactly that version. */
    if (wz_version() != WZ_VERSION_NUMBER || wz_format_version() != WZ_FORMAT_VERSION) {
        fprintf(stderr, "roundtrip: header is for %d.%d.%d (format %d), library is %s (format %u)\n",
                WZ_VERSION_MAJOR, WZ_VERSION_MINOR, WZ_VERSION_PATCH, WZ_FORMAT_VERSION,
                wz_version_string(), (unsigned)wz_format_version());
        failures++;
        goto done;
    }

    /* ---- Compress ----------------------------------------------------------------------- */
    st = wz_options_init(&opts);
    if (st != WZ_STATUS_OK) {
        fprintf(stderr, "roundtrip: wz_options_init: %s\n", wz_status_str(st));
        failures++;
        goto done;
    }
    opts.threads = (uint32_t)threads;

    /* wz_compress_bound() and the WZ_COMPRESS_BOUND macro promise the same value. */
    bound = wz_compress_bound(input_size);
    if (bound == 0) {
        fail("wz_compress_bound", "input too large for size_t");
        goto done;
    }
    if (bound != WZ_COMPRESS_BOUND(input_size)) {
        fail("wz_compress_bound", "differs from WZ_COMPRESS_BOUND()");
    }
    frame = (unsigned char *)malloc(bound);
    if (frame == NULL) {
        fail("malloc", "out of memory for the frame");
        goto done;
    }
    st = wz_compress(frame, bound, input, input_size, WZ_KIND_BF16, &opts, &frame_size);
    if (st != WZ_STATUS_OK) {
        fprintf(stderr, "roundtrip: wz_compress: %s\n", wz_status_str(st));
        failures++;
        goto done;
    }
    if (frame_size > bound) {
        fail("wz_compress", "frame is larger than wz_compress_bound()");
        goto done;
    }

    /* ---- Inspect the frame header -------------------------------------------------------- */
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)sizeof info;
    st = wz_frame_get_info(frame, frame_size, &info);
    if (st != WZ_STATUS_OK) {
        fprintf(stderr, "roundtrip: wz_frame_get_info: %s\n", wz_status_str(st));
        failures++;
        goto done;
    }
    if (info.kind != WZ_KIND_BF16) {
        fail("wz_frame_get_info", "kind is not WZ_KIND_BF16");
    }
    if (info.original_size != (uint64_t)input_size) {
        fail("wz_frame_get_info", "original_size differs from the input size");
        goto done; /* every size below derives from it */
    }
    if (info.frame_size != (uint64_t)frame_size) {
        fail("wz_frame_get_info", "frame_size differs from what wz_compress returned");
    }
    if (info.format_version != WZ_FORMAT_VERSION) {
        fail("wz_frame_get_info", "format_version is not WZ_FORMAT_VERSION");
    }
    /* The fixed header alone is enough for wz_frame_get_info... */
    if (frame_size >= WZ_FRAME_HEADER_SIZE) {
        wz_frame_info head;
        memset(&head, 0, sizeof head);
        head.struct_size = (uint32_t)sizeof head;
        expect_status("wz_frame_get_info on WZ_FRAME_HEADER_SIZE bytes",
                      wz_frame_get_info(frame, WZ_FRAME_HEADER_SIZE, &head), WZ_STATUS_OK);
        if (head.original_size != info.original_size) {
            fail("wz_frame_get_info on WZ_FRAME_HEADER_SIZE bytes", "original_size differs");
        }
        /* ...but one byte less is not. */
        memset(&head, 0, sizeof head);
        head.struct_size = (uint32_t)sizeof head;
        expect_error("wz_frame_get_info on WZ_FRAME_HEADER_SIZE - 1 bytes",
                     wz_frame_get_info(frame, WZ_FRAME_HEADER_SIZE - 1, &head));
    }

    /* ---- Decompress into a buffer of exactly original_size bytes ------------------------- */
    /* malloc(0) may return NULL; the library accepts NULL with a size of 0. An exact-size
     * allocation lets AddressSanitizer catch any write past the end. */
    output = (unsigned char *)malloc(input_size ? input_size : 1);
    if (output == NULL) {
        fail("malloc", "out of memory for the output");
        goto done;
    }
    st = wz_decompress(output, input_size, frame, frame_size, &opts);
    if (st != WZ_STATUS_OK) {
        fprintf(stderr, "roundtrip: wz_decompress: %s\n", wz_status_str(st));
        failures++;
        goto done;
    }
    if (input_size != 0 && memcmp(output, input, input_size) != 0) {
        fail("roundtrip", "decompressed bytes differ from the input");
        goto done;
    }

    /* ---- Error paths ------------------------------------------------------------------- */

    /* dst one byte too small. */
    if (input_size > 0) {
        expect_status("wz_decompress into original_size - 1 bytes",
                      wz_decompress(output, input_size - 1, frame, frame_size, &opts),
                      WZ_STATUS_DST_TOO_SMALL);
    }

    /* dst one byte too large: decompression wants the exact size. */
    bigger = (unsigned char *)malloc(input_size + 1);
    if (bigger == NULL) {
        fail("malloc", "out of memory for the larger output");
        goto done;
    }
    expect_status("wz_decompress into original_size + 1 bytes",
                  wz_decompress(bigger, input_size + 1, frame, frame_size, &opts),
                  WZ_STATUS_DST_SIZE_MISMATCH);

    /* An odd number of bytes is not a whole number of bf16 values. */
    {
        static const unsigned char odd[3] = {0x80, 0x3f, 0x00};
        size_t n = 12345;
        expect_status("wz_compress of 3 bytes as bf16",
                      wz_compress(frame, bound, odd, sizeof odd, WZ_KIND_BF16, &opts, &n),
                      WZ_STATUS_BAD_LENGTH);
        if (n != 12345) {
            fail("wz_compress of 3 bytes as bf16", "wrote *dst_size despite failing");
        }
    }

    /* A kind the library does not know. */
    {
        static const unsigned char even[4] = {0x80, 0x3f, 0x00, 0x40};
        size_t n = 0;
        expect_status("wz_compress with kind 999",
                      wz_compress(frame, bound, even, sizeof even, 999u, &opts, &n),
                      WZ_STATUS_UNKNOWN_KIND);
    }

    /* The failing calls above were given `frame` as their dst; failed calls write nothing, so
     * it must still hold the frame. Compressing again with default options (all cores) must
     * give the very same bytes: output never depends on the thread count. */
    {
        size_t again_size = 0;
        unsigned char *again = (unsigned char *)malloc(bound);
        if (again == NULL) {
            fail("malloc", "out of memory for the second frame");
            goto done;
        }
        st = wz_compress(again, bound, input, input_size, WZ_KIND_BF16, NULL, &again_size);
        if (st != WZ_STATUS_OK) {
            fprintf(stderr, "FAIL: second wz_compress (default options): %s\n", wz_status_str(st));
            failures++;
        } else if (again_size != frame_size || memcmp(again, frame, frame_size) != 0) {
            fail("second wz_compress", "frame differs (thread count or scratch use changed it)");
        }
        free(again);
        if (failures) {
            goto done;
        }
    }

    /* A flipped byte near the end of the frame (in the last chunk's payload) must be caught by
     * the chunk checksum: never WZ_STATUS_OK, and the output must not hold decoded data. */
    damaged = (unsigned char *)malloc(frame_size);
    if (damaged == NULL) {
        fail("malloc", "out of memory for the damaged frame");
        goto done;
    }
    {
        /* Offsets from the end: the last byte, and a few bytes before it. */
        static const size_t back[] = {1, 2, 7, 100};
        size_t i;
        for (i = 0; i < sizeof back / sizeof back[0]; i++) {
            char what[96];
            if (back[i] > frame_size) {
                continue;
            }
            memcpy(damaged, frame, frame_size);
            damaged[frame_size - back[i]] ^= 0x5a;
            memset(output, 0xa5, input_size);
            snprintf(what, sizeof what, "wz_decompress of a frame with byte [size - %zu] flipped",
                     back[i]);
            st = wz_decompress(output, input_size, damaged, frame_size, &opts);
            expect_error(what, st);
            /* A chunk that fails to decode or fails its checksum gives WZ_STATUS_CORRUPT_DATA
             * after decoding has begun; the header promises dst is then zero-filled. */
            if (st == WZ_STATUS_CORRUPT_DATA && !all_zero(output, input_size)) {
                fail(what, "dst was not zero-filled after WZ_STATUS_CORRUPT_DATA");
            }
        }
    }

    /* A truncated frame: one byte short, half, and the header alone. */
    {
        size_t cuts[3];
        size_t i;
        cuts[0] = frame_size - 1;
        cuts[1] = frame_size / 2;
        cuts[2] = frame_size < WZ_FRAME_HEADER_SIZE ? 0 : WZ_FRAME_HEADER_SIZE;
        for (i = 0; i < 3; i++) {
            char what[96];
            snprintf(what, sizeof what, "wz_decompress of a frame truncated to %zu bytes", cuts[i]);
            expect_error(what, wz_decompress(output, input_size, frame, cuts[i], &opts));
        }
    }

    /* Trailing bytes after the frame are not silently ignored either. */
    {
        unsigned char *longer = (unsigned char *)malloc(frame_size + 1);
        if (longer == NULL) {
            fail("malloc", "out of memory for the longer frame");
            goto done;
        }
        memcpy(longer, frame, frame_size);
        longer[frame_size] = 0;
        expect_status("wz_decompress of a frame with one trailing byte",
                      wz_decompress(output, input_size, longer, frame_size + 1, &opts),
                      WZ_STATUS_TRAILING_DATA);
        free(longer);
    }

    /* After all that, the intact frame still decodes to the input. */
    st = wz_decompress(output, input_size, frame, frame_size, &opts);
    if (st != WZ_STATUS_OK) {
        fprintf(stderr, "FAIL: final wz_decompress: %s\n", wz_status_str(st));
        failures++;
    } else if (input_size != 0 && memcmp(output, input, input_size) != 0) {
        fail("final roundtrip", "decompressed bytes differ from the input");
    }

done:
    if (failures == 0) {
        printf("%s: %zu bytes -> %zu bytes, ratio %.4f (weightzip %s, threads %lu) OK\n", argv[1],
               input_size, frame_size,
               frame_size ? (double)input_size / (double)frame_size : 0.0, wz_version_string(),
               threads);
    } else {
        fprintf(stderr, "roundtrip: %d check(s) failed\n", failures);
    }
    free(damaged);
    free(bigger);
    free(output);
    free(frame);
    free(input);
    return failures == 0 ? 0 : 1;
}
