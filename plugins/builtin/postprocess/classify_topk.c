/* classify_topk.c: the classify_topk element of the built-in "postprocess"
 * plugin. It reads a classifier's scores ([N,K] with N = 1, e.g.
 * colour_classifier's probabilities [N,8]), optionally applies a softmax (for
 * a model that outputs logits), and attaches metadata/class {"labels":
 * [{"label", "index", "score"}...]}: the topK best, best first. Labels come
 * inline (`labels`) or from a file, one a line (`labelsFile`): exactly one of
 * the two; their number must equal K. The ranking and the labels file are
 * algorithms.c's (shared with the estimators). */
#include "algorithms.h"
#include "postprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const inferd_prop_spec pp_classify_props[] = {
    INFERD_PROP_STRING("tensorName", "the model output to read; \"\" = the first tensor", ""),
    INFERD_PROP_STRLIST("labels", "the class names, in the model's order (or use labelsFile)",
                        ""),
    INFERD_PROP_STRING("labelsFile", "a file with one class name a line (or use labels)", ""),
    INFERD_PROP_INT("topK", "how many of the best classes to report", 1, 1, 1000),
    INFERD_PROP_BOOL("softmax", "apply a softmax first (the model outputs logits)", false),
    INFERD_PROP_END,
};

typedef struct classify {
    char *tensor_name;
    char **labels;
    size_t n_labels;
    size_t top_k;
    bool softmax;
} classify;

static void classify_free(classify *c)
{
    if (!c)
        return;
    pp_labels_free(c->labels, c->n_labels);
    free(c->tensor_name);
    free(c);
}

inferd_status pp_classify_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    size_t n_inline = inferd_props_list_len(p, "labels");
    const char *file = inferd_props_string(p, "labelsFile");
    if (n_inline == 0 && !*file)
        return inferd_error_set(err, INFERD_EINVAL,
                                "neither labels nor labelsFile is set: give exactly one of them");
    if (n_inline > 0 && *file)
        return inferd_error_set(err, INFERD_EINVAL,
                                "both labels (%zu names) and labelsFile ('%s') are set: give "
                                "exactly one of them", n_inline, file);
    classify *c = calloc(1, sizeof *c);
    if (!c || !(c->tensor_name = pp_strdup(inferd_props_string(p, "tensorName")))) {
        free(c);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    c->top_k = (size_t)inferd_props_int(p, "topK");
    c->softmax = inferd_props_bool(p, "softmax");
    inferd_status st = INFERD_OK;
    if (*file) {
        st = pp_labels_read("labelsFile", file, &c->labels, &c->n_labels, err);
    } else {
        size_t cap = 0;
        for (size_t i = 0; i < n_inline && st == INFERD_OK; i++) {
            const char *l = inferd_props_list_at(p, "labels", i);
            st = pp_labels_add(&c->labels, &c->n_labels, &cap, l, strlen(l), err);
        }
    }
    if (st != INFERD_OK) {
        classify_free(c);
        return st;
    }
    inferd_instance_set_state(self, c);
    return INFERD_OK;
}

void pp_classify_deinit(inferd_instance *self)
{
    classify_free(inferd_instance_state(self));
}

static inferd_status labels_value(const classify *c, const pp_scored *s, size_t k,
                                  inferd_value *out, inferd_error *err)
{
    inferd_value *arr = inferd_value_array();
    if (!arr)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < k && st == INFERD_OK; i++) {
        inferd_value *o = inferd_value_object();
        if (!o) {
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            break;
        }
        if ((st = inferd_value_object_set(o, "label",
                                          inferd_value_string(c->labels[s[i].index]), err)) ||
            (st = pp_set_int(o, "index", (int64_t)s[i].index, err)) ||
            (st = pp_set_double(o, "score", s[i].score, err))) {
            inferd_value_free(o);
            break;
        }
        st = inferd_value_array_push(arr, o, err);
    }
    if (st != INFERD_OK) {
        inferd_value_free(arr);
        return st;
    }
    return inferd_value_object_set(out, "labels", arr, err);
}

inferd_status pp_classify_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                  inferd_error *err)
{
    const classify *c = inferd_instance_state(self);
    inferd_buffer *buf;
    const inferd_tensor *t;
    size_t k;
    inferd_status st;
    if ((st = pp_input_tensor(in, n, c->tensor_name, &buf, &t, err)) ||
        (st = pp_vector_shape(t, &k, err)))
        return st;
    if (k != c->n_labels)
        return inferd_error_set(err, INFERD_EINVAL,
                                "%zu labels for tensor '%s' of %zu scores: the label count must "
                                "equal the model's class count",
                                c->n_labels, pp_tensor_label(t), k);
    pp_floats f;
    if ((st = pp_floats_get(t, &f, err)))
        return st;
    pp_scored *s = malloc(k * sizeof *s);
    if (!s) {
        pp_floats_free(&f);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    size_t bad = 0;
    if (!pp_rank_scores(f.v, k, c->softmax, s, &bad))
        st = inferd_error_set(err, INFERD_EINVAL, "tensor '%s': score %zu (%s) is %s",
                              pp_tensor_label(t), bad, c->labels[bad],
                              isnan(f.v[bad]) ? "NaN" : "infinite");
    pp_floats_free(&f);
    inferd_value *meta = NULL;
    if (st == INFERD_OK) {
        if (!(meta = inferd_value_object()))
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        else
            st = labels_value(c, s, c->top_k < k ? c->top_k : k, meta, err);
    }
    free(s);
    if (st != INFERD_OK) {
        inferd_value_free(meta);
        return st;
    }
    return pp_attach_and_push(self, buf, "metadata/class", meta, err);
}
