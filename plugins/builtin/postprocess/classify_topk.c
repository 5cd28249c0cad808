/* classify_topk.c: the classify_topk element of the built-in "postprocess"
 * plugin. It reads a classifier's scores ([N,K] with N = 1, e.g.
 * colour_classifier's probabilities [N,8]), optionally applies a softmax (for
 * a model that outputs logits), and attaches metadata/class {"labels":
 * [{"label", "index", "score"}...]}: the topK best, best first. Labels come
 * inline (`labels`) or from a file, one a line (`labelsFile`): exactly one of
 * the two; their number must equal K. */
#include "postprocess.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
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

/* A labels file larger than this is not a labels file. */
#define MAX_LABELS_FILE (16u << 20)

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
    for (size_t i = 0; i < c->n_labels; i++)
        free(c->labels[i]);
    free(c->labels);
    free(c->tensor_name);
    free(c);
}

static inferd_status add_label(classify *c, const char *s, size_t len, size_t *cap,
                               inferd_error *err)
{
    if (c->n_labels == *cap) {
        size_t ncap = *cap ? 2 * *cap : 16;
        char **nl = realloc(c->labels, ncap * sizeof *nl);
        if (!nl)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        c->labels = nl;
        *cap = ncap;
    }
    char *l = malloc(len + 1);
    if (!l)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    memcpy(l, s, len);
    l[len] = '\0';
    c->labels[c->n_labels++] = l;
    return INFERD_OK;
}

/* One label a line (a final newline ends the last line; "\r\n" is a newline;
 * trailing empty lines are dropped, inner ones kept: they are indices). */
static inferd_status read_labels_file(classify *c, const char *path, inferd_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return inferd_error_set(err, errno == ENOENT ? INFERD_ENOTFOUND : INFERD_EIO,
                                "labelsFile '%s': %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap_text = 0;
    inferd_status st = INFERD_OK;
    for (;;) { /* read it whole, growing the buffer: also works on a pipe */
        if (len == cap_text) {
            size_t ncap = cap_text ? 2 * cap_text : 4096;
            if (ncap > MAX_LABELS_FILE + 1)
                ncap = MAX_LABELS_FILE + 1;
            char *nt = realloc(text, ncap);
            if (!nt) {
                st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
                break;
            }
            text = nt;
            cap_text = ncap;
        }
        size_t got = fread(text + len, 1, cap_text - len, fp);
        len += got;
        if (len > MAX_LABELS_FILE) {
            st = inferd_error_set(err, INFERD_ERANGE, "labelsFile '%s' is larger than %u bytes",
                                  path, MAX_LABELS_FILE);
            break;
        }
        if (got == 0) {
            if (ferror(fp))
                st = inferd_error_set(err, INFERD_EIO, "labelsFile '%s': read error", path);
            break;
        }
    }
    fclose(fp);
    size_t cap = 0, start = 0;
    while (st == INFERD_OK && start < len) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len, stop = end;
        if (stop > start && text[stop - 1] == '\r')
            stop--;
        st = add_label(c, text + start, stop - start, &cap, err);
        start = end + 1;
    }
    free(text);
    while (st == INFERD_OK && c->n_labels > 0 && c->labels[c->n_labels - 1][0] == '\0')
        free(c->labels[--c->n_labels]);
    if (st == INFERD_OK && c->n_labels == 0)
        st = inferd_error_set(err, INFERD_EINVAL, "labelsFile '%s' holds no label", path);
    return st;
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
        st = read_labels_file(c, file, err);
    } else {
        size_t cap = 0;
        for (size_t i = 0; i < n_inline && st == INFERD_OK; i++) {
            const char *l = inferd_props_list_at(p, "labels", i);
            st = add_label(c, l, strlen(l), &cap, err);
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

typedef struct scored {
    size_t index;
    double score;
} scored;

static int best_first(const void *a, const void *b)
{
    const scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static inferd_status labels_value(const classify *c, const scored *s, size_t k,
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
    scored *s = malloc(k * sizeof *s);
    if (!s) {
        pp_floats_free(&f);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    double max = -INFINITY;
    for (size_t i = 0; i < k && st == INFERD_OK; i++) {
        s[i] = (scored){i, f.v[i]};
        if (!isfinite(s[i].score))
            st = inferd_error_set(err, INFERD_EINVAL, "tensor '%s': score %zu (%s) is %s",
                                  pp_tensor_label(t), i, c->labels[i],
                                  isnan(s[i].score) ? "NaN" : "infinite");
        else if (s[i].score > max)
            max = s[i].score;
    }
    pp_floats_free(&f);
    if (st == INFERD_OK && c->softmax) { /* shifted by the max: exp never overflows */
        double total = 0;
        for (size_t i = 0; i < k; i++)
            total += (s[i].score = exp(s[i].score - max));
        for (size_t i = 0; i < k; i++)
            s[i].score /= total;
    }
    inferd_value *meta = NULL;
    if (st == INFERD_OK) {
        if (k > 1)
            qsort(s, k, sizeof *s, best_first);
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
