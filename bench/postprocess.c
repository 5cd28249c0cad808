/* bench/postprocess.c: the built-in post-processing elements, timed through
 * the real plugin (loaded from the built-in folder next to libinferd).
 *
 *   build/bench/postprocess [iterations]
 *
 * density_count on a 160x120 density map (a 640x480 image at stride 4)
 * holding 200 unit-mass Gaussian blobs of different widths (as a crowd's
 * heads at different distances), against the people-counting seed's
 * way of finding points: argsort the whole map and take the `count` largest
 * cells. Besides the time, each row says how many of the 200 true blob
 * centres got a point within one cell (the sort picks neighbouring cells of
 * the strongest blobs and misses the weaker ones). Then segment_defects on a
 * 640x480 mask with 40 scratches and 200 specks, with and without the mask
 * output. Each time is the fastest of 5 rounds of iterations/5 calls (the
 * machine may be busy). Prints a table.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inferd/config.h"
#include "inferd/registry.h"

enum { MAP_W = 160, MAP_H = 120, N_BLOBS = 200, STRIDE = 4, MASK_W = 640, MASK_H = 480 };

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, const inferd_error *err)
{
    fprintf(stderr, "postprocess bench: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

/* A small deterministic generator (no dependence on libc's rand). */
static unsigned long long rng_state = 0x9E3779B97F4A7C15ull;
static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static inferd_status keep_push(void *ctx, inferd_instance *from, size_t port, inferd_buffer *buf,
                               inferd_error *err)
{
    inferd_buffer_unref(buf);
    return INFERD_OK;
}

static inferd_instance *element(inferd_registry *reg, const char *component, const char *name,
                                const char *json)
{
    inferd_value *props = NULL;
    inferd_error err = {0};
    if (json && inferd_value_from_json(json, strlen(json), 0, &props, &err))
        die("props", &err);
    inferd_instance *inst = NULL;
    if (inferd_instance_create(reg, component, name, props, &inst, &err))
        die(component, &err);
    inferd_value_free(props);
    inferd_instance_set_push(inst, keep_push, NULL);
    return inst;
}

static inferd_buffer *plane_buffer(const float *data, int h, int w)
{
    int64_t shape[] = {1, 1, h, w};
    inferd_tensor *t = NULL;
    inferd_tensor **list = malloc(sizeof *list);
    if (!list || inferd_tensor_new(INFERD_DTYPE_FLOAT32, 4, shape, &t, NULL))
        die("tensor", NULL);
    memcpy(t->data, data, t->nbytes);
    list[0] = t;
    inferd_buffer *buf = inferd_buffer_new();
    if (!buf || inferd_buffer_set_tensors(buf, list, 1, NULL))
        die("buffer", NULL);
    return buf;
}

/* ---- the density map --------------------------------------------------------- */

typedef struct blob {
    double i, j; /* centre, in cells */
} blob;

/* 200 blobs on a jittered 20 x 10 grid (8 x 12 cells apart), each a Gaussian
 * of sigma 0.7 to 1.5 cells normalised to mass 1 (peak heights 0.07 to 0.3). */
static void make_density(float *m, blob *blobs)
{
    memset(m, 0, sizeof(float) * MAP_W * MAP_H);
    for (int b = 0; b < N_BLOBS; b++) {
        double ci = 6 + 12 * (b / 20) + (uniform() - 0.5) * 4;
        double cj = 4 + 8 * (b % 20) + (uniform() - 0.5) * 3;
        blobs[b] = (blob){ci, cj};
        double sigma = 0.7 + 0.8 * uniform(), w[11][11], total = 0;
        int i0 = (int)lround(ci) - 5, j0 = (int)lround(cj) - 5;
        for (int di = 0; di < 11; di++)
            for (int dj = 0; dj < 11; dj++) {
                double y = i0 + di - ci, x = j0 + dj - cj;
                total += w[di][dj] = exp(-(x * x + y * y) / (2 * sigma * sigma));
            }
        for (int di = 0; di < 11; di++)
            for (int dj = 0; dj < 11; dj++) {
                int i = i0 + di, j = j0 + dj;
                if (i >= 0 && i < MAP_H && j >= 0 && j < MAP_W)
                    m[i * MAP_W + j] += (float)(w[di][dj] / total);
            }
    }
}

/* How many true centres have a point within one cell (STRIDE pixels). */
static int found(const blob *blobs, const double *xy, size_t n)
{
    int hits = 0;
    for (int b = 0; b < N_BLOBS; b++) {
        double bx = STRIDE * (blobs[b].j + 0.5), by = STRIDE * (blobs[b].i + 0.5);
        for (size_t k = 0; k < n; k++)
            if (hypot(xy[2 * k] - bx, xy[2 * k + 1] - by) <= STRIDE) {
                hits++;
                break;
            }
    }
    return hits;
}

/* The seed's way: count = sum, then argsort the whole map and take the
 * count largest cells as the points. */
static const float *sort_values;
static int by_value(const void *a, const void *b)
{
    float x = sort_values[*(const int *)a], y = sort_values[*(const int *)b];
    return (x > y) - (x < y);
}

static size_t argsort_points(const float *m, int *idx, double *xy)
{
    double sum = 0;
    for (int i = 0; i < MAP_W * MAP_H; i++)
        sum += m[i];
    long count = sum > 0 ? (long)sum : 0;
    for (int i = 0; i < MAP_W * MAP_H; i++)
        idx[i] = i;
    sort_values = m;
    qsort(idx, MAP_W * MAP_H, sizeof *idx, by_value);
    for (long k = 0; k < count; k++) {
        int c = idx[MAP_W * MAP_H - 1 - k];
        xy[2 * k] = STRIDE * (c % MAP_W + 0.5);
        xy[2 * k + 1] = STRIDE * (c / MAP_W + 0.5);
    }
    return (size_t)count;
}

/* The points density_count attached. */
static size_t element_points(inferd_buffer *buf, const char *name, double *xy)
{
    inferd_meta meta;
    if (!inferd_buffer_find_meta(buf, name, "metadata/points", &meta))
        die("no metadata/points", NULL);
    const inferd_value *pts = inferd_value_object_get(meta.value, "points");
    size_t n = inferd_value_array_len(pts);
    for (size_t k = 0; k < n; k++) {
        const inferd_value *p = inferd_value_array_get(pts, k);
        xy[2 * k] = inferd_value_double_or(inferd_value_object_get(p, "x"), NAN);
        xy[2 * k + 1] = inferd_value_double_or(inferd_value_object_get(p, "y"), NAN);
    }
    return n;
}

static void row(const char *what, double ns, long iters, const char *size, const char *quality)
{
    printf("| %-44s | %9s | %9.1f | %10.0f | %-24s |\n", what, size, ns / (double)iters / 1e3,
           1e9 * (double)iters / ns, quality);
}

enum { ROUNDS = 5 };

/* The time of `iters` calls, from the fastest of ROUNDS rounds. */
static double time_process(inferd_instance *inst, inferd_buffer *buf, long iters)
{
    inferd_error err = {0};
    if (inferd_instance_process(inst, &buf, 1, &err)) /* warm up */
        die("process", &err);
    long per = iters / ROUNDS > 0 ? iters / ROUNDS : 1;
    double best = INFINITY;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < per; i++)
            if (inferd_instance_process(inst, &buf, 1, &err))
                die("process", &err);
        double t = now_ns() - t0;
        if (t < best)
            best = t;
    }
    return best * (double)iters / (double)per;
}

/* ---- the mask --------------------------------------------------------------------- */

/* 40 scratches (1-3 px wide lines, 20-120 px long, any angle, value 0.9) and
 * 200 one-pixel specks (under minArea) on a 0.05 background. */
static void make_mask(float *m)
{
    for (int i = 0; i < MASK_W * MASK_H; i++)
        m[i] = 0.05f;
    for (int s = 0; s < 40; s++) {
        double x = 20 + uniform() * (MASK_W - 40), y = 20 + uniform() * (MASK_H - 40);
        double a = uniform() * 6.283185307179586, len = 20 + uniform() * 100;
        int half = (int)(uniform() * 2); /* 0 or 1: 1 or 3 px wide */
        for (double t = 0; t < len; t += 0.5) {
            int px = (int)(x + t * cos(a)), py = (int)(y + t * sin(a));
            for (int dy = -half; dy <= half; dy++)
                for (int dx = -half; dx <= half; dx++) {
                    int xx = px + dx, yy = py + dy;
                    if (xx >= 0 && xx < MASK_W && yy >= 0 && yy < MASK_H)
                        m[yy * MASK_W + xx] = 0.9f;
                }
        }
    }
    for (int k = 0; k < 200; k++)
        m[(int)(uniform() * MASK_H) * MASK_W + (int)(uniform() * MASK_W)] = 0.8f;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 2000;
    if (iters < 1)
        iters = 1;
    inferd_log_configure("warn", NULL);
    inferd_error err = {0};
    inferd_registry *reg = NULL;
    if (inferd_registry_new(&reg, &err) || inferd_registry_load_builtins(reg, &err))
        die("loading the built-in plugins", &err);

    static float density[MAP_W * MAP_H];
    static blob blobs[N_BLOBS];
    static int idx[MAP_W * MAP_H];
    static double xy[2 * MAP_W * MAP_H];
    make_density(density, blobs);
    inferd_buffer *dbuf = plane_buffer(density, MAP_H, MAP_W);
    inferd_instance *t1 = element(reg, "density_count", "t1", NULL);
    inferd_instance *t2 = element(reg, "density_count", "t2", "{\"target\": \"T2\"}");

    printf("| %-44s | %9s | %9s | %10s | %-24s |\n", "what", "input", "us/call", "calls/s",
           "true peaks found");
    printf("|%s|%s|%s|%s|%s|\n", "----------------------------------------------",
           "-----------", "-----------", "------------", "--------------------------");
    char size[32], quality[64];
    snprintf(size, sizeof size, "%dx%d", MAP_W, MAP_H);

    double ns = time_process(t1, dbuf, iters);
    size_t n = element_points(dbuf, "t1", xy);
    snprintf(quality, sizeof quality, "%d of %d (%zu points)", found(blobs, xy, n), N_BLOBS, n);
    row("density_count T1 (local maxima, element)", ns, iters, size, quality);

    ns = time_process(t2, dbuf, iters);
    row("density_count T2 (count only, element)", ns, iters, size, "-");

    n = argsort_points(density, idx, xy); /* warm up */
    long per = iters / ROUNDS > 0 ? iters / ROUNDS : 1;
    double best = INFINITY;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < per; i++)
            n = argsort_points(density, idx, xy);
        double t = now_ns() - t0;
        if (t < best)
            best = t;
    }
    ns = best * (double)iters / (double)per;
    snprintf(quality, sizeof quality, "%d of %d (%zu points)", found(blobs, xy, n), N_BLOBS, n);
    row("whole-map argsort, top count (seed, bare C)", ns, iters, size, quality);

    static float mask[MASK_W * MASK_H];
    make_mask(mask);
    inferd_buffer *mbuf = plane_buffer(mask, MASK_H, MASK_W);
    inferd_instance *s8 = element(reg, "segment_defects", "s8", NULL);
    inferd_instance *s4 = element(reg, "segment_defects", "s4", "{\"connectivity\": \"4\"}");
    inferd_instance *sm = element(reg, "segment_defects", "sm", "{\"maskOutput\": true}");
    long miters = iters / 10 > 0 ? iters / 10 : 1;
    snprintf(size, sizeof size, "%dx%d", MASK_W, MASK_H);
    inferd_instance *segs[] = {s8, s4, sm};
    const char *names[] = {"segment_defects 8-connected", "segment_defects 4-connected",
                           "segment_defects 8-connected + maskOutput"};
    for (int k = 0; k < 3; k++) {
        ns = time_process(segs[k], mbuf, miters);
        inferd_meta meta;
        inferd_buffer_find_meta(mbuf, inferd_instance_name(segs[k]), "metadata/object", &meta);
        snprintf(quality, sizeof quality, "%lld objects",
                 (long long)inferd_value_int_or(inferd_value_object_get(meta.value, "count"), -1));
        row(names[k], ns, miters, size, quality);
    }

    inferd_instance_destroy(t1);
    inferd_instance_destroy(t2);
    inferd_instance_destroy(s8);
    inferd_instance_destroy(s4);
    inferd_instance_destroy(sm);
    inferd_buffer_unref(dbuf);
    inferd_buffer_unref(mbuf);
    inferd_registry_free(reg);
    return 0;
}
