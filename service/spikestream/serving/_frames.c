/* spikestream.serving._frames: output frames encoded in C.
 *
 * The I/O thread encodes every frame the service publishes, 5,000 a second for the seed
 * network at one tick per frame, and the frames of a tick go out one after another: a
 * probe's frame waits for the encoding of those before it. The client codec's encoders
 * (spikestream_client.codec.frames) build a header object, a dict and several small numpy
 * arrays per frame, about 8 us of Python for a small spike frame. These functions write
 * the same msgpack bytes directly: the header keys, the spikes in the smaller of the two
 * forms, the float32 values. The parts that never change for a probe (its net and probe
 * names, its value shape) arrive packed once, by msgpack itself.
 *
 * The bytes are those of encode_spikes and encode_values for the same header and array,
 * byte for byte (tests/serving/test_framecodec.py checks it with hypothesis), so clients
 * see no difference: it is the same frame, sooner.
 *
 * msgpack forms used (the choices msgpack-python's Packer makes with use_bin_type=True):
 * a non-negative int in the smallest of positive fixint, uint8, uint16, uint32, uint64;
 * a float as float64; bytes as bin8, bin16 or bin32; the constant keys as fixstr.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

/* The write position in a bytes object allocated at the size computed beforehand. Every
 * write is bounded by end: were a size computed wrongly (a bug here), the write stops
 * and finish() reports it, instead of writing past the object. */
typedef struct {
    unsigned char *p, *end;
    int overflow;
} Out;

static int room(Out *o, size_t n)
{
    if ((size_t)(o->end - o->p) < n) {
        o->overflow = 1;
        return 0;
    }
    return 1;
}

static void put(Out *o, const void *src, size_t n)
{
    if (!room(o, n))
        return;
    memcpy(o->p, src, n);
    o->p += n;
}

static void put_byte(Out *o, unsigned char b)
{
    if (room(o, 1))
        *o->p++ = b;
}

static void put_be(Out *o, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        put_byte(o, (unsigned char)(v >> (8 * i)));
}

/* A constant key: fixstr (every key here is shorter than 32 bytes). */
#define KEY(o, literal) put_key((o), (literal), sizeof(literal) - 1)
static void put_key(Out *o, const char *s, size_t n)
{
    put_byte(o, (unsigned char)(0xa0 | n));
    put(o, s, n);
}

static size_t uint_size(uint64_t v)
{
    if (v <= 0x7f)
        return 1;
    if (v <= 0xff)
        return 2;
    if (v <= 0xffff)
        return 3;
    if (v <= 0xffffffffULL)
        return 5;
    return 9;
}

static void put_uint(Out *o, uint64_t v)
{
    if (v <= 0x7f) {
        put_byte(o, (unsigned char)v);
    } else if (v <= 0xff) {
        put_byte(o, 0xcc);
        put_be(o, v, 1);
    } else if (v <= 0xffff) {
        put_byte(o, 0xcd);
        put_be(o, v, 2);
    } else if (v <= 0xffffffffULL) {
        put_byte(o, 0xce);
        put_be(o, v, 4);
    } else {
        put_byte(o, 0xcf);
        put_be(o, v, 8);
    }
}

static void put_double(Out *o, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    put_byte(o, 0xcb);
    put_be(o, bits, 8);
}

static size_t bin_header_size(uint64_t n) { return n <= 0xff ? 2 : n <= 0xffff ? 3 : 5; }

static void put_bin_header(Out *o, uint64_t n)
{
    if (n <= 0xff) {
        put_byte(o, 0xc4);
        put_be(o, n, 1);
    } else if (n <= 0xffff) {
        put_byte(o, 0xc5);
        put_be(o, n, 2);
    } else {
        put_byte(o, 0xc6);
        put_be(o, n, 4);
    }
}

/* The sizes above and the writes below must agree: a mismatch is a bug here, reported
 * rather than sent (the bytes object was allocated at the computed size). */
static PyObject *finish(PyObject *result, const Out *o)
{
    if (o->overflow || o->p != o->end) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_SystemError, "frame size computed wrongly");
        return NULL;
    }
    return result;
}

static void put_map_header(Out *o, size_t entries)
{
    if (entries <= 15)
        put_byte(o, (unsigned char)(0x80 | entries));
    else {
        put_byte(o, 0xde);
        put_be(o, entries, 2);
    }
}

/* The header fields each frame packs itself. */
typedef struct {
    uint64_t seq, tick, ticks, dropped;
    double dt, t, wall, late_max;
} Fields;

/* Bytes of the header keys from "seq" to "dropped", keys included. */
static size_t fields_size(const Fields *f)
{
    return (1 + 3) + uint_size(f->seq) + (1 + 4) + uint_size(f->tick) + (1 + 5) +
           uint_size(f->ticks) + (1 + 2) + 9 + (1 + 1) + 9 + (1 + 4) + 9 + (1 + 8) + 9 +
           (1 + 7) + uint_size(f->dropped);
}

static void put_fields(Out *o, const Fields *f)
{
    KEY(o, "seq");
    put_uint(o, f->seq);
    KEY(o, "tick");
    put_uint(o, f->tick);
    KEY(o, "ticks");
    put_uint(o, f->ticks);
    KEY(o, "dt");
    put_double(o, f->dt);
    KEY(o, "t");
    put_double(o, f->t);
    KEY(o, "wall");
    put_double(o, f->wall);
    KEY(o, "late_max");
    put_double(o, f->late_max);
    KEY(o, "dropped");
    put_uint(o, f->dropped);
}

/* An int field, as the codec packs it: any int or numpy integer (which the codec turns
 * into an int), never a bool (which it would pack as true or false). */
static int as_u64(PyObject *o, uint64_t *out, const char *what)
{
    PyObject *index = PyBool_Check(o) ? NULL : PyNumber_Index(o);
    if (index == NULL) {
        /* A bool or a type with no __index__ is worded; what an __index__ itself raised
         * (MemoryError, KeyboardInterrupt) goes on as it came. */
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_TypeError))
            return -1;
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be an int; got %.80s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(index);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be an int in 0..2**64-1; got %R", what, index);
        Py_DECREF(index);
        return -1;
    }
    Py_DECREF(index);
    *out = (uint64_t)v;
    return 0;
}

/* A float field, written as float64 as the codec packs a float or a numpy float; an int
 * is refused (the codec would pack it as an int). */
static int as_f64(PyObject *o, double *out, const char *what)
{
    double v = PyLong_Check(o) ? -1.0 : PyFloat_AsDouble(o);
    if (PyLong_Check(o) || (v == -1.0 && PyErr_Occurred())) {
        if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_TypeError))
            return -1; /* what a __float__ raised, as it came */
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a float; got %.80s", what, Py_TYPE(o)->tp_name);
        return -1;
    }
    *out = v;
    return 0;
}

/* args[1..8]: seq, tick, ticks, dt, t, wall, late_max, dropped. */
static int read_fields(PyObject *const *args, Fields *f)
{
    return as_u64(args[1], &f->seq, "seq") < 0 || as_u64(args[2], &f->tick, "tick") < 0 ||
                   as_u64(args[3], &f->ticks, "ticks") < 0 || as_f64(args[4], &f->dt, "dt") < 0 ||
                   as_f64(args[5], &f->t, "t") < 0 || as_f64(args[6], &f->wall, "wall") < 0 ||
                   as_f64(args[7], &f->late_max, "late_max") < 0 ||
                   as_u64(args[8], &f->dropped, "dropped") < 0
               ? -1
               : 0;
}

/* A C-contiguous buffer of the given item size and format character, at least 1-D.
 * *swap is set when its items are big-endian ('>' or '!', or native on a big-endian
 * host): the wire is little-endian. */
static int get_array(PyObject *o, Py_buffer *view, Py_ssize_t itemsize, char format,
                     const char *what, int *swap)
{
    if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *fmt = view->format ? view->format : "B";
    int big = !PY_LITTLE_ENDIAN;
    if (*fmt == '<' || *fmt == '>' || *fmt == '!' || *fmt == '=' || *fmt == '@') {
        if (*fmt == '<')
            big = 0;
        else if (*fmt == '>' || *fmt == '!')
            big = 1;
        fmt++;
    }
    *swap = big && itemsize > 1;
    if (view->itemsize != itemsize || fmt[0] != format || fmt[1] != '\0' || view->ndim < 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s must be a C-contiguous array of '%c' items with a tick axis; got "
                     "format '%s', item size %zd, %d dimensions",
                     what, format, view->format ? view->format : "B", view->itemsize,
                     view->ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The frame's rows: all of the array's (exact), or its first ticks (a frame buffer, whose
 * rows past ticks are not the frame's). */
static int check_ticks(const Py_buffer *view, const Fields *f, const char *what, int prefix)
{
    if (prefix ? (uint64_t)view->shape[0] < f->ticks : (uint64_t)view->shape[0] != f->ticks) {
        PyErr_Format(PyExc_ValueError, "ticks is %llu but %s has %zd rows",
                     (unsigned long long)f->ticks, what, view->shape[0]);
        return -1;
    }
    return 0;
}

/* The bytes of the frame's rows: the first ticks rows of a C-contiguous array. */
static size_t rows_bytes(const Py_buffer *view, uint64_t ticks)
{
    return view->shape[0] == 0 ? 0 : (size_t)(view->len / view->shape[0]) * (size_t)ticks;
}

PyDoc_STRVAR(encode_values_doc,
"encode_values(head, seq, tick, ticks, dt, t, wall, late_max, dropped, tail, data)\n--\n\n"
"A value frame, byte for byte spikestream_client.codec.encode_values: head is the packed\n"
"'v', 'net' and 'probe' entries, tail the packed 'kind', 'shape' and 'data' key, data a\n"
"C-contiguous float32 array of shape (ticks, *shape).");

static PyObject *values(PyObject *const *args, Py_ssize_t nargs, int prefix)
{
    if (nargs != 11) {
        PyErr_Format(PyExc_TypeError, "%s takes 11 arguments; got %zd",
                     prefix ? "encode_values_rows" : "encode_values", nargs);
        return NULL;
    }
    if (!PyBytes_Check(args[0]) || !PyBytes_Check(args[9])) {
        PyErr_SetString(PyExc_TypeError, "head and tail must be bytes");
        return NULL;
    }
    Fields f;
    if (read_fields(args, &f) < 0)
        return NULL;
    Py_buffer data;
    int swap;
    if (get_array(args[10], &data, 4, 'f', "data", &swap) < 0)
        return NULL;
    PyObject *result = NULL;
    if (check_ticks(&data, &f, "data", prefix) < 0)
        goto done;
    size_t head = (size_t)PyBytes_GET_SIZE(args[0]), tail = (size_t)PyBytes_GET_SIZE(args[9]);
    size_t bytes = prefix ? rows_bytes(&data, f.ticks) : (size_t)data.len;
    if (bytes > 0xffffffffULL) { /* msgpack's bin32 holds at most 4 GiB - 1 */
        PyErr_Format(PyExc_ValueError, "data of %zu bytes does not fit a msgpack bin", bytes);
        goto done;
    }
    uint64_t total = 1 + (uint64_t)head + fields_size(&f) + tail + bin_header_size(bytes) + bytes;
    if (total > (uint64_t)PY_SSIZE_T_MAX) { /* a 32-bit build */
        PyErr_NoMemory();
        goto done;
    }
    size_t size = (size_t)total;
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (result == NULL)
        goto done;
    Out o = {(unsigned char *)PyBytes_AS_STRING(result),
             (unsigned char *)PyBytes_AS_STRING(result) + size, 0};
    put_map_header(&o, 14); /* 11 header keys, kind, shape, data */
    put(&o, PyBytes_AS_STRING(args[0]), head);
    put_fields(&o, &f);
    put(&o, PyBytes_AS_STRING(args[9]), tail);
    put_bin_header(&o, bytes);
    /* float32 little-endian on the wire */
    if (!swap) {
        put(&o, data.buf, bytes);
    } else {
        for (size_t i = 0; i < bytes; i += 4)
            for (int b = 3; b >= 0; b--)
                put_byte(&o, ((const unsigned char *)data.buf)[i + b]);
    }
    result = finish(result, &o);
done:
    PyBuffer_Release(&data);
    return result;
}

static PyObject *py_encode_values(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return values(args, nargs, 0);
}

PyDoc_STRVAR(encode_values_rows_doc,
"encode_values_rows(head, seq, tick, ticks, dt, t, wall, late_max, dropped, tail, data)\n"
"--\n\n"
"encode_values(..., data[:ticks]) for a frame buffer: data is a C-contiguous float32 array\n"
"of shape (rows, *shape) with rows >= ticks; its first ticks rows are the frame's.");

static PyObject *py_encode_values_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return values(args, nargs, 1);
}

/* 1 in the low bit of each byte of the 8 cells at p that is not 0, 0 elsewhere: the
 * shifts fold each byte's bits into its low bit (a bool array holds 0 and 1, but the
 * codec counts any nonzero byte as a spike, as numpy does). */
static inline uint64_t nonzero_lanes(const unsigned char *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    w |= w >> 4;
    w |= w >> 2;
    w |= w >> 1;
    return w & 0x0101010101010101ULL;
}

/* np.count_nonzero over n cells, 8 at a time: each byte of acc counts its lane's spikes
 * for up to 255 words; the bytes are then added in pairs into 16-bit lanes (at most 510
 * each) and the multiply sums those four into the top 16 bits (at most 2040). */
static uint64_t count_nonzero(const unsigned char *s, size_t n)
{
    uint64_t k = 0;
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t acc = 0;
        size_t stop = i + 8 * 255 < n ? i + 8 * 255 : n;
        for (; i + 8 <= stop; i += 8)
            acc += nonzero_lanes(s + i);
        uint64_t pairs = (acc & 0x00ff00ff00ff00ffULL) + ((acc >> 8) & 0x00ff00ff00ff00ffULL);
        k += (pairs * 0x0001000100010001ULL) >> 48;
    }
    for (; i < n; i++)
        k += s[i] != 0;
    return k;
}

/* np.packbits(cells, bitorder="little") into out ((n + 7) / 8 bytes): 8 cells to a byte
 * at a time where cell 0 is the word's low byte (a little-endian host), the multiply
 * gathering each byte's low bit into the top byte in order. */
static void pack_bits(const unsigned char *s, size_t n, unsigned char *out)
{
    size_t i = 0;
#if PY_LITTLE_ENDIAN
    for (; i + 8 <= n; i += 8)
        out[i >> 3] = (unsigned char)((nonzero_lanes(s + i) * 0x0102040810204080ULL) >> 56);
#endif
    if (i < n)
        memset(out + (i >> 3), 0, (n + 7) / 8 - (i >> 3));
    for (; i < n; i++)
        if (s[i])
            out[i >> 3] |= (unsigned char)(1u << (i & 7));
}

PyDoc_STRVAR(encode_spikes_doc,
"encode_spikes(head, seq, tick, ticks, dt, t, wall, late_max, dropped, spikes)\n--\n\n"
"A spike frame, byte for byte spikestream_client.codec.encode_spikes: head is the packed\n"
"'v', 'net' and 'probe' entries, spikes a C-contiguous bool array of shape (ticks, n).\n"
"The smaller form wins: indices (u2 when n and ticks fit, else u4) or the bitmask, which\n"
"takes ties.");

static PyObject *spikes(PyObject *const *args, Py_ssize_t nargs, int prefix)
{
    if (nargs != 10) {
        PyErr_Format(PyExc_TypeError, "%s takes 10 arguments; got %zd",
                     prefix ? "encode_spikes_rows" : "encode_spikes", nargs);
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "head must be bytes");
        return NULL;
    }
    Fields f;
    if (read_fields(args, &f) < 0)
        return NULL;
    Py_buffer view;
    int swap; /* bool items have no byte order */
    if (get_array(args[9], &view, 1, '?', "spikes", &swap) < 0)
        return NULL;
    PyObject *result = NULL;
    if (view.ndim != 2) {
        PyErr_Format(PyExc_ValueError, "spikes must be 2-D (ticks, n); got %d dimensions",
                     view.ndim);
        goto done;
    }
    if (check_ticks(&view, &f, "spikes", prefix) < 0)
        goto done;
    const unsigned char *s = view.buf;
    /* Sizes in 64 bits, checked against what a bytes object can hold, so that a 32-bit
     * build cannot wrap them. cells is (a prefix of) the buffer's length, which fits. */
    size_t ticks = (size_t)f.ticks, n = (size_t)view.shape[1];
    size_t cells = prefix ? rows_bytes(&view, f.ticks) : (size_t)view.len;
    uint64_t k = count_nonzero(s, cells);
    uint64_t itemsize = (n <= 65535 && ticks <= 65535) ? 2 : 4;
    uint64_t bits = ((uint64_t)cells + 7) / 8;
    int idx = 2 * k * itemsize < bits;
    uint64_t bin = idx ? k * itemsize : bits;
    if (bin > 0xffffffffULL) {
        PyErr_SetString(PyExc_ValueError, "spikes do not fit a msgpack bin (4 GiB - 1)");
        goto done;
    }
    uint64_t head = (uint64_t)PyBytes_GET_SIZE(args[0]);
    /* The map header: map16 for 17 entries, fixmap for 15. */
    uint64_t total = (idx ? 3 : 1) + head + fields_size(&f) + (1 + 4) + (1 + 6) + (1 + 1) +
                     uint_size(n) + (1 + 3);
    if (idx) /* "enc": "idx", "dtype": "u2", "off": ..., "idx": ... */
        total += (1 + 3) + (1 + 5) + (1 + 2) + 2 * ((1 + 3) + bin_header_size(bin) + bin);
    else /* "enc": "bits", "bits": ... */
        total += (1 + 4) + (1 + 4) + bin_header_size(bin) + bin;
    if (total > (uint64_t)PY_SSIZE_T_MAX) {
        PyErr_NoMemory();
        goto done;
    }
    size_t size = (size_t)total;
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (result == NULL)
        goto done;
    Out o = {(unsigned char *)PyBytes_AS_STRING(result),
             (unsigned char *)PyBytes_AS_STRING(result) + size, 0};
    put_map_header(&o, idx ? 17 : 15); /* 11 header keys, kind, n, enc, then 3 or 1 */
    put(&o, PyBytes_AS_STRING(args[0]), head);
    put_fields(&o, &f);
    KEY(&o, "kind");
    KEY(&o, "spikes");
    KEY(&o, "n");
    put_uint(&o, n);
    KEY(&o, "enc");
    if (idx) {
        KEY(&o, "idx");
        KEY(&o, "dtype");
        if (itemsize == 2)
            KEY(&o, "u2");
        else
            KEY(&o, "u4");
        /* Offsets, then neurons, in row-major order, little-endian: both filled in one
         * pass over the cells, which skips 8 spikeless cells at a time. */
        KEY(&o, "off");
        put_bin_header(&o, bin);
        unsigned char *off = o.p;
        if (!room(&o, (size_t)bin))
            goto written;
        o.p += bin;
        KEY(&o, "idx");
        put_bin_header(&o, bin);
        unsigned char *neuron = o.p;
        if (!room(&o, (size_t)bin))
            goto written;
        o.p += bin;
        size_t r = 0, row_end = n; /* the row of cell i, and where it ends */
        uint64_t found = 0;
        for (size_t i = 0; i < cells;) {
            if (i + 8 <= cells && nonzero_lanes(s + i) == 0) {
                i += 8;
                continue;
            }
            size_t end = i + 8 < cells ? i + 8 : cells;
            for (; i < end; i++) {
                if (!s[i])
                    continue;
                while (i >= row_end) { /* n > 0 here: a cell lies in a row */
                    r++;
                    row_end += n;
                }
                size_t c = i - (row_end - n);
                if (found++ == k) { /* more than counted: a bug here, never a wild write */
                    o.overflow = 1;
                    goto written;
                }
                for (size_t b = 0; b < itemsize; b++) {
                    *off++ = (unsigned char)(r >> (8 * b));
                    *neuron++ = (unsigned char)(c >> (8 * b));
                }
            }
        }
    } else {
        KEY(&o, "bits");
        KEY(&o, "bits");
        put_bin_header(&o, bin);
        /* np.packbits(..., bitorder="little") over the flat matrix: cell i is bit i % 8
         * of byte i // 8, the last byte zero-padded. */
        if (room(&o, (size_t)bits)) {
            pack_bits(s, cells, o.p);
            o.p += bits;
        }
    }
written:
    result = finish(result, &o);
done:
    PyBuffer_Release(&view);
    return result;
}

static PyObject *py_encode_spikes(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return spikes(args, nargs, 0);
}

PyDoc_STRVAR(encode_spikes_rows_doc,
"encode_spikes_rows(head, seq, tick, ticks, dt, t, wall, late_max, dropped, spikes)\n--\n\n"
"encode_spikes(..., spikes[:ticks]) for a frame buffer: spikes is a C-contiguous bool\n"
"array of shape (rows, n) with rows >= ticks; its first ticks rows are the frame's.");

static PyObject *py_encode_spikes_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    return spikes(args, nargs, 1);
}

static PyMethodDef methods[] = {
    {"encode_values", (PyCFunction)(void (*)(void))py_encode_values, METH_FASTCALL,
     encode_values_doc},
    {"encode_spikes", (PyCFunction)(void (*)(void))py_encode_spikes, METH_FASTCALL,
     encode_spikes_doc},
    {"encode_values_rows", (PyCFunction)(void (*)(void))py_encode_values_rows, METH_FASTCALL,
     encode_values_rows_doc},
    {"encode_spikes_rows", (PyCFunction)(void (*)(void))py_encode_spikes_rows, METH_FASTCALL,
     encode_spikes_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_frames",
    "Output frames encoded in C (see spikestream.serving.framecodec).", -1, methods,
};

PyMODINIT_FUNC PyInit__frames(void) { return PyModule_Create(&module); }
