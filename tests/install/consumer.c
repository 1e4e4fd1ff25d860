/*
 * A program built out of tree against an installed libweightzip (scripts/check_install.sh builds
 * it with pkg-config, shared and static): compresses a raw bf16 file, decompresses it, and checks
 * every byte. Prints one line ending in OK.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weightzip.h>

int main(int argc, char **argv) {
    FILE *f;
    long n;
    unsigned char *src, *frame, *back;
    size_t cap, size = 0;
    if (argc != 2 || !(f = fopen(argv[1], "rb"))) return 2;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    src = malloc((size_t)n);
    if (!src || fread(src, 1, (size_t)n, f) != (size_t)n) return 2;
    fclose(f);
    cap = wz_compress_bound((size_t)n);
    frame = malloc(cap);
    back = malloc((size_t)n);
    if (wz_compress(frame, cap, src, (size_t)n, WZ_KIND_BF16, NULL, &size) != WZ_STATUS_OK ||
        wz_decompress(back, (size_t)n, frame, size, NULL) != WZ_STATUS_OK || memcmp(src, back, (size_t)n) != 0) {
        fprintf(stderr, "consumer: %s\n", wz_last_error_message());
        return 1;
    }
    printf("libweightzip %s: %ld -> %zu bytes and back: OK\n", wz_version_string(), n, size);
    free(src);
    free(frame);
    free(back);
    return 0;
}
