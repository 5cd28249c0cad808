/* sequences.c: greedy CTC decoding (algorithms.h). Plain arrays; nothing
 * kept between calls. */
#include "algorithms.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

bool pp_ctc_greedy(const float *scores, size_t steps, size_t classes, size_t blank, bool softmax,
                   size_t *out, double *probs, size_t *n, size_t *bad)
{
    *n = 0;
    size_t prev = blank;
    for (size_t t = 0; t < steps; t++) {
        const float *row = scores + t * classes;
        size_t best = 0;
        for (size_t c = 0; c < classes; c++) {
            if (!isfinite(row[c])) {
                *bad = t;
                return false;
            }
            if (row[c] > row[best])
                best = c;
        }
        double p = row[best];
        if (softmax) { /* the best class's probability, shifted by the max */
            double total = 0;
            for (size_t c = 0; c < classes; c++)
                total += exp((double)row[c] - row[best]);
            p = 1.0 / total;
        }
        if (best != blank && best != prev) {
            out[*n] = best;
            probs[*n] = p;
            (*n)++;
        }
        prev = best;
    }
    return true;
}

/* The emitted classes as text: each one's symbol (the charset leaves the
 * blank's class out); malloc'd, NULL on ENOMEM. */
static char *ctc_text(char *const *charset, size_t blank, const size_t *cls, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(charset[cls[i] < blank ? cls[i] : cls[i] - 1]);
    char *text = malloc(len + 1), *at = text;
    for (size_t i = 0; text && i < n; i++) {
        const char *sym = charset[cls[i] < blank ? cls[i] : cls[i] - 1];
        size_t l = strlen(sym);
        memcpy(at, sym, l);
        at += l;
    }
    if (text)
        *at = '\0';
    return text;
}

inferd_status pp_ctc_read(const float *scores, size_t steps, size_t classes, size_t blank,
                          bool softmax, char *const *charset, inferd_value **out, size_t *bad,
                          inferd_error *err)
{
    size_t *cls = malloc((steps ? steps : 1) * sizeof *cls), n = 0;
    double *probs = malloc((steps ? steps : 1) * sizeof *probs), sum = 0;
    char *text = NULL;
    inferd_value *v = NULL;
    inferd_status st = cls && probs ? INFERD_OK
                                    : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK && !pp_ctc_greedy(scores, steps, classes, blank, softmax, cls, probs, &n,
                                          bad))
        st = inferd_error_set(err, INFERD_EINVAL, "a score of step %zu is not a finite number",
                              *bad);
    for (size_t i = 0; st == INFERD_OK && i < n; i++)
        sum += probs[i];
    if (st == INFERD_OK && (!(text = ctc_text(charset, blank, cls, n)) ||
                            !(v = inferd_value_object())))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK &&
        !(st = inferd_value_object_set(v, "text", inferd_value_string(text), err)))
        st = inferd_value_object_set(v, "confidence", inferd_value_double(n ? sum / (double)n : 0),
                                     err);
    free(text);
    free(cls);
    free(probs);
    if (st != INFERD_OK) {
        inferd_value_free(v);
        return st;
    }
    *out = v;
    return INFERD_OK;
}
