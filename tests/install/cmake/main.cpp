// Built by CMake against an installed libweightzip (find_package(weightzip)): opens an archive
// made from a GGUF file, reads every tensor and checks each against the original file's bytes.
#include <weightzip.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    std::ifstream in(argv[1], std::ios::binary);
    std::vector<unsigned char> original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (wz_archive_compress_file(argv[1], argv[2], nullptr) != WZ_STATUS_OK) return 1;
    wz_archive *a = nullptr;
    if (wz_archive_open(argv[2], &a) != WZ_STATUS_OK) return 1;
    size_t n = wz_archive_tensor_count(a);
    for (size_t i = 0; i < n; i++) {
        wz_tensor_info t;
        std::memset(&t, 0, sizeof t);
        t.struct_size = sizeof t;
        if (wz_archive_tensor_info(a, i, &t) != WZ_STATUS_OK) return 1;
        std::vector<unsigned char> buf(t.original_size);
        if (wz_archive_read_tensor(a, i, buf.data(), buf.size(), nullptr) != WZ_STATUS_OK) return 1;
        if (std::memcmp(buf.data(), original.data() + t.original_offset, buf.size()) != 0) return 1;
    }
    wz_archive_close(a);
    std::printf("C++ via CMake: %zu tensors read back identical: OK\n", n);
    return 0;
}
