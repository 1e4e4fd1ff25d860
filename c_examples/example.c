/*
 * libweightzip in a loader, in one page: compress a model file (GGUF or safetensors) into an
 * archive, open the archive as a loader would, read every tensor into its own buffer, and check
 * each against the original file's bytes. Errors print the library's own description of what
 * went wrong (the file and the operating system's reason, for I/O errors).
 *
 *     example MODEL ARCHIVE
 *
 * Build: cc -std=c99 -I include example.c -L target/release -lweightzip  (or `make -C c_examples`)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weightzip.h"

static int fail(const char *what) {
    fprintf(stderr, "example: %s: %s\n", what, wz_last_error_message());
    return 1;
}

/* The whole of `path`, for the comparison; NULL if it cannot be read. */
static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)n + 1);
        if (buf && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            *size = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv) {
    wz_archive *archive = NULL;
    wz_archive_info info;
    size_t original_size = 0, i, count, mismatches = 0;
    unsigned char *original;

    if (argc != 3) {
        fprintf(stderr, "usage: example MODEL ARCHIVE\n");
        return 2;
    }
    /* 1. Compress: every tensor through its type's codec; the output is written atomically. */
    if (wz_archive_compress_file(argv[1], argv[2], NULL) != WZ_STATUS_OK) return fail("compress");

    /* 2. Open: reads and checks the index only; tensors are decoded when asked for. */
    if (wz_archive_open(argv[2], &archive) != WZ_STATUS_OK) return fail("open");
    info.struct_size = sizeof info;
    if (wz_archive_get_info(archive, &info) != WZ_STATUS_OK) return fail("info");

    original = read_file(argv[1], &original_size);
    if (!original || original_size != info.original_size) {
        fprintf(stderr, "example: cannot read %s back\n", argv[1]);
        return 1;
    }

    /* 3. Load: each tensor into a buffer of its own, as a loader fills its weights. */
    count = wz_archive_tensor_count(archive);
    for (i = 0; i < count; i++) {
        wz_tensor_info t;
        void *buf;
        t.struct_size = sizeof t;
        if (wz_archive_tensor_info(archive, i, &t) != WZ_STATUS_OK) return fail("tensor info");
        buf = malloc(t.original_size ? (size_t)t.original_size : 1);
        if (!buf) return 1;
        if (wz_archive_read_tensor(archive, i, buf, (size_t)t.original_size, NULL) != WZ_STATUS_OK) {
            fprintf(stderr, "example: tensor %s: %s\n", t.name, wz_last_error_message());
            return 1;
        }
        /* 4. Check: the tensor is the original file's bytes at its offset. */
        if (memcmp(buf, original + t.original_offset, (size_t)t.original_size) != 0) {
            fprintf(stderr, "example: tensor %s differs from the original\n", t.name);
            mismatches++;
        }
        free(buf);
    }
    printf("%s: %zu tensors, %" PRIu64 " -> %" PRIu64 " bytes (ratio %.4f), %s\n", argv[1], count,
           info.original_size, info.archive_size, (double)info.original_size / (double)info.archive_size,
           mismatches ? "MISMATCH" : "every tensor identical to the original: OK");
    free(original);
    wz_archive_close(archive);
    return mismatches ? 1 : 0;
}
