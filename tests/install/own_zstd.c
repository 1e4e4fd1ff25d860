/*
 * A program that vendors its own zstd (as many C++ programs do, through curl for example): it
 * defines zstd's names itself and links the installed static libweightzip next to them. That
 * links only because the static library's bundled zstd is local to it; this program's
 * definitions stay its own, and libweightzip's zstd (used by kind `bytes`) keeps working.
 */
#include <stdio.h>
#include <string.h>

#include <weightzip.h>

size_t ZSTD_compressBound(size_t n) { return n + 1000; }
size_t ZSTD_decompress(void *dst, size_t cap, const void *src, size_t n) {
    (void)dst; (void)cap; (void)src; (void)n;
    return 42;
}

int main(void) {
    static unsigned char src[300000], frame[400000], back[300000];
    size_t i, n = 0;
    for (i = 0; i < sizeof src; i++) src[i] = (unsigned char)("weightzip vendors zstd"[i % 22]);
    if (wz_compress(frame, sizeof frame, src, sizeof src, WZ_KIND_BYTES, NULL, &n) != WZ_STATUS_OK) return 1;
    if (wz_decompress(back, sizeof back, frame, n, NULL) != WZ_STATUS_OK || memcmp(src, back, sizeof src)) return 1;
    if (ZSTD_compressBound(1) != 1001 || ZSTD_decompress(NULL, 0, NULL, 0) != 42) return 1;
    printf("own zstd next to static libweightzip: %zu -> %zu bytes and back, own ZSTD_* intact: OK\n", sizeof src, n);
    return 0;
}
