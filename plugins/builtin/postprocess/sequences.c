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

char *pp_ctc_text(char *const *charset, size_t blank, const size_t *cls, size_t n)
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
