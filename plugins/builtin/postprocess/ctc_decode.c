/* ctc_decode.c: the ctc_decode element of the built-in "postprocess"
 * plugin: a text recogniser's scores [T, C] (or [1, T, C]) decoded by
 * greedy CTC over a charset file (algorithms.h, pp_ctc_greedy, the same as
 * the "ctc" estimator family). Attaches metadata/text {"text", "confidence"}
 * (the mean probability of the emitted symbols; 0 for an empty text). */
#include "algorithms.h"
#include "postprocess.h"

#include <stdlib.h>

const inferd_prop_spec pp_ctc_props[] = {
    INFERD_PROP_STRING("tensorName", "the model output to read; \"\" = the first tensor", ""),
    INFERD_PROP_STRING("charsetFile", "the symbols, one a line, in class order with the blank "
                       "left out", NULL),
    INFERD_PROP_UINT("blankIndex", "the class of the CTC blank", 0, 0, 1000000),
    INFERD_PROP_BOOL("softmax", "the scores are logits: confidences come from their softmax",
                     false),
    INFERD_PROP_END,
};

typedef struct decoder {
    char *tensor_name;
    char **charset;
    size_t n_charset, blank;
    bool softmax;
} decoder;

void pp_ctc_deinit(inferd_instance *self)
{
    decoder *s = inferd_instance_state(self);
    if (!s)
        return;
    pp_labels_free(s->charset, s->n_charset);
    free(s->tensor_name);
    free(s);
}

inferd_status pp_ctc_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    decoder *s = calloc(1, sizeof *s);
    if (!s || !(s->tensor_name = pp_strdup(inferd_props_string(p, "tensorName")))) {
        free(s);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_instance_set_state(self, s);
    s->blank = (size_t)inferd_props_int(p, "blankIndex");
    s->softmax = inferd_props_bool(p, "softmax");
    inferd_status st = pp_labels_read("charsetFile", inferd_props_string(p, "charsetFile"),
                                      &s->charset, &s->n_charset, err);
    if (st == INFERD_OK && s->blank > s->n_charset)
        st = inferd_error_set(err, INFERD_EINVAL,
                              "blankIndex %zu: there are %zu classes (the charset's %zu and the "
                              "blank)", s->blank, s->n_charset + 1, s->n_charset);
    if (st != INFERD_OK) {
        pp_ctc_deinit(self);
        inferd_instance_set_state(self, NULL);
    }
    return st;
}

inferd_status pp_ctc_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                             inferd_error *err)
{
    const decoder *s = inferd_instance_state(self);
    inferd_buffer *buf;
    const inferd_tensor *t;
    inferd_status st = pp_input_tensor(in, n, s->tensor_name, &buf, &t, err);
    if (st != INFERD_OK)
        return st;
    size_t C = s->n_charset + 1;
    if (t->ndim < 2 || t->ndim > 3 || (t->ndim == 3 && t->shape[0] != 1) ||
        t->shape[t->ndim - 1] != (int64_t)C) {
        char shape[160];
        inferd_shape_format(t->ndim, t->shape, shape, sizeof shape);
        return inferd_error_set(err, INFERD_EINVAL,
                                "tensor %s is %s: expected [T, %zu] or [1, T, %zu] (the "
                                "charset's %zu symbols and the blank)", pp_tensor_label(t), shape,
                                C, C, s->n_charset);
    }
    size_t T = (size_t)t->shape[t->ndim - 2], bad = 0;
    pp_floats f;
    if ((st = pp_floats_get(t, &f, err)))
        return st;
    inferd_value *meta = NULL;
    st = pp_ctc_read(f.v, T, C, s->blank, s->softmax, s->charset, &meta, &bad, err);
    pp_floats_free(&f);
    if (st != INFERD_OK) {
        inferd_error_prefix(err, "tensor %s", pp_tensor_label(t));
        return st;
    }
    return pp_attach_and_push(self, buf, "metadata/text", meta, err);
}
