/*
 * llama_from_archive.cpp: run llama.cpp on a model read straight from a weightzip archive
 * (model.gguf.wz), with no decompressed file on disk, and print outputs that can be compared
 * bit for bit with the same program run on the original model.gguf.
 *
 * Usage:
 *   llama_from_archive MODEL [options] INPUT...
 *
 *   MODEL              a GGUF file, or a weightzip archive of one (wz_archive_open tells them apart)
 *   INPUT              a prompt or sentence as text, or "ids:101,7592,102" (token ids, no tokenizer)
 *   --embed            embedding mode: one pooled embedding per INPUT, as C99 hex floats (%a)
 *   --generate N       greedy generation of N tokens per INPUT (the default mode, N = 32)
 *   --threads T        threads for llama.cpp's compute and for weightzip's decoding (default: all)
 *   --loader L         how MODEL becomes a llama_model:
 *        auto     (default) "file" for a GGUF; "tensors" for an archive, falling back to "memfd"
 *                 when llama.cpp asks for an optional tensor the model lacks and that has no
 *                 neutral value (see fill_tensor)
 *                 (the tensors loader cannot repack weights: see --no-repack; it says so on stderr)
 *        file     llama_model_load_from_file(MODEL): llama.cpp's own loader (MODEL is a GGUF, or
 *                 an archive when llama.cpp was built with scripts/llama.cpp-weightzip.patch: then
 *                 the output equals the original's with llama.cpp's defaults)
 *        tensors  llama_model_init_from_user: llama.cpp parses the GGUF metadata that
 *                 wz_archive_metadata returns, creates and allocates the model's tensors, and a
 *                 callback decodes each one with wz_archive_read_tensor straight into its buffer
 *                 (tied output embeddings: token_embd.weight is decoded twice, see
 *                 declare_tied_output)
 *        memfd    the original GGUF is rebuilt byte for byte in an anonymous in-memory file
 *                 (memfd_create, then wz_archive_restore_fd: metadata, padding and every tensor);
 *                 llama.cpp's own file loader then maps /proc/self/fd/N
 *   --no-repack        llama_model_params.use_extra_bufts = false (no CPU weight repacking);
 *                      the "tensors" loader always runs so, as llama_model_init_from_user forces it
 *   --no-mmap          llama_model_params.load_mode = LLAMA_LOAD_MODE_NONE ("file" loader: read the
 *                      file into llama.cpp's buffers instead of mapping it, as it reads an archive)
 *   --no-vocab         for a GGUF without a tokenizer (the MiniLM fixture): overrides
 *                      tokenizer.ggml.model to "none"; INPUTs must then be ids:...
 *   --check ORIGINAL   "memfd" only: fail unless the rebuilt file equals ORIGINAL byte for byte
 *   --verbose          llama.cpp's own log on stderr (by default only its warnings and errors)
 *
 * stdout holds only results, so two runs compare with cmp:
 *   embedding I n_tokens=K n_embd=D: <D hex floats>
 *   generated I n_prompt=K: <token ids>
 *   text I: "<the generated text, C-escaped>"
 * stderr ends with a line "timing: loader=... threads=T load_ms=... first_token_ms=..." where
 * load_ms runs from the start (before opening the archive) to a ready llama_context,
 * first_token_ms to the first embedding or sampled token, and gen_tok_s is the speed of the
 * tokens sampled after each prompt's first (gen_tokens of them; 0 with --embed or --generate 1).
 *
 * The loader in a nutshell (the "tensors" way; error checks left out):
 *
 *   static void fill(ggml_tensor * t, void * ud) {               // called once per tensor
 *       wz_archive * ar = (wz_archive *) ud;
 *       size_t idx;
 *       wz_archive_find_tensor(ar, ggml_get_name(t), &idx);
 *       wz_archive_read_tensor(ar, idx, t->data, ggml_nbytes(t), NULL); // CPU buffers are host memory
 *   }
 *   wz_archive * ar;  const void * meta;  size_t meta_size;
 *   wz_archive_open("model.gguf.wz", &ar);
 *   wz_archive_metadata(ar, &meta, &meta_size);                 // GGUF header, key/values, tensor infos
 *   gguf_init_params gp = { true, NULL };                        // no_alloc: metadata only
 *   gguf_context * meta_ctx = gguf_init_from_buffer(meta, meta_size, gp);
 *   llama_model * model = llama_model_init_from_user(meta_ctx, fill, ar, llama_model_default_params());
 *   wz_archive_close(ar);                                        // the model owns its tensors now
 *   ... llama_init_from_model(model, ...) as usual; gguf_free(meta_ctx) after llama_model_free ...
 *
 * Needs weightzip.h/libweightzip and llama.cpp's headers and libraries (c_examples/Makefile:
 * make llama LLAMA_DIR=...). Linux only for "memfd" (memfd_create).
 */

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "gguf.h"
#include "llama.h"
#include "weightzip.h"

namespace {

using clock_type = std::chrono::steady_clock;

double ms_since(clock_type::time_point t0) {
    return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

[[noreturn]] void die(const char * fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("llama_from_archive: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void check_wz(wz_status st, const char * what) {
    if (st != WZ_STATUS_OK) {
        die("%s: %s", what, wz_status_str(st));
    }
}

struct options {
    std::string model;
    std::string loader = "auto";
    std::string check;
    std::vector<std::string> inputs;
    bool embed = false;
    int n_generate = 32;
    int threads = 0;
    bool repack = true;
    bool mmap = true;
    bool no_vocab = false;
    bool verbose = false;
};

[[noreturn]] void usage() {
    fputs("usage: llama_from_archive MODEL [--embed | --generate N] [--threads T]\n"
          "                          [--loader auto|file|tensors|memfd] [--no-repack] [--no-mmap]\n"
          "                          [--no-vocab]\n"
          "                          [--check ORIGINAL.gguf] [--verbose] INPUT...\n"
          "  INPUT: text, or ids:1,2,3 (token ids)\n",
          stderr);
    exit(2);
}

options parse_args(int argc, char ** argv) {
    options o;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
            }
            return argv[++i];
        };
        if (a == "--embed") {
            o.embed = true;
        } else if (a == "--generate") {
            o.n_generate = atoi(value().c_str());
        } else if (a == "--threads") {
            o.threads = atoi(value().c_str());
        } else if (a == "--loader") {
            o.loader = value();
        } else if (a == "--check") {
            o.check = value();
        } else if (a == "--no-repack") {
            o.repack = false;
        } else if (a == "--no-mmap") {
            o.mmap = false;
        } else if (a == "--no-vocab") {
            o.no_vocab = true;
        } else if (a == "--verbose") {
            o.verbose = true;
        } else if (a == "--help" || a == "-h") {
            usage();
        } else if (a.size() > 2 && a.compare(0, 2, "--") == 0) {
            fprintf(stderr, "unknown option %s\n", a.c_str());
            usage();
        } else if (o.model.empty()) {
            o.model = a;
        } else {
            o.inputs.push_back(a);
        }
    }
    if (o.model.empty() || o.inputs.empty() || o.n_generate < 1 || o.threads < 0) {
        usage();
    }
    if (o.loader != "auto" && o.loader != "file" && o.loader != "tensors" && o.loader != "memfd") {
        usage();
    }
    if (o.threads == 0) {
        o.threads = (int) std::max(1u, std::thread::hardware_concurrency());
    }
    return o;
}

bool g_verbose = false;

void log_callback(ggml_log_level level, const char * text, void *) {
    static ggml_log_level last = GGML_LOG_LEVEL_NONE;
    if (level != GGML_LOG_LEVEL_CONT) {
        last = level;
    }
    if (g_verbose || last == GGML_LOG_LEVEL_WARN || last == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

/* ---- Loader "tensors": llama.cpp allocates, weightzip decodes into its buffers. ------------- */

struct fill_state {
    wz_archive * ar;
    wz_options opts;
    size_t filled = 0;
    size_t neutral = 0;               // absent biases (set to 0), scales and RoPE factors (set to 1)
    uint64_t bytes = 0;               // decoded, and the time it took
    double decode_ms = 0;
    std::vector<std::string> zeroed;  // absent classifier heads, zero-filled
    std::string error;                // first failure (the callback cannot stop the load)
    bool needs_file_loader = false;   // a tensor only the file loader can stand in for
    bool tied = false;                // output.weight is token_embd.weight (declare_tied_output)
    bool tied_used = false;           // and llama.cpp asked for it
};

bool ends_with(const char * s, const char * suffix) {
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Called by llama.cpp once per tensor it created, after allocating its buffer. */
void fill_tensor(ggml_tensor * t, void * ud) {
    fill_state & s = *static_cast<fill_state *>(ud);
    if (!s.error.empty()) {
        return;
    }
    const char * name = ggml_get_name(t);
    const size_t nbytes = ggml_nbytes(t);
    size_t idx = 0;
    wz_status found = wz_archive_find_tensor(s.ar, name, &idx);
    if (found == WZ_STATUS_NOT_FOUND && s.tied && strcmp(name, "output.weight") == 0) {
        found = wz_archive_find_tensor(s.ar, "token_embd.weight", &idx);  // see declare_tied_output
        s.tied_used = found == WZ_STATUS_OK;
    }
    if (found == WZ_STATUS_NOT_FOUND) {
        // With user metadata llama.cpp creates every optional tensor of the architecture (as F32
        // when the metadata lacks it), where its file loader would have left the tensor out and
        // the graph would skip it. Give such a tensor the value that changes nothing: 0 for a bias
        // (x + 0 == x), 1 for a scale or a RoPE frequency factor (x * 1 == x, theta / 1 == theta).
        // A BERT classifier head (cls.*) is used only by classification/rank pooling and is
        // zero-filled. Any other absent tensor has no such value: give up (and let "auto" use the
        // memfd loader) rather than compute something else.
        const bool add_identity = ends_with(name, ".bias");
        const bool mul_identity = ends_with(name, ".scale") || ends_with(name, ".input_scale") ||
                                  strcmp(name, "rope_freqs.weight") == 0 || strncmp(name, "rope_factors_", 13) == 0;
        const bool unused_head = strncmp(name, "cls.", 4) == 0;
        if (t->type != GGML_TYPE_F32 || !(add_identity || mul_identity || unused_head)) {
            s.needs_file_loader = true;
            s.error = std::string("llama.cpp wants optional tensor ") + name +
                      ", absent from the model, with no neutral value; that needs llama.cpp's file loader";
            return;
        }
        if (mul_identity) {
            const std::vector<float> ones(nbytes / sizeof(float), 1.0f);
            ggml_backend_tensor_set(t, ones.data(), 0, nbytes);
        } else {
            ggml_backend_tensor_memset(t, 0, 0, nbytes);
        }
        if (unused_head) {
            s.zeroed.push_back(name);
        } else {
            s.neutral++;
        }
        return;
    }
    if (found != WZ_STATUS_OK) {
        s.error = std::string(name) + ": " + wz_status_str(found);
        return;
    }
    wz_tensor_info ti;
    memset(&ti, 0, sizeof ti);
    ti.struct_size = sizeof ti;
    wz_status st = wz_archive_tensor_info(s.ar, idx, &ti);
    if (st != WZ_STATUS_OK || ti.container_type != (uint32_t) t->type || ti.original_size != nbytes) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: archive has %s, %" PRIu64 " bytes; llama.cpp wants %s, %zu bytes", name,
                 st == WZ_STATUS_OK ? ti.type_name : wz_status_str(st), ti.original_size, ggml_type_name(t->type),
                 nbytes);
        s.error = msg;
        return;
    }
    const auto t0 = clock_type::now();
    if (t->buffer && ggml_backend_buffer_is_host(t->buffer)) {
        st = wz_archive_read_tensor(s.ar, idx, t->data, nbytes, &s.opts);  // decode in place
    } else {
        std::vector<uint8_t> tmp(nbytes);  // a device buffer: decode, then upload
        st = wz_archive_read_tensor(s.ar, idx, tmp.data(), nbytes, &s.opts);
        if (st == WZ_STATUS_OK) {
            ggml_backend_tensor_set(t, tmp.data(), 0, nbytes);
        }
    }
    if (st != WZ_STATUS_OK) {
        s.error = std::string(name) + ": " + wz_status_str(st);
        return;
    }
    s.filled++;
    s.bytes += nbytes;
    s.decode_ms += ms_since(t0);
}

struct loaded {
    llama_model * model = nullptr;
    gguf_context * meta = nullptr;  // kept until the model is freed
    int memfd = -1;
    std::string loader;
};

/* Tied output embeddings: a GGUF without output.weight whose model then computes its logits with
 * token_embd.weight. llama.cpp's file loader makes output a duplicate of token_embd.weight (same
 * type, same bytes); with user metadata it would create an F32 output.weight of its own instead.
 * Declaring output.weight in the metadata with token_embd.weight's type and shape makes it create
 * the same quantized tensor, which fill_tensor fills with token_embd.weight's bytes: the same
 * computation, for a second copy of the embedding matrix in memory. Returns whether it did. */
bool declare_tied_output(gguf_context * meta, wz_archive * ar) {
    size_t idx = 0;
    const int64_t tok = gguf_find_tensor(meta, "token_embd.weight");
    if (gguf_find_tensor(meta, "output.weight") >= 0 || tok < 0 ||
        wz_archive_find_tensor(ar, "token_embd.weight", &idx) != WZ_STATUS_OK) {
        return false;
    }
    wz_tensor_info ti;
    memset(&ti, 0, sizeof ti);
    ti.struct_size = sizeof ti;
    check_wz(wz_archive_tensor_info(ar, idx, &ti), "wz_archive_tensor_info");
    if (ti.n_dims < 1 || ti.n_dims > GGML_MAX_DIMS) {
        return false;
    }
    ggml_tensor t;
    memset(&t, 0, sizeof t);
    t.type = gguf_get_tensor_type(meta, tok);
    for (int d = 0; d < GGML_MAX_DIMS; d++) {
        t.ne[d] = d < (int) ti.n_dims ? (int64_t) ti.dims[d] : 1;
    }
    t.nb[0] = ggml_type_size(t.type);
    t.nb[1] = ggml_row_size(t.type, t.ne[0]);
    for (int d = 2; d < GGML_MAX_DIMS; d++) {
        t.nb[d] = t.nb[d - 1] * t.ne[d - 1];
    }
    ggml_set_name(&t, "output.weight");
    gguf_add_tensor(meta, &t);
    return true;
}

/* Returns NULL model (with *retry_memfd set) when the archive cannot feed this model's tensors. */
loaded load_tensors(wz_archive * ar, const wz_options & opts, llama_model_params mp, bool * retry_memfd) {
    loaded r;
    r.loader = "tensors";
    const void * meta = nullptr;
    size_t meta_size = 0;
    check_wz(wz_archive_metadata(ar, &meta, &meta_size), "wz_archive_metadata");
    gguf_init_params gp = { /*no_alloc =*/ true, /*ctx =*/ nullptr };
    r.meta = gguf_init_from_buffer(meta, meta_size, gp);
    if (!r.meta) {
        die("gguf_init_from_buffer: the archive's GGUF metadata does not parse");
    }
    fill_state s;
    s.ar = ar;
    s.opts = opts;
    s.tied = declare_tied_output(r.meta, ar);
    r.model = llama_model_init_from_user(r.meta, fill_tensor, &s, mp);
    if (r.model && s.error.empty()) {
        const size_t n_archive = wz_archive_tensor_count(ar);
        fprintf(stderr,
                "llama_from_archive: %zu tensors decoded into llama.cpp's buffers from the archive's %zu "
                "(%.1f MB in %.1f ms)%s; %zu absent optional biases/scales/RoPE factors set to 0/1",
                s.filled, n_archive, s.bytes / 1e6, s.decode_ms,
                s.tied_used ? ", token_embd.weight twice: also as the tied output.weight" : "", s.neutral);
        if (!s.zeroed.empty()) {
            fprintf(stderr, "; %zu absent classifier tensors zero-filled (unused but by rank pooling):", s.zeroed.size());
            for (const auto & n : s.zeroed) {
                fprintf(stderr, " %s", n.c_str());
            }
        }
        fputc('\n', stderr);
        return r;
    }
    if (r.model) {
        llama_model_free(r.model);
        r.model = nullptr;
    }
    gguf_free(r.meta);
    r.meta = nullptr;
    if (s.needs_file_loader && retry_memfd) {
        fprintf(stderr, "llama_from_archive: %s; retrying\n", s.error.c_str());
        *retry_memfd = true;
        return r;
    }
    die("loading tensors from the archive: %s", s.error.empty() ? "llama_model_init_from_user failed" : s.error.c_str());
}

/* ---- Loader "memfd": the original GGUF, rebuilt in memory, through llama.cpp's file loader. -- */

/* Rebuilds the original file, byte for byte (padding included), in an anonymous memory file and
 * returns its descriptor: wz_archive_restore_fd decodes in windows on opts.threads threads and
 * writes each window in order, so no other copy of the model is made. */
int build_memfd(wz_archive * ar, const wz_options & opts) {
    wz_archive_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    check_wz(wz_archive_get_info(ar, &info), "wz_archive_get_info");
    if (info.container != WZ_CONTAINER_GGUF) {
        die("the archive does not hold a GGUF file");
    }
    const int fd = memfd_create("weightzip-model.gguf", 0);
    if (fd < 0) {
        die("memfd_create: %s", strerror(errno));
    }
    check_wz(wz_archive_restore_fd(ar, fd, &opts), "wz_archive_restore_fd");
    return fd;
}

/* Compares the memfd's bytes with a file, 1 MiB at a time. */
void check_same(int fd, const std::string & path) {
    FILE * f = fopen(path.c_str(), "rb");
    if (!f) {
        die("%s: %s", path.c_str(), strerror(errno));
    }
    std::vector<char> a(1 << 20), b(1 << 20);
    off_t pos = 0;
    for (;;) {
        const ssize_t na = pread(fd, a.data(), a.size(), pos);
        const size_t nb = fread(b.data(), 1, b.size(), f);
        if (na < 0) {
            die("pread(memfd): %s", strerror(errno));
        }
        if ((size_t) na != nb || memcmp(a.data(), b.data(), nb) != 0) {
            die("--check: the rebuilt GGUF differs from %s near byte %lld", path.c_str(), (long long) pos);
        }
        if (nb == 0) {
            break;
        }
        pos += na;
    }
    fclose(f);
    fprintf(stderr, "llama_from_archive: --check: the rebuilt GGUF equals %s (%lld bytes)\n", path.c_str(),
            (long long) pos);
}

loaded load_memfd(wz_archive * ar, const wz_options & opts, llama_model_params mp, const std::string & check) {
    loaded r;
    r.loader = "memfd";
    r.memfd = build_memfd(ar, opts);
    if (!check.empty()) {
        check_same(r.memfd, check);
    }
    const std::string path = "/proc/self/fd/" + std::to_string(r.memfd);
    r.model = llama_model_load_from_file(path.c_str(), mp);
    if (!r.model) {
        die("llama_model_load_from_file(%s) failed", path.c_str());
    }
    return r;
}

/* ---- Running the model. ------------------------------------------------------------------- */

std::vector<llama_token> tokenize(const llama_vocab * vocab, const std::string & input) {
    std::vector<llama_token> out;
    if (input.compare(0, 4, "ids:") == 0) {
        const char * p = input.c_str() + 4;
        while (*p) {
            char * end = nullptr;
            const long v = strtol(p, &end, 10);
            if (end == p) {
                die("bad token id list: %s", input.c_str());
            }
            out.push_back((llama_token) v);
            p = end;
            while (*p == ',' || *p == ' ') {
                p++;
            }
        }
    } else {
        const int n = -llama_tokenize(vocab, input.data(), (int32_t) input.size(), nullptr, 0, true, true);
        out.resize(n);
        if (llama_tokenize(vocab, input.data(), (int32_t) input.size(), out.data(), n, true, true) < 0) {
            die("tokenizing failed: %s", input.c_str());
        }
    }
    if (out.empty()) {
        die("empty input");
    }
    return out;
}

void print_escaped(const std::string & s) {
    putchar('"');
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c == '\n') {
            fputs("\\n", stdout);
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\x%02x", c);
        } else {
            putchar(c);
        }
    }
    putchar('"');
}

void decode_or_die(llama_context * ctx, llama_batch_ext * batch) {
    const int32_t rc = llama_process(ctx, LLAMA_PROCESS_TYPE_DECODE, batch);
    if (rc != 0) {
        die("llama_process failed: %d", rc);
    }
}

}  // namespace

int main(int argc, char ** argv) {
    const options o = parse_args(argc, argv);
    g_verbose = o.verbose;
    llama_log_set(log_callback, nullptr);
    llama_backend_init();

    const auto t0 = clock_type::now();

    // Model parameters, the same for every loader.
    llama_model_params mp = llama_model_default_params();
    mp.use_extra_bufts = o.repack;
    if (!o.mmap) {
        mp.load_mode = LLAMA_LOAD_MODE_NONE;
    }
    llama_model_kv_override kv[2];
    memset(kv, 0, sizeof kv);
    if (o.no_vocab) {
        snprintf(kv[0].key, sizeof kv[0].key, "%s", "tokenizer.ggml.model");
        kv[0].tag = LLAMA_KV_OVERRIDE_TYPE_STR;
        snprintf(kv[0].val_str, sizeof kv[0].val_str, "%s", "none");
        mp.kv_overrides = kv;
    }

    wz_options wopts;
    check_wz(wz_options_init(&wopts), "wz_options_init");
    wopts.threads = (uint32_t) o.threads;

    wz_archive * ar = nullptr;
    const wz_status open_st = o.loader == "file" ? WZ_STATUS_BAD_MAGIC : wz_archive_open(o.model.c_str(), &ar);
    if (open_st != WZ_STATUS_OK && o.loader != "file" && o.loader != "auto") {
        die("%s: not a weightzip archive (%s); --loader %s needs one", o.model.c_str(), wz_status_str(open_st),
            o.loader.c_str());
    }
    if (open_st != WZ_STATUS_OK && open_st != WZ_STATUS_BAD_MAGIC) {
        die("%s: %s", o.model.c_str(), wz_status_str(open_st));  // an archive, but damaged
    }

    loaded L;
    if (!ar) {
        L.loader = "file";
        L.model = llama_model_load_from_file(o.model.c_str(), mp);
        if (!L.model) {
            die("llama_model_load_from_file(%s) failed", o.model.c_str());
        }
    } else {
        bool retry = false;
        if (o.loader == "tensors" || o.loader == "auto") {
            L = load_tensors(ar, wopts, mp, o.loader == "auto" ? &retry : nullptr);
        }
        if (o.loader == "memfd" || retry) {
            L = load_memfd(ar, wopts, mp, o.check);
        }
        if (L.loader == "tensors" && o.repack) {
            // said every time: the output differs from llama.cpp's defaults on some prompts
            fprintf(stderr,
                    "llama_from_archive: note: the tensors loader runs without CPU weight repacking "
                    "(llama_model_init_from_user turns it off), so its output equals the original's with "
                    "--no-repack, not with llama.cpp's defaults; for those, use --loader memfd, or llama.cpp "
                    "built with scripts/llama.cpp-weightzip.patch (--loader file on the archive)\n");
        }
        wz_archive_close(ar);  // the model holds its own copy of every tensor now
        ar = nullptr;
    }
    const llama_model * model = L.model;
    const llama_vocab * vocab = llama_model_get_vocab(model);

    std::vector<std::vector<llama_token>> toks;
    size_t max_tokens = 0;
    for (const auto & in : o.inputs) {
        toks.push_back(tokenize(vocab, in));
        max_tokens = std::max(max_tokens, toks.back().size());
    }

    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = (uint32_t) (max_tokens + (o.embed ? 0 : o.n_generate));
    cp.n_batch = cp.n_ctx;
    cp.n_ubatch = cp.n_ctx;  // an embedding (non-causal) input must fit one ubatch
    cp.n_threads = o.threads;
    cp.n_threads_batch = o.threads;
    cp.embeddings = o.embed;
    cp.no_perf = true;
    llama_context * ctx = llama_init_from_model(L.model, cp);
    if (!ctx) {
        die("llama_init_from_model failed");
    }
    const double load_ms = ms_since(t0);
    double first_ms = -1;
    // Tokens sampled after each prompt's first one, and the time they took: generation speed,
    // which CPU weight repacking changes (it is not only a matter of load time).
    size_t gen_tokens = 0;
    double gen_ms = 0;

    llama_batch_ext * batch = llama_batch_ext_init(ctx);
    if (o.embed) {
        const int n_embd = llama_model_n_embd_out(model);
        for (size_t i = 0; i < toks.size(); i++) {
            llama_memory_clear(llama_get_memory(ctx), true);
            llama_batch_ext_clear(batch);
            for (size_t j = 0; j < toks[i].size(); j++) {
                const int32_t idx = llama_batch_ext_add_token(batch, 0, toks[i][j]);
                const llama_pos pos = (llama_pos) j;
                if (idx < 0 || !llama_batch_ext_set_pos(batch, idx, &pos) ||
                    !llama_batch_ext_set_output_embd(batch, idx, true)) {
                    die("building the batch failed");
                }
            }
            decode_or_die(ctx, batch);
            const float * e = llama_get_embeddings_seq(ctx, 0);
            if (!e) {
                die("no pooled embedding (the model's pooling type is NONE?)");
            }
            if (first_ms < 0) {
                first_ms = ms_since(t0);
            }
            printf("embedding %zu n_tokens=%zu n_embd=%d:", i, toks[i].size(), n_embd);
            for (int k = 0; k < n_embd; k++) {
                printf(" %a", (double) e[k]);
            }
            putchar('\n');
        }
    } else {
        llama_sampler * smpl = llama_sampler_chain_init(llama_sampler_chain_default_params());
        llama_sampler_chain_add(smpl, llama_sampler_init_greedy());
        for (size_t i = 0; i < toks.size(); i++) {
            llama_memory_clear(llama_get_memory(ctx), true);
            llama_sampler_reset(smpl);
            std::vector<llama_token> cur = toks[i];
            std::vector<llama_token> out;
            std::string text;
            llama_pos pos = 0;
            double prompt_done_ms = -1;
            for (int n = 0; n < o.n_generate; n++) {
                llama_batch_ext_clear(batch);
                for (size_t j = 0; j < cur.size(); j++) {
                    const int32_t idx = llama_batch_ext_add_token(batch, 0, cur[j]);
                    const llama_pos p = pos + (llama_pos) j;
                    if (idx < 0 || !llama_batch_ext_set_pos(batch, idx, &p)) {
                        die("building the batch failed");
                    }
                }
                llama_batch_ext_set_output_logits(batch, (int32_t) cur.size() - 1, true);
                decode_or_die(ctx, batch);
                pos += (llama_pos) cur.size();
                const llama_token id = llama_sampler_sample(smpl, ctx, -1);
                if (first_ms < 0) {
                    first_ms = ms_since(t0);
                }
                if (prompt_done_ms < 0) {
                    prompt_done_ms = ms_since(t0);
                } else {
                    gen_tokens++;
                }
                out.push_back(id);
                if (llama_vocab_is_eog(vocab, id)) {
                    break;  // listed among the ids, left out of the text (as llama-simple does)
                }
                char piece[256];
                const int np = llama_token_to_piece(vocab, id, piece, sizeof piece, 0, true);
                if (np > 0) {
                    text.append(piece, (size_t) np);
                }
                cur.assign(1, id);
            }
            if (prompt_done_ms >= 0) {
                gen_ms += ms_since(t0) - prompt_done_ms;
            }
            printf("generated %zu n_prompt=%zu:", i, toks[i].size());
            for (llama_token id : out) {
                printf(" %d", id);
            }
            printf("\ntext %zu: ", i);
            print_escaped(text);
            putchar('\n');
        }
        llama_sampler_free(smpl);
    }
    fflush(stdout);
    fprintf(stderr, "timing: loader=%s threads=%d load_ms=%.1f first_token_ms=%.1f total_ms=%.1f gen_tokens=%zu gen_tok_s=%.2f\n",
            L.loader.c_str(), o.threads, load_ms, first_ms, ms_since(t0), gen_tokens,
            gen_ms > 0 ? 1000.0 * (double) gen_tokens / gen_ms : 0.0);

    llama_batch_ext_free(batch);
    llama_free(ctx);
    llama_model_free(L.model);
    if (L.meta) {
        gguf_free(L.meta);
    }
    if (L.memfd >= 0) {
        close(L.memfd);
    }
    llama_backend_free();
    return 0;
}
