/* Smoke test of the default models (models/generate.py) through the real
 * ONNX Runtime C API, on the synthetic images of scripts/gen_images.py:
 *
 *   test_models MODELS_DIR DATA_DIR
 *
 * dot_density        the density sum is the true count within 10% (0 +- 0.5
 *                    for no dots); every dot has a density peak within its
 *                    radius + 3 px; as many peaks as dots where dots are sparse.
 * colour_classifier  the argmax is the true dominant colour; rows sum to 1.
 * scratch_segmenter  mask > 0.5 has as many 8-connected regions (of >= 10 px)
 *                    as there are scratches, each on a true scratch.
 * errors             a missing model file and an input of the wrong rank are
 *                    ONNX Runtime errors, not crashes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "model_helpers.h"

static const char *g_models_dir;
static const char *g_data_dir;

typedef struct fixture {
    mh_ort ort;
    OrtSession *dots, *colours, *scratches;
    mh_truth truth;
    char labels[MH_MAX_LABELS][32];
    int nlabels;
} fixture;

static int setup(void **state)
{
    char msg[MH_MSG];
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    *state = f;
    if (mh_ort_init(&f->ort, 2, msg, sizeof msg) ||
        mh_session_open(&f->ort, g_models_dir, MH_DOT_MODEL, &f->dots, msg, sizeof msg) ||
        mh_session_open(&f->ort, g_models_dir, MH_COLOUR_MODEL, &f->colours, msg, sizeof msg) ||
        mh_session_open(&f->ort, g_models_dir, MH_SCRATCH_MODEL, &f->scratches, msg,
                        sizeof msg) ||
        (f->nlabels = mh_read_labels(g_models_dir, MH_COLOUR_LABELS, f->labels, MH_MAX_LABELS,
                                     msg, sizeof msg)) < 0 ||
        mh_truth_load(g_data_dir, &f->truth, msg, sizeof msg)) {
        fprintf(stderr, "setup: %s\n", msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f == NULL)
        return 0;
    if (f->ort.api) {
        if (f->dots)
            f->ort.api->ReleaseSession(f->dots);
        if (f->colours)
            f->ort.api->ReleaseSession(f->colours);
        if (f->scratches)
            f->ort.api->ReleaseSession(f->scratches);
    }
    mh_ort_close(&f->ort);
    mh_truth_free(&f->truth);
    free(f);
    return 0;
}

/* Decodes an image of the data dir and runs a model on it. */
static void run_on_image(fixture *f, OrtSession *session, const mh_item *item,
                         const char *output, mh_tensor *out)
{
    char msg[MH_MSG];
    float *x = NULL;
    uint32_t w = 0, h = 0;
    if (mh_load_image(g_data_dir, item->file, &x, &w, &h, msg, sizeof msg))
        fail_msg("%s", msg);
    if ((int)w != item->width || (int)h != item->height) {
        free(x);
        fail_msg("%s: decoded %ux%u, truth says %dx%d", item->file, w, h, item->width,
                 item->height);
    }
    int64_t shape[4] = {1, 3, h, w};
    int rc = mh_run(&f->ort, session, "image", x, shape, 4, output, out, msg, sizeof msg);
    free(x);
    if (rc)
        fail_msg("%s: %s", item->file, msg);
}

static void test_dot_density(void **state)
{
    fixture *f = *state;
    int bad = 0;
    char first[MH_MSG] = "";
    for (size_t i = 0; i < f->truth.ndots; i++) {
        const mh_item *it = &f->truth.dots[i];
        mh_tensor d;
        mh_dot_eval ev;
        char msg[MH_MSG];
        run_on_image(f, f->dots, it, "density", &d);
        int rc = mh_eval_dots(&d, it, &ev, msg, sizeof msg);
        mh_tensor_free(&d);
        if (rc)
            fail_msg("%s", msg);
        double tol = it->count == 0 ? 0.5 : 0.10 * it->count;
        bool ok = fabs(ev.sum - it->count) <= tol && ev.missed == 0 &&
                  (!ev.sparse || ev.peaks == (size_t)it->count);
        print_message("%-18s %4dx%-4d dots %3d  sum %8.3f (err %+6.2f%%)  peaks %3zu%s  "
                      "missed %d  worst peak offset r%+.2f px  %s\n",
                      it->file, it->width, it->height, it->count, ev.sum,
                      it->count ? 100.0 * (ev.sum - it->count) / it->count : 0.0, ev.peaks,
                      ev.sparse ? "" : " (dense)", ev.missed, ev.worst, ok ? "ok" : "FAIL");
        if (!ok && bad++ == 0)
            snprintf(first, sizeof first,
                     "%s: %d dots, density sum %.3f (tolerance %.2f), %zu peaks, %d dots without "
                     "a peak", it->file, it->count, ev.sum, tol, ev.peaks, ev.missed);
    }
    if (bad)
        fail_msg("%d of %zu dot images failed; first: %s", bad, f->truth.ndots, first);
}

static void test_colour_classifier(void **state)
{
    fixture *f = *state;
    int bad = 0;
    char first[MH_MSG] = "";
    assert_int_equal(f->nlabels, 8);
    for (size_t i = 0; i < f->truth.ncolours; i++) {
        const mh_item *it = &f->truth.colours[i];
        mh_tensor p;
        mh_colour_eval ev;
        char msg[MH_MSG];
        run_on_image(f, f->colours, it, "probabilities", &p);
        int rc = mh_eval_colour(&p, f->nlabels, it, &ev, msg, sizeof msg);
        mh_tensor_free(&p);
        if (rc)
            fail_msg("%s", msg);
        bool ok = strcmp(f->labels[ev.best], it->label) == 0 && fabsf(ev.sum - 1.0f) < 1e-3f;
        print_message("%-22s truth %-8s predicted %-8s p %.3f (true share %.3f)  row sum %.5f  %s\n",
                      it->file, it->label, f->labels[ev.best], (double)ev.prob, it->fraction,
                      (double)ev.sum, ok ? "ok" : "FAIL");
        if (!ok && bad++ == 0)
            snprintf(first, sizeof first, "%s: truth %s, predicted %s (p %.3f), row sum %.5f",
                     it->file, it->label, f->labels[ev.best], (double)ev.prob, (double)ev.sum);
    }
    if (bad)
        fail_msg("%d of %zu colour images failed; first: %s", bad, f->truth.ncolours, first);
}

static void test_scratch_segmenter(void **state)
{
    fixture *f = *state;
    int bad = 0;
    char first[MH_MSG] = "";
    for (size_t i = 0; i < f->truth.nscratches; i++) {
        const mh_item *it = &f->truth.scratches[i];
        mh_tensor m;
        mh_scratch_eval ev;
        char msg[MH_MSG];
        run_on_image(f, f->scratches, it, "mask", &m);
        int rc = mh_eval_scratches(&m, it, &ev, msg, sizeof msg);
        mh_tensor_free(&m);
        if (rc)
            fail_msg("%s", msg);
        bool ok = ev.components == it->count && ev.stray == 0 && ev.unfound == 0;
        print_message("%-20s %4dx%-4d scratches %d  regions %d (+%d tiny)  stray %d  unfound %d"
                      "  %s\n", it->file, it->width, it->height, it->count, ev.components,
                      ev.small, ev.stray, ev.unfound, ok ? "ok" : "FAIL");
        if (!ok && bad++ == 0)
            snprintf(first, sizeof first,
                     "%s: %d scratches, %d regions, %d off any scratch, %d scratches not found",
                     it->file, it->count, ev.components, ev.stray, ev.unfound);
    }
    if (bad)
        fail_msg("%d of %zu scratch images failed; first: %s", bad, f->truth.nscratches, first);
}

/* The models say what they are: input/output names and metadata_props. */
static void test_model_metadata(void **state)
{
    fixture *f = *state;
    char msg[MH_MSG], name[128];
    struct {
        OrtSession *s;
        const char *output;
    } models[] = {{f->dots, "density"}, {f->colours, "probabilities"}, {f->scratches, "mask"}};
    for (size_t i = 0; i < 3; i++) {
        if (mh_session_io_name(&f->ort, models[i].s, false, 0, name, sizeof name, msg, sizeof msg))
            fail_msg("%s", msg);
        assert_string_equal(name, "image");
        if (mh_session_io_name(&f->ort, models[i].s, true, 0, name, sizeof name, msg, sizeof msg))
            fail_msg("%s", msg);
        assert_string_equal(name, models[i].output);
        char *desc = NULL;
        if (mh_session_metadata(&f->ort, models[i].s, "description", &desc, msg, sizeof msg))
            fail_msg("%s", msg);
        assert_non_null(desc);
        assert_true(strlen(desc) > 20);
        free(desc);
    }
    char *stride = NULL;
    if (mh_session_metadata(&f->ort, f->dots, "output_stride", &stride, msg, sizeof msg))
        fail_msg("%s", msg);
    assert_non_null(stride);
    assert_int_equal(atoi(stride), MH_DOT_STRIDE);
    free(stride);
    /* The labels embedded in the classifier are those of the labels file. */
    char *labels = NULL;
    if (mh_session_metadata(&f->ort, f->colours, "labels", &labels, msg, sizeof msg))
        fail_msg("%s", msg);
    assert_non_null(labels);
    char joined[MH_MAX_LABELS * 33] = "";
    for (int k = 0; k < f->nlabels; k++) {
        if (k)
            strcat(joined, "\n");
        strcat(joined, f->labels[k]);
    }
    assert_string_equal(labels, joined);
    free(labels);
}

static void test_missing_model(void **state)
{
    fixture *f = *state;
    char msg[MH_MSG];
    OrtSession *s = NULL;
    int rc = mh_session_open(&f->ort, g_data_dir, "no_such_model.onnx", &s, msg, sizeof msg);
    assert_int_equal(rc, -1);
    assert_null(s);
    assert_non_null(strstr(msg, "no_such_model.onnx"));
    print_message("missing model: %s\n", msg);
    /* Not a model either: truth.json. */
    rc = mh_session_open(&f->ort, g_data_dir, "truth.json", &s, msg, sizeof msg);
    assert_int_equal(rc, -1);
    assert_null(s);
    print_message("not a model: %s\n", msg);
}

static void test_wrong_input(void **state)
{
    fixture *f = *state;
    char msg[MH_MSG];
    float x[3 * 8 * 8] = {0};
    mh_tensor out;
    /* rank 3 instead of 4 */
    int64_t rank3[3] = {3, 8, 8};
    OrtSession *sessions[3] = {f->dots, f->colours, f->scratches};
    const char *outputs[3] = {"density", "probabilities", "mask"};
    for (int i = 0; i < 3; i++) {
        int rc = mh_run(&f->ort, sessions[i], "image", x, rank3, 3, outputs[i], &out, msg,
                        sizeof msg);
        assert_int_equal(rc, -1);
        assert_null(out.data);
        print_message("wrong rank (%s): %s\n", outputs[i], msg);
    }
    /* 4 channels instead of 3 */
    int64_t four[4] = {1, 4, 4, 3};
    int rc = mh_run(&f->ort, f->colours, "image", x, four, 4, "probabilities", &out, msg,
                    sizeof msg);
    assert_int_equal(rc, -1);
    print_message("wrong channels: %s\n", msg);
    /* an input name the model does not have */
    int64_t ok[4] = {1, 3, 8, 8};
    rc = mh_run(&f->ort, f->dots, "pixels", x, ok, 4, "density", &out, msg, sizeof msg);
    assert_int_equal(rc, -1);
    print_message("wrong input name: %s\n", msg);
    /* and the right input still works afterwards, as a batch of 1 */
    rc = mh_run(&f->ort, f->dots, "image", x, ok, 4, "density", &out, msg, sizeof msg);
    if (rc)
        fail_msg("%s", msg);
    assert_int_equal(out.ndim, 4);
    assert_int_equal(out.shape[2], 2);
    assert_int_equal(out.shape[3], 2);
    mh_tensor_free(&out);
}

/* A batch of two images of the same size gives each its own result. */
static void test_batch(void **state)
{
    fixture *f = *state;
    char msg[MH_MSG];
    enum { H = 64, W = 64 };
    static float x[2 * 3 * H * W];
    /* image 0: one white 6x6 square dot; image 1: two, on a black background */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 6; y++)
            for (int i = 0; i < 6; i++) {
                x[(0 * 3 + c) * H * W + (30 + y) * W + 30 + i] = 1.0f;
                x[(1 * 3 + c) * H * W + (20 + y) * W + 20 + i] = 1.0f;
                x[(1 * 3 + c) * H * W + (40 + y) * W + 40 + i] = 1.0f;
            }
    int64_t shape[4] = {2, 3, H, W};
    mh_tensor out;
    if (mh_run(&f->ort, f->dots, "image", x, shape, 4, "density", &out, msg, sizeof msg))
        fail_msg("%s", msg);
    assert_int_equal(out.shape[0], 2);
    size_t per = out.count / 2;
    double s0 = 0, s1 = 0;
    for (size_t i = 0; i < per; i++) {
        s0 += out.data[i];
        s1 += out.data[per + i];
    }
    mh_tensor_free(&out);
    print_message("batch of 2: density sums %.3f and %.3f\n", s0, s1);
    assert_true(fabs(s0 - 1.0) < 0.05);
    assert_true(fabs(s1 - 2.0) < 0.05);
    /* The classifier keeps the two images apart: white is 36 and 72 px of 4096. */
    if (mh_run(&f->ort, f->colours, "image", x, shape, 4, "probabilities", &out, msg, sizeof msg))
        fail_msg("%s", msg);
    assert_int_equal(out.ndim, 2);
    assert_int_equal(out.shape[0], 2);
    assert_int_equal(out.shape[1], 8);
    print_message("batch of 2: white fractions %.5f and %.5f\n", (double)out.data[1],
                  (double)out.data[8 + 1]);
    assert_true(fabsf(out.data[0] - (1.0f - 36.0f / (H * W))) < 1e-4f);
    assert_true(fabsf(out.data[1] - 36.0f / (H * W)) < 1e-4f);
    assert_true(fabsf(out.data[8 + 0] - (1.0f - 72.0f / (H * W))) < 1e-4f);
    assert_true(fabsf(out.data[8 + 1] - 72.0f / (H * W)) < 1e-4f);
    mh_tensor_free(&out);
}

/* Any size works, down to 1x1: the outputs have the documented shapes. */
static void test_tiny_images(void **state)
{
    fixture *f = *state;
    char msg[MH_MSG];
    static const int64_t sizes[][2] = {{1, 1}, {2, 3}, {5, 1}, {7, 9}, {21, 2}};
    float x[3 * 21 * 9];
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = (float)(i % 7) / 6.0f;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t h = sizes[i][0], w = sizes[i][1];
        int64_t shape[4] = {1, 3, h, w};
        mh_tensor out;
        if (mh_run(&f->ort, f->dots, "image", x, shape, 4, "density", &out, msg, sizeof msg))
            fail_msg("%lldx%lld: %s", (long long)w, (long long)h, msg);
        assert_int_equal(out.shape[2], (h + 3) / 4);
        assert_int_equal(out.shape[3], (w + 3) / 4);
        mh_tensor_free(&out);
        if (mh_run(&f->ort, f->colours, "image", x, shape, 4, "probabilities", &out, msg,
                   sizeof msg))
            fail_msg("%lldx%lld: %s", (long long)w, (long long)h, msg);
        assert_int_equal(out.count, 8);
        float sum = 0;
        for (int k = 0; k < 8; k++)
            sum += out.data[k];
        assert_true(fabsf(sum - 1.0f) < 1e-4f);
        mh_tensor_free(&out);
        if (mh_run(&f->ort, f->scratches, "image", x, shape, 4, "mask", &out, msg, sizeof msg))
            fail_msg("%lldx%lld: %s", (long long)w, (long long)h, msg);
        assert_int_equal(out.shape[2], h);
        assert_int_equal(out.shape[3], w);
        for (size_t k = 0; k < out.count; k++)
            assert_true(out.data[k] >= 0.0f && out.data[k] <= 1.0f);
        mh_tensor_free(&out);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODELS_DIR DATA_DIR\n", argv[0]);
        return 2;
    }
    g_models_dir = argv[1];
    g_data_dir = argv[2];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_density),
        cmocka_unit_test(test_colour_classifier),
        cmocka_unit_test(test_scratch_segmenter),
        cmocka_unit_test(test_model_metadata),
        cmocka_unit_test(test_missing_model),
        cmocka_unit_test(test_wrong_input),
        cmocka_unit_test(test_batch),
        cmocka_unit_test(test_tiny_images),
    };
    return cmocka_run_group_tests_name("models", tests, setup, teardown);
}
