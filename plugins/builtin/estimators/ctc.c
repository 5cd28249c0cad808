/* ctc.c: the "ctc" estimator family: text recognisers (CRNN, SVTR) whose
 * output is one row of class scores per time step, [N, T, C], decoded by
 * greedy CTC over a charset file: each step's best class, repeats
 * collapsed, the blank dropped.
 *
 * The charset file holds one symbol a line (UTF-8; a symbol may be several
 * bytes), in the model's class order with the blank left out: class
 * `blankIndex` is the blank, the others are the charset's lines in order
 * (PaddleOCR's models: blank 0, and " " as the last line when the model was
 * trained with spaces). C must be the charset's size + 1.
 *
 * Result per image: {"text": "...", "confidence": c}, c the mean probability
 * of the emitted symbols (0 for an empty text).
 */
#include "algorithms.h"
#include "estimators.h"

#include <stdlib.h>
#include <string.h>

const inferd_prop_spec est_ctc_options[] = {INFERD_PROP_END};

const inferd_prop_spec est_ctc_props[] = {
    INFERD_PROP_STRING("modelPath", "the ONNX recogniser: [N, T, C] class scores per time step",
                       NULL),
    EST_PROP_DEVICE,
    EST_PROP_INPUT,
    INFERD_PROP_STRING("charsetFile", "the symbols, one a line, in class order with the blank "
                       "left out; a bare file name is looked for beside the model", NULL),
    INFERD_PROP_UINT("blankIndex", "the class of the CTC blank", 0, 0, 1000000),
    INFERD_PROP_BOOL("softmax", "the scores are logits: confidences come from their softmax",
                     false),
    INFERD_PROP_END,
};

typedef struct reader {
    est_model m;
    char **charset;
    size_t n_charset;
    size_t blank;
    bool softmax;
} reader;

void est_ctc_deinit(inferd_instance *self)
{
    reader *s = inferd_instance_state(self);
    if (!s)
        return;
    est_model_close(&s->m);
    pp_labels_free(s->charset, s->n_charset);
    free(s);
}

inferd_status est_ctc_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    reader *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_instance_set_state(self, s);
    s->blank = (size_t)inferd_props_int(p, "blankIndex");
    s->softmax = inferd_props_bool(p, "softmax");
    char path[4096];
    inferd_status st = est_model_open(self, p, &s->m, err);
    if (st == INFERD_OK)
        st = pp_labels_read("charsetFile",
                            est_resolve_beside_model(inferd_props_string(p, "charsetFile"),
                                                     s->m.path, path, sizeof path),
                            &s->charset, &s->n_charset, err);
    if (st == INFERD_OK && s->blank > s->n_charset)
        st = inferd_error_set(err, INFERD_EINVAL,
                              "blankIndex %zu: there are %zu classes (the charset's %zu and the "
                              "blank)", s->blank, s->n_charset + 1, s->n_charset);
    if (st != INFERD_OK) {
        est_ctc_deinit(self); /* the host never calls deinit after a failed init */
        inferd_instance_set_state(self, NULL);
    }
    return st;
}

static inferd_status ctc_post(inferd_instance *self, const est_item *it, const est_output *out,
                              inferd_value **result, inferd_error *err)
{
    (void)it;
    const reader *s = inferd_instance_state(self);
    size_t C = s->n_charset + 1;
    /* [T, C], or [1, T, C]. */
    if (out->ndim < 2 || out->dims[out->ndim - 1] != (int64_t)C ||
        (out->ndim == 3 && out->dims[0] != 1) || out->ndim > 3) {
        char shape[160];
        inferd_shape_format(out->ndim, out->dims, shape, sizeof shape);
        return inferd_error_set(err, INFERD_EPLUGIN,
                                "model %s gives %s per image: expected [T, %zu] (the charset's "
                                "%zu symbols and the blank)", s->m.path, shape, C, s->n_charset);
    }
    size_t T = (size_t)out->dims[out->ndim - 2], bad = 0;
    inferd_status st = pp_ctc_read(out->v, T, C, s->blank, s->softmax, s->charset, result, &bad,
                                   err);
    return est_model_fault(&s->m, st, err);
}

inferd_status est_ctc_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                            inferd_error *err)
{
    const reader *s = inferd_instance_state(self);
    return est_run_batch(self, &s->m, items, n, ctc_post, err);
}
