/*
 * safetensors.c - see safetensors.h.
 *
 * What is checked before any tensor is used:
 *   - the header length fits in the file and is not absurd;
 *   - the header is valid JSON, an object of objects;
 *   - each tensor has a known dtype, at most NT_ST_MAX_DIMS non-negative
 *     dimensions and two data offsets with begin <= end <= data size;
 *   - end - begin equals the element count times the element size, computed
 *     without overflow;
 *   - no two tensors share a name or overlap;
 *   - data of the types we compute with is aligned to its element size.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "model/safetensors.h"

/* No real checkpoint comes near this; a larger one is a corrupt length. */
#define MAX_HEADER_BYTES (256ull << 20)
/* Reads and progress reports happen in steps of this many bytes. */
#define IO_STEP (32ull << 20)

static const struct {
    const char *name;
    int bytes;
    int dtype; /* nt_dtype, or -1 for types we can parse but not compute with */
} st_dtypes[] = {
    {"F32", 4, NT_DTYPE_F32},  {"F16", 2, NT_DTYPE_F16},
    {"BF16", 2, NT_DTYPE_BF16}, {"F64", 8, -1},
    {"I64", 8, -1},            {"I32", 4, -1},
    {"I16", 2, -1},            {"I8", 1, -1},
    {"U64", 8, -1},            {"U32", 4, -1},
    {"U16", 2, -1},            {"U8", 1, -1},
    {"BOOL", 1, -1},           {"F8_E4M3", 1, -1},
    {"F8_E5M2", 1, -1},
};
#define N_ST_DTYPES (sizeof st_dtypes / sizeof st_dtypes[0])

int nt_st_dtype_from_name(const char *name) {
    for (size_t i = 0; i < N_ST_DTYPES; i++)
        if (strcmp(name, st_dtypes[i].name) == 0)
            return st_dtypes[i].dtype;
    return -1;
}

const char *nt_st_dtype_name(nt_dtype dtype) {
    for (size_t i = 0; i < N_ST_DTYPES; i++)
        if (st_dtypes[i].dtype == (int)dtype)
            return st_dtypes[i].name;
    return "?";
}

static int st_dtype_bytes(const char *name) {
    for (size_t i = 0; i < N_ST_DTYPES; i++)
        if (strcmp(name, st_dtypes[i].name) == 0)
            return st_dtypes[i].bytes;
    return 0;
}

static uint64_t read_le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Reads exactly n bytes at offset, or fails with errno set (0: short file). */
static int pread_full(int fd, void *buf, uint64_t n, uint64_t offset) {
    unsigned char *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t got = pread(fd, p, chunk, (off_t)offset);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0) {
            errno = 0;
            return -1;
        }
        p += got;
        n -= (uint64_t)got;
        offset += (uint64_t)got;
    }
    return 0;
}

static int compare_by_offset(const void *a, const void *b) {
    const nt_st_tensor *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->size < y->size ? -1 : x->size > y->size;
}

static int compare_by_name(const void *a, const void *b) {
    const nt_st_tensor *x = a, *y = b;
    return strcmp(x->name, y->name);
}

/* Validates one header entry into t. */
static nt_status parse_entry(const nt_st_file *f, const char *name,
                             const nt_json *v, uint64_t data_size,
                             nt_st_tensor *t, nt_error *err) {
    const char *path = f->path;
    if (nt_json_kind_of(v) != NT_JSON_OBJECT)
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: tensor %s: header entry is a %s, not an object",
                       path, name, nt_json_kind_name(nt_json_kind_of(v)));
    const char *dtype = nt_json_string(nt_json_get(v, "dtype"), NULL);
    if (!dtype)
        return nt_fail(err, NT_ERR_FORMAT, "%s: tensor %s: no \"dtype\" string",
                       path, name);
    int elem = st_dtype_bytes(dtype);
    if (elem == 0)
        return nt_fail(err, NT_ERR_FORMAT, "%s: tensor %s: unknown dtype \"%.32s\"",
                       path, name, dtype);
    snprintf(t->dtype_name, sizeof t->dtype_name, "%s", dtype);
    t->dtype = nt_st_dtype_from_name(dtype);

    const nt_json *shape = nt_json_get(v, "shape");
    if (nt_json_kind_of(shape) != NT_JSON_ARRAY)
        return nt_fail(err, NT_ERR_FORMAT, "%s: tensor %s: no \"shape\" array",
                       path, name);
    size_t n_dims = nt_json_count(shape);
    if (n_dims > NT_ST_MAX_DIMS)
        return nt_fail(err, NT_ERR_FORMAT, "%s: tensor %s: %zu dimensions (at most %d)",
                       path, name, n_dims, NT_ST_MAX_DIMS);
    uint64_t numel = 1;
    for (size_t i = 0; i < n_dims; i++) {
        int64_t d;
        if (!nt_json_int64(nt_json_at(shape, i), &d) || d < 0)
            return nt_fail(err, NT_ERR_FORMAT,
                           "%s: tensor %s: shape[%zu] is not a non-negative integer",
                           path, name, i);
        t->shape[i] = d;
        if (!nt_mul_u64(numel, (uint64_t)d, &numel))
            return nt_fail(err, NT_ERR_FORMAT, "%s: tensor %s: shape overflows",
                           path, name);
    }
    t->n_dims = (int)n_dims;

    const nt_json *offs = nt_json_get(v, "data_offsets");
    int64_t begin, end;
    if (nt_json_kind_of(offs) != NT_JSON_ARRAY || nt_json_count(offs) != 2 ||
        !nt_json_int64(nt_json_at(offs, 0), &begin) ||
        !nt_json_int64(nt_json_at(offs, 1), &end))
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: tensor %s: \"data_offsets\" is not two integers", path,
                       name);
    if (begin < 0 || end < begin || (uint64_t)end > data_size)
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: tensor %s: data_offsets [%lld, %lld] lie outside the "
                       "%llu bytes of data (truncated file?)",
                       path, name, (long long)begin, (long long)end,
                       (unsigned long long)data_size);
    uint64_t bytes;
    if (!nt_mul_u64(numel, (uint64_t)elem, &bytes) ||
        bytes != (uint64_t)(end - begin))
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: tensor %s: %llu elements of %s need %llu bytes but "
                       "data_offsets give %lld",
                       path, name, (unsigned long long)numel, dtype,
                       (unsigned long long)numel * (unsigned long long)elem,
                       (long long)(end - begin));
    t->offset = (uint64_t)begin;
    t->size = bytes;
    return NT_OK;
}

nt_status nt_st_open(nt_st_file *f, const char *path, nt_error *err) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path)
        return nt_fail(err, NT_ERR_NO_MEMORY, "out of memory");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nt_fail(err, NT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return nt_fail(err, NT_ERR_IO, "%s: not a regular file", path);
    }
    f->file_size = (uint64_t)st.st_size;

    unsigned char len_bytes[8];
    if (f->file_size < 8 || pread_full(fd, len_bytes, 8, 0) != 0) {
        close(fd);
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: too short for a safetensors file (%llu bytes)", path,
                       (unsigned long long)f->file_size);
    }
    uint64_t header_len = read_le64(len_bytes);
    if (header_len > MAX_HEADER_BYTES || header_len > f->file_size - 8) {
        close(fd);
        return nt_fail(err, NT_ERR_FORMAT,
                       "%s: header length %llu does not fit in the file's %llu "
                       "bytes (truncated or not a safetensors file)",
                       path, (unsigned long long)header_len,
                       (unsigned long long)f->file_size);
    }
    char *header = malloc(header_len + 1);
    if (!header) {
        close(fd);
        return nt_fail(err, NT_ERR_NO_MEMORY, "%s: out of memory for the header", path);
    }
    if (pread_full(fd, header, header_len, 8) != 0) {
        int e = errno;
        free(header);
        close(fd);
        return nt_fail(err, NT_ERR_IO, "%s: reading the header: %s", path,
                       e ? strerror(e) : "file too short");
    }
    close(fd);
    f->data_start = 8 + header_len;
    uint64_t data_size = f->file_size - f->data_start;

    char jerr[256];
    nt_json_doc *doc = nt_json_parse(header, (size_t)header_len, jerr, sizeof jerr);
    free(header);
    if (!doc)
        return nt_fail(err, NT_ERR_FORMAT, "%s: header is not valid JSON: %s", path,
                       jerr);
    const nt_json *root = nt_json_root(doc);
    nt_status status = NT_OK;
    if (nt_json_kind_of(root) != NT_JSON_OBJECT) {
        status = nt_fail(err, NT_ERR_FORMAT, "%s: header is a JSON %s, not an object",
                         path, nt_json_kind_name(nt_json_kind_of(root)));
        goto done;
    }
    size_t n_members = nt_json_count(root);
    f->tensors = calloc(n_members ? n_members : 1, sizeof *f->tensors);
    if (!f->tensors) {
        status = nt_fail(err, NT_ERR_NO_MEMORY, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < n_members; i++) {
        const char *name = nt_json_key_at(root, i, NULL);
        if (strcmp(name, "__metadata__") == 0)
            continue;
        nt_st_tensor *t = &f->tensors[f->n_tensors];
        status = parse_entry(f, name, nt_json_at(root, i), data_size, t, err);
        if (status != NT_OK)
            goto done;
        t->name = strdup(name);
        if (!t->name) {
            status = nt_fail(err, NT_ERR_NO_MEMORY, "%s: out of memory", path);
            goto done;
        }
        f->n_tensors++;
    }

    /* Names are looked up by binary search from here on. */
    qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, compare_by_name);
    for (int i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            status = nt_fail(err, NT_ERR_FORMAT, "%s: tensor %s appears twice", path,
                             f->tensors[i].name);
            goto done;
        }
    /* Overlap check on a copy sorted by offset. */
    if (f->n_tensors > 1) {
        nt_st_tensor *by_off = malloc((size_t)f->n_tensors * sizeof *by_off);
        if (!by_off) {
            status = nt_fail(err, NT_ERR_NO_MEMORY, "%s: out of memory", path);
            goto done;
        }
        memcpy(by_off, f->tensors, (size_t)f->n_tensors * sizeof *by_off);
        qsort(by_off, (size_t)f->n_tensors, sizeof *by_off, compare_by_offset);
        /* Compare each non-empty tensor with the last non-empty one before
         * it: an empty tensor in between must not hide an overlap. */
        int prev = -1;
        for (int i = 0; i < f->n_tensors && status == NT_OK; i++) {
            if (by_off[i].size == 0)
                continue;
            if (prev >= 0 && by_off[i].offset < by_off[prev].offset + by_off[prev].size)
                status = nt_fail(err, NT_ERR_FORMAT,
                                 "%s: tensors %s and %s overlap", path,
                                 by_off[prev].name, by_off[i].name);
            prev = i;
        }
        free(by_off);
    }
done:
    nt_json_free(doc);
    return status;
}

const nt_st_tensor *nt_st_find(const nt_st_file *f, const char *name) {
    int lo = 0, hi = f->n_tensors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0)
            return &f->tensors[mid];
        if (c < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Sets data pointers relative to `base` (the data section) and checks
 * that what we compute with is aligned. */
static nt_status point_tensors(nt_st_file *f, const unsigned char *base,
                               nt_error *err) {
    for (int i = 0; i < f->n_tensors; i++) {
        nt_st_tensor *t = &f->tensors[i];
        t->data = base + t->offset;
        int elem = t->dtype >= 0 ? nt_dtype_align((nt_dtype)t->dtype) : 1;
        if ((uintptr_t)t->data % (uintptr_t)elem != 0)
            return nt_fail(err, NT_ERR_FORMAT,
                           "%s: tensor %s: data offset %llu is not a multiple of "
                           "%d bytes, as its type requires",
                           f->path, t->name, (unsigned long long)t->offset, elem);
    }
    return NT_OK;
}

/* ---- reading into memory ------------------------------------------------ */

/*
 * Reading 8 GB through the page cache costs a kernel copy per byte, and on
 * a small VM that copy, not the disk, is the limit. So the data section is
 * read with O_DIRECT (DMA straight into our buffer) where the file system
 * allows it, by two threads at once to keep the device queue full; where it
 * does not, with ordinary reads that drop their page cache as they go.
 */
#define DIRECT_ALIGN 4096ull
#define HUGE_PAGE (2ull << 20)
#define N_READERS 2

typedef struct reader_job {
    int fd;
    int direct;
    unsigned char *buf;  /* buf[0] is file byte `start` */
    uint64_t start, end; /* file offsets; end is the file size */
    atomic_ullong done;  /* bytes read, all readers */
    atomic_int failed;   /* errno + 1 of the first failure, or -1: short */
    uint64_t failed_at;
    nt_st_progress_fn progress;
    void *user;
    uint64_t progress_base; /* bytes before data_start within [start, end) */
} reader_job;

/* Reads up to n bytes at `offset`, stopping early only at end of file.
 * Returns the count, or -1 with errno set. */
static int64_t pread_upto(int fd, unsigned char *buf, uint64_t n, uint64_t offset) {
    uint64_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, (size_t)(n - got), (off_t)(offset + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (uint64_t)r;
    }
    return (int64_t)got;
}

/* Reader `index` takes pieces index, index + N_READERS, ... */
static void read_pieces(reader_job *j, int index) {
    uint64_t span = j->end - j->start;
    for (uint64_t piece = (uint64_t)index * IO_STEP; piece < span;
         piece += N_READERS * IO_STEP) {
        if (atomic_load(&j->failed))
            return;
        uint64_t want = span - piece < IO_STEP ? span - piece : IO_STEP;
        uint64_t ask = j->direct ? (want + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1) : want;
        int64_t got = pread_upto(j->fd, j->buf + piece, ask, j->start + piece);
        if (got < (int64_t)want) {
            int expected = 0;
            if (atomic_compare_exchange_strong(&j->failed, &expected,
                                               got < 0 ? errno + 1 : -1))
                j->failed_at = j->start + piece; /* read after the join */
            return;
        }
        if (!j->direct) /* the page cache copy is not needed again */
            posix_fadvise(j->fd, (off_t)(j->start + piece), (off_t)want,
                          POSIX_FADV_DONTNEED);
        uint64_t done = atomic_fetch_add(&j->done, want) + want;
        if (index == 0 && j->progress)
            j->progress(done - (done < j->progress_base ? done : j->progress_base),
                        j->user);
    }
}

static void *reader_thread(void *arg) {
    read_pieces(arg, 1);
    return NULL;
}

static nt_status read_data_section(nt_st_file *f, nt_st_progress_fn progress,
                                   void *user, nt_error *err) {
    /* O_DIRECT needs the file offset, the buffer and the sizes aligned: read
     * from the block the data starts in, and point past the lead-in. The
     * data then starts at (data_start % 4096) into the buffer, which keeps
     * every element aligned as long as data_start is a multiple of 8 (HF's
     * writer pads the header so). */
    int direct = 0;
    int fd = -1;
#ifdef O_DIRECT
    if (f->data_start % 8 == 0)
        fd = open(f->path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    direct = fd >= 0;
#endif
    if (fd < 0)
        fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nt_fail(err, NT_ERR_IO, "%s: cannot open: %s", f->path, strerror(errno));
    for (;;) {
        uint64_t start = direct ? f->data_start & ~(DIRECT_ALIGN - 1) : f->data_start;
        uint64_t lead = f->data_start - start;
        uint64_t size = f->file_size - start;
        void *mem = NULL;
        size_t alloc = (size_t)((size + DIRECT_ALIGN - 1) & ~(DIRECT_ALIGN - 1));
        if (posix_memalign(&mem, size >= HUGE_PAGE ? HUGE_PAGE : DIRECT_ALIGN, alloc) != 0) {
            close(fd);
            return nt_fail(err, NT_ERR_NO_MEMORY,
                           "%s: cannot allocate %llu bytes for the weights", f->path,
                           (unsigned long long)size);
        }
#ifdef MADV_HUGEPAGE
        /* Decoding streams every weight once per token. With 4 KiB pages
         * the CPU's prefetchers stop at each page boundary and every page
         * costs a TLB miss; 2 MiB pages (where the kernel allows them)
         * measured 10-20% faster decoding. Only a hint: failure is fine. */
        if (size >= HUGE_PAGE)
            madvise(mem, alloc, MADV_HUGEPAGE);
#endif
        reader_job job = {.fd = fd, .direct = direct, .buf = mem, .start = start,
                          .end = f->file_size, .progress = progress, .user = user,
                          .progress_base = lead};
        if (!direct)
            posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        pthread_t helper;
        int have_helper = pthread_create(&helper, NULL, reader_thread, &job) == 0;
        read_pieces(&job, 0);
        if (have_helper)
            pthread_join(helper, NULL);
        else
            read_pieces(&job, 1);
        int failed = atomic_load(&job.failed);
        if (failed && direct && failed == EINVAL + 1) {
            /* The file system refused O_DIRECT after all: read normally. */
            free(mem);
            close(fd);
            fd = open(f->path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                return nt_fail(err, NT_ERR_IO, "%s: cannot open: %s", f->path,
                               strerror(errno));
            direct = 0;
            continue;
        }
        close(fd);
        if (failed) {
            free(mem);
            return nt_fail(err, NT_ERR_IO, "%s: reading at byte %llu: %s", f->path,
                           (unsigned long long)job.failed_at,
                           failed > 0 ? strerror(failed - 1) : "file too short");
        }
        if (progress)
            progress(f->file_size - f->data_start, user);
        f->buffer = mem;
        return point_tensors(f, (unsigned char *)mem + lead, err);
    }
}

nt_status nt_st_load(nt_st_file *f, int use_mmap, nt_st_progress_fn progress,
                     void *user, nt_error *err) {
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nt_fail(err, NT_ERR_IO, "%s: cannot open: %s", f->path,
                       strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != f->file_size) {
        close(fd);
        return nt_fail(err, NT_ERR_IO, "%s: the file changed while loading", f->path);
    }
    uint64_t data_size = f->file_size - f->data_start;

    if (use_mmap) {
        void *map = mmap(NULL, (size_t)f->file_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (map == MAP_FAILED)
            return nt_fail(err, NT_ERR_NO_MEMORY, "%s: mmap failed: %s", f->path,
                           strerror(errno));
        f->map = map;
        f->map_size = f->file_size;
        nt_status s = point_tensors(f, (unsigned char *)map + f->data_start, err);
        if (s != NT_OK)
            return s;
        /* Fault the pages in now, so that loading (and its progress bar) is
         * where the reading happens rather than the first token. */
        madvise(map, (size_t)f->file_size, MADV_WILLNEED);
        const volatile unsigned char *p = (unsigned char *)map + f->data_start;
        uint64_t next_report = IO_STEP;
        unsigned char sink = 0;
        for (uint64_t off = 0; off < data_size; off += 4096) {
            sink ^= p[off];
            if (progress && off >= next_report) {
                progress(off, user);
                next_report += IO_STEP;
            }
        }
        (void)sink;
        if (progress)
            progress(data_size, user);
        return NT_OK;
    }

    close(fd);
    return read_data_section(f, progress, user, err);
}

void nt_st_close(nt_st_file *f) {
    if (!f)
        return;
    for (int i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    if (f->map)
        munmap(f->map, (size_t)f->map_size);
    nt_free_aligned(f->buffer);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* ---- writing ------------------------------------------------------------ */

struct nt_st_writer {
    FILE *fp;
    char *path;
    uint64_t expected;  /* data bytes promised by the header */
    uint64_t written;
};

/* Appends to a growing string; returns 0 when out of memory. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
} strbuf;

static int sb_printf(strbuf *b, const char *fmt, ...) NT_PRINTF(2, 3);
static int sb_printf(strbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0,
                          fmt, ap);
        va_end(ap);
        if (n < 0)
            return 0;
        if (b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return 1;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return 0;
        b->s = s;
        b->cap = cap;
    }
}

nt_st_writer *nt_st_writer_open(const char *path, const nt_st_tensor_spec *specs,
                                int n_specs, nt_error *err) {
    strbuf hb = {0};
    uint64_t offset = 0;
    int ok = sb_printf(&hb, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int i = 0; ok && i < n_specs; i++) {
        const nt_st_tensor_spec *s = &specs[i];
        uint64_t numel = 1;
        ok = sb_printf(&hb, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", s->name,
                       nt_st_dtype_name(s->dtype));
        for (int d = 0; ok && d < s->n_dims; d++) {
            numel *= (uint64_t)s->shape[d];
            ok = sb_printf(&hb, "%s%lld", d ? "," : "", (long long)s->shape[d]);
        }
        uint64_t bytes = nt_dtype_bytes(s->dtype, numel);
        ok = ok && sb_printf(&hb, "],\"data_offsets\":[%llu,%llu]}",
                             (unsigned long long)offset,
                             (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    ok = ok && sb_printf(&hb, "}");
    /* Pad with spaces so the data starts 8-byte aligned, as HF's writer does. */
    while (ok && (hb.len % 8) != 0)
        ok = sb_printf(&hb, " ");
    if (!ok) {
        free(hb.s);
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory writing %s", path);
        return NULL;
    }

    nt_st_writer *w = calloc(1, sizeof *w);
    if (w)
        w->path = strdup(path);
    if (!w || !w->path) {
        free(hb.s);
        free(w);
        nt_fail(err, NT_ERR_NO_MEMORY, "out of memory writing %s", path);
        return NULL;
    }
    w->expected = offset;
    w->fp = fopen(path, "wb");
    if (!w->fp) {
        nt_fail(err, NT_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(hb.s);
        free(w->path);
        free(w);
        return NULL;
    }
    unsigned char len_bytes[8];
    for (int i = 0; i < 8; i++)
        len_bytes[i] = (unsigned char)((uint64_t)hb.len >> (8 * i));
    int wrote = fwrite(len_bytes, 1, 8, w->fp) == 8 &&
                fwrite(hb.s, 1, hb.len, w->fp) == hb.len;
    free(hb.s);
    if (!wrote) {
        nt_fail(err, NT_ERR_IO, "%s: write failed: %s", path, strerror(errno));
        nt_st_writer_abort(w);
        return NULL;
    }
    return w;
}

nt_status nt_st_writer_write(nt_st_writer *w, const void *data, uint64_t bytes,
                             nt_error *err) {
    if (w->written + bytes > w->expected)
        return nt_fail(err, NT_ERR_ARGUMENT,
                       "%s: writing %llu bytes past the %llu the header promised",
                       w->path, (unsigned long long)(w->written + bytes - w->expected),
                       (unsigned long long)w->expected);
    if (fwrite(data, 1, (size_t)bytes, w->fp) != bytes)
        return nt_fail(err, NT_ERR_IO, "%s: write failed: %s", w->path,
                       strerror(errno));
    w->written += bytes;
    return NT_OK;
}

nt_status nt_st_writer_close(nt_st_writer *w, nt_error *err) {
    nt_status s = NT_OK;
    if (w->written != w->expected)
        s = nt_fail(err, NT_ERR_ARGUMENT, "%s: %llu of %llu data bytes written",
                    w->path, (unsigned long long)w->written,
                    (unsigned long long)w->expected);
    if (fclose(w->fp) != 0 && s == NT_OK)
        s = nt_fail(err, NT_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    w->fp = NULL;
    if (s != NT_OK)
        remove(w->path);
    free(w->path);
    free(w);
    return s;
}

void nt_st_writer_abort(nt_st_writer *w) {
    if (!w)
        return;
    if (w->fp)
        fclose(w->fp);
    remove(w->path);
    free(w->path);
    free(w);
}
