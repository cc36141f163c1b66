/*
 * The client transform's fused kernel: RGB faces -> selected block-DCT channels in one pass.
 *
 * partialface.frequency explains the maths: channel (colour c, frequencies u, v) at pixel (p, q) is
 *     sum_k sum_l Wh[u][k][p] * Ww[v][l][q] * Y_c[p + k - 1][q + l - 1]
 * with Y_c the colour plane after the affine YCbCr map and zero padding. Eager PyTorch needs six
 * elementwise passes over the output for this; here every output row is produced from three input
 * rows and one row of intermediates held in L1, so each output value is written exactly once and the
 * transform runs at the speed the machine can write memory.
 *
 * This file has no dependency but Python.h (no torch, no numpy headers): tensors arrive through the
 * buffer protocol (torch CPU tensors as numpy views), which also lets this side check every size.
 * Python (partialface/frequency_native.py) validates shapes, dtypes, index ranges and contiguity;
 * the checks here only guard memory safety. Work is split over POSIX threads by (image, channel).
 * Hot loops are compiled twice (AVX2+FMA and baseline x86-64) and picked at load time, so a wheel
 * built on one machine runs on another.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__)
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MULTIVERSION
#endif

#define BLOCK 8
#define PER_COLOUR 64
#define MAX_THREADS 256

typedef struct {
    const void *x;              /* (B, 3, H, W) faces in [-1, 1] */
    void *out;                  /* (B, J, H, W) */
    const void *rows;           /* (8, 3, H) stencil weights along H, per vertical frequency u */
    const void *cols;           /* (8, 3, W) stencil weights along W, per horizontal frequency v */
    const int64_t *channels;    /* (B, J) or (1, J) indices into 0..191 */
    const void *scale;          /* (192,) divisor per channel, or NULL */
    double colour[3][4];        /* YCbCr rows: 3 RGB weights and an offset */
    Py_ssize_t b, h, w, j;
    int per_sample, is_double;
    Py_ssize_t items, chunk;    /* work items (image * J + output channel), taken `chunk` at a time */
    Py_ssize_t *next;           /* the next item nobody has taken (shared by the threads, atomic) */
} job_t;

/* The kernel for one element type; T is float or double. */
#define DEFINE_KERNEL(T, NAME)                                                                              \
    MULTIVERSION static void NAME##_colour(const job_t *job, const T *x, T *ycc) {                          \
        const Py_ssize_t h = job->h, w = job->w, pw = w + 2, plane = h * w;                                 \
        memset(ycc, 0, sizeof(T) * 3 * (h + 2) * pw);                                                       \
        for (int c = 0; c < 3; c++) {                                                                       \
            const T k0 = (T)job->colour[c][0], k1 = (T)job->colour[c][1], k2 = (T)job->colour[c][2];        \
            const T k3 = (T)job->colour[c][3];                                                              \
            for (Py_ssize_t p = 0; p < h; p++) {                                                            \
                const T *restrict r = x + p * w, *restrict g = r + plane, *restrict bl = g + plane;         \
                T *restrict dst = ycc + (c * (h + 2) + p + 1) * pw + 1;                                     \
                for (Py_ssize_t q = 0; q < w; q++) dst[q] = k0 * r[q] + k1 * g[q] + k2 * bl[q] + k3;       \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
    MULTIVERSION static void NAME##_channel(const job_t *job, const T *ycc, Py_ssize_t channel, T *row,     \
                                            T *restrict out) {                                              \
        const Py_ssize_t h = job->h, w = job->w, pw = w + 2;                                                \
        const Py_ssize_t colour = channel / PER_COLOUR, u = (channel % PER_COLOUR) / BLOCK, v = channel % BLOCK; \
        const T *wr = (const T *)job->rows + u * 3 * h;                                                     \
        const T *restrict c0 = (const T *)job->cols + v * 3 * w, *restrict c1 = c0 + w, *restrict c2 = c1 + w; \
        const T *divisor = job->scale ? (const T *)job->scale + channel : NULL;                             \
        const T *plane = ycc + colour * (h + 2) * pw;                                                       \
        for (Py_ssize_t p = 0; p < h; p++) {                                                                \
            const T a0 = wr[p], a1 = wr[h + p], a2 = wr[2 * h + p];                                         \
            const T *restrict y0 = plane + p * pw, *restrict y1 = y0 + pw, *restrict y2 = y1 + pw;          \
            T *restrict tmp = row;                                                                          \
            for (Py_ssize_t q = 0; q < pw; q++) tmp[q] = a0 * y0[q] + a1 * y1[q] + a2 * y2[q];              \
            T *restrict dst = out + p * w;                                                                  \
            for (Py_ssize_t q = 0; q < w; q++) dst[q] = c0[q] * tmp[q] + c1[q] * tmp[q + 1] + c2[q] * tmp[q + 2]; \
            if (divisor) { /* a division, not a product by the reciprocal: equal to dividing afterwards */  \
                const T d = *divisor;                                                                       \
                for (Py_ssize_t q = 0; q < w; q++) dst[q] /= d;                                             \
            }                                                                                               \
        }                                                                                                   \
    }                                                                                                       \
    static int NAME##_run(const job_t *job) {                                                               \
        const Py_ssize_t h = job->h, w = job->w;                                                            \
        T *ycc = (T *)malloc(sizeof(T) * (3 * (h + 2) * (w + 2) + w + 2));                                  \
        if (!ycc) return -1;                                                                                \
        T *row = ycc + 3 * (h + 2) * (w + 2);                                                               \
        Py_ssize_t image = -1, start;                                                                       \
        while ((start = __atomic_fetch_add(job->next, job->chunk, __ATOMIC_RELAXED)) < job->items) {        \
            const Py_ssize_t stop = start + job->chunk < job->items ? start + job->chunk : job->items;      \
            for (Py_ssize_t item = start; item < stop; item++) {                                            \
                const Py_ssize_t b = item / job->j, k = item % job->j;                                      \
                if (b != image) {                                                                           \
                    NAME##_colour(job, (const T *)job->x + b * 3 * h * w, ycc);                             \
                    image = b;                                                                              \
                }                                                                                           \
                const int64_t channel = job->channels[(job->per_sample ? b : 0) * job->j + k];              \
                NAME##_channel(job, ycc, (Py_ssize_t)channel, row, (T *)job->out + item * h * w);           \
            }                                                                                               \
        }                                                                                                   \
        free(ycc);                                                                                          \
        return 0;                                                                                           \
    }

DEFINE_KERNEL(float, f32)
DEFINE_KERNEL(double, f64)

static void *run_job(void *arg) {
    job_t *job = (job_t *)arg;
    int status = job->is_double ? f64_run(job) : f32_run(job);
    return status ? (void *)job : NULL;
}

/* Borrow a C-contiguous buffer of exactly `expected` bytes; returns 0 on success. */
static int borrow(PyObject *obj, Py_buffer *view, Py_ssize_t expected, int writable, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0) return -1;
    if (view->len != expected) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd bytes, expected %zd", name, view->len, expected);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(forward_doc,
    "forward(x, out, rows, cols, channels, scale, colour, threads)\n\n"
    "x (B,3,H,W), out (B,J,H,W), rows (8,3,H), cols (8,3,W), scale (192,) divisors or None: one float dtype;\n"
    "channels (B,J) or (1,J) int64; colour: 12 floats (3 rows of RGB weights and offset).");

static PyObject *forward(PyObject *self, PyObject *args) {
    PyObject *x_obj, *out_obj, *rows_obj, *cols_obj, *chan_obj, *scale_obj, *colour_obj;
    Py_ssize_t b, h, w, j, chan_rows, itemsize;
    int threads;
    if (!PyArg_ParseTuple(args, "OOOOOOOnnnnnni", &x_obj, &out_obj, &rows_obj, &cols_obj, &chan_obj, &scale_obj,
                          &colour_obj, &b, &h, &w, &j, &chan_rows, &itemsize, &threads))
        return NULL;
    if (b < 1 || h < 1 || w < 1 || j < 1 || (chan_rows != 1 && chan_rows != b) || (itemsize != 4 && itemsize != 8)) {
        PyErr_SetString(PyExc_ValueError, "invalid sizes");
        return NULL;
    }
    job_t base;
    memset(&base, 0, sizeof(base));
    PyObject *colour = PySequence_Fast(colour_obj, "colour must be a sequence of 12 floats");
    if (!colour) return NULL;
    if (PySequence_Fast_GET_SIZE(colour) != 12) {
        Py_DECREF(colour);
        PyErr_SetString(PyExc_ValueError, "colour must hold 12 floats");
        return NULL;
    }
    for (int i = 0; i < 12; i++) base.colour[i / 4][i % 4] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(colour, i));
    Py_DECREF(colour);
    if (PyErr_Occurred()) return NULL;

    Py_buffer views[6];
    int held = 0;
    PyObject *result = NULL;
    if (borrow(x_obj, &views[held], b * 3 * h * w * itemsize, 0, "x") < 0) goto done;
    held++;
    if (borrow(out_obj, &views[held], b * j * h * w * itemsize, 1, "out") < 0) goto done;
    held++;
    if (borrow(rows_obj, &views[held], BLOCK * 3 * h * itemsize, 0, "rows") < 0) goto done;
    held++;
    if (borrow(cols_obj, &views[held], BLOCK * 3 * w * itemsize, 0, "cols") < 0) goto done;
    held++;
    if (borrow(chan_obj, &views[held], chan_rows * j * (Py_ssize_t)sizeof(int64_t), 0, "channels") < 0) goto done;
    held++;
    const int64_t *channels = (const int64_t *)views[4].buf;
    for (Py_ssize_t i = 0; i < chan_rows * j; i++) {
        if (channels[i] < 0 || channels[i] >= 3 * PER_COLOUR) {
            PyErr_SetString(PyExc_ValueError, "channel index out of 0..191");
            goto done;
        }
    }
    if (scale_obj != Py_None) {
        if (borrow(scale_obj, &views[held], 3 * PER_COLOUR * itemsize, 0, "scale") < 0) goto done;
        base.scale = views[held].buf;
        held++;
    }
    base.x = views[0].buf;
    base.out = views[1].buf;
    base.rows = views[2].buf;
    base.cols = views[3].buf;
    base.channels = channels;
    base.b = b, base.h = h, base.w = w, base.j = j;
    base.per_sample = chan_rows == b && b > 1;
    base.is_double = itemsize == 8;

    /* Threads take small chunks from a shared counter rather than fixed shares: on a machine shared
     * with other work a thread that loses its core for a while no longer holds up the whole call. */
    Py_ssize_t items = b * j, next = 0;
    if (threads < 1) threads = 1;
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > items) threads = (int)items;
    base.items = items;
    base.chunk = threads == 1 ? items : (j < items / (4 * threads) ? j : (items / (4 * threads) > 0 ? items / (4 * threads) : 1));
    base.next = &next;
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    for (int t = 1; t < threads; t++) started[t] = pthread_create(&ids[t], NULL, run_job, &base) == 0;
    if (run_job(&base)) failed = 1;  /* threads that could not start leave their chunks to the others */
    for (int t = 1; t < threads; t++) {
        void *status = NULL;
        if (started[t] && (pthread_join(ids[t], &status) != 0 || status != NULL)) failed = 1;
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    return result;
}

static PyMethodDef methods[] = {
    {"forward", forward, METH_VARARGS, forward_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_stencil", "Fused kernel of the PartialFace client transform (see frequency.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__stencil(void) { return PyModule_Create(&module); }
