/* image_label.c: imageLabelEstimator, the built-in estimator that names what
 * an image shows (here the colour_classifier model's dominant colour).
 *
 * The model gives one score per class; the labels file names them, one a
 * line, in the model's order. Result per image: {"labels": [{"label",
 * "score"}...]}, the request's topK best, best first (ties: the model's
 * order). A topK above the number of classes gives them all.
 */
#include "algorithms.h"
#include "estimators.h"

#include <stdlib.h>

const inferd_prop_spec est_label_options[] = {
    INFERD_PROP_UINT("topK", "how many of the best labels to return", 1, 1, 1000),
    INFERD_PROP_END,
};

const inferd_prop_spec est_label_props[] = {
    EST_PROP_MODEL("colour_classifier.onnx"),
    EST_PROP_DEVICE,
    EST_PROP_INPUT,
    INFERD_PROP_STRING("labelsFile", "the class names, one a line, in the model's order; a "
                       "bare file name that is not in the working folder is looked for beside "
                       "the model", "colour_classifier.labels"),
    INFERD_PROP_BOOL("softmax", "apply a softmax to the scores first (the model gives logits)",
                     false),
    INFERD_PROP_END,
};

typedef struct labeller {
    est_model m;
    char **labels; /* owned: n_labels strings */
    size_t n_labels;
    bool softmax;
} labeller;

void est_label_deinit(inferd_instance *self)
{
    labeller *s = inferd_instance_state(self);
    if (!s)
        return;
    est_model_close(&s->m);
    pp_labels_free(s->labels, s->n_labels);
    free(s);
}

inferd_status est_label_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    labeller *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_instance_set_state(self, s);
    s->softmax = inferd_props_bool(p, "softmax");
    char path[4096];
    inferd_status st = est_model_open(self, p, &s->m, err);
    if (st == INFERD_OK)
        st = pp_labels_read("labelsFile",
                            est_resolve_beside_model(inferd_props_string(p, "labelsFile"),
                                                     s->m.path, path, sizeof path),
                            &s->labels, &s->n_labels, err);
    if (st != INFERD_OK) {
        est_label_deinit(self); /* the host never calls deinit after a failed init */
        inferd_instance_set_state(self, NULL);
    }
    return st;
}

static inferd_status label_post(inferd_instance *self, const est_item *it, const est_output *out,
                                inferd_value **result, inferd_error *err)
{
    const labeller *s = inferd_instance_state(self);
    if (out->count != s->n_labels)
        return inferd_error_set(err, INFERD_EPLUGIN,
                                "model %s gives %zu scores per image and labelsFile names %zu "
                                "classes: they must be equal", s->m.path, out->count,
                                s->n_labels);
    pp_scored *ranked = malloc((out->count ? out->count : 1) * sizeof *ranked);
    if (!ranked)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    size_t bad = 0;
    inferd_status st = pp_rank_scores(out->v, out->count, s->softmax, ranked, &bad)
                           ? INFERD_OK
                           : inferd_error_set(err, INFERD_EPLUGIN, "model %s: score %zu (%s) is "
                                              "not a finite number", s->m.path, bad,
                                              s->labels[bad]);
    size_t k = (size_t)inferd_props_int(it->options, "topK");
    if (k > out->count)
        k = out->count;
    inferd_value *res = inferd_value_object(), *arr = inferd_value_array();
    if (st == INFERD_OK && (!res || !arr))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < k && st == INFERD_OK; i++) {
        inferd_value *o = inferd_value_object();
        if (!o || (st = inferd_value_object_set(
                       o, "label", inferd_value_string(s->labels[ranked[i].index]), err)) ||
            (st = est_set_double(o, "score", ranked[i].score, err))) {
            inferd_value_free(o);
            st = st ? st : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            break;
        }
        st = inferd_value_array_push(arr, o, err);
    }
    free(ranked);
    if (st == INFERD_OK) {
        st = inferd_value_object_set(res, "labels", arr, err);
        arr = NULL; /* taken */
    }
    inferd_value_free(arr);
    if (st != INFERD_OK) {
        inferd_value_free(res);
        return st;
    }
    *result = res;
    return INFERD_OK;
}

inferd_status est_label_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                              inferd_error *err)
{
    const labeller *s = inferd_instance_state(self);
    return est_run_batch(self, &s->m, items, n, label_post, err);
}
