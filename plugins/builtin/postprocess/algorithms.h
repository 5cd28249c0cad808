/* algorithms.h: the post-processing algorithms themselves, on plain arrays:
 * counting and peak finding on a density map, ranking classifier scores,
 * reading a labels file, and connected components of a segmentation mask.
 *
 * One implementation shared by two built-in plugins: the "postprocess"
 * elements (which read tensors from buffers and map coordinates back through
 * metadata/transform entries) and the "estimators" (which run a model on an
 * estimate's image). Built once as an object library linked into both; every
 * name here is hidden in each plugin (its visibility preset), so the two
 * copies never meet. Nothing here keeps state between calls.
 */
#ifndef INFERD_PP_ALGORITHMS_H
#define INFERD_PP_ALGORITHMS_H

#include <inferd/plugin.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- density maps ------------------------------------------------------------- */

/* The count of an h x w density map: its sum (in double), rounded to the
 * nearest integer, or floored when floor_mode is set (a sum within 1e-4 under
 * an integer floors to it: a map that sums to 3 in exact arithmetic may sum
 * to 2.9999998 in float), never negative. A NaN or an infinity is EINVAL
 * naming its row and column; a sum above 1e15 (not a count: a wrong tensor)
 * is ERANGE. Callers prefix the message with what the map is. */
inferd_status pp_density_count(const float *map, size_t h, size_t w, bool floor_mode,
                               double *sum, int64_t *count, inferd_error *err);

/* A peak of a density map. */
typedef struct pp_peak {
    size_t idx;    /* the cell (row-major): row idx / w, column idx % w */
    float score;   /* the map's value there */
    double ci, cj; /* sub-cell position (row, column): the weighted centroid of its 3x3 */
} pp_peak;

/* The map's local maxima over 3x3 neighbourhoods strictly above threshold (a
 * cell greater than all its neighbours, or a plateau of equal cells that
 * nothing around is higher than, counted once at its cell nearest its mean
 * position), the strongest `keep` of them, strongest first (ties in raster
 * order), each with its centroid. *out is malloc'd (owned by the caller;
 * NULL when there is none). false: out of memory. */
bool pp_density_peaks(const float *map, size_t h, size_t w, double threshold, size_t keep,
                      pp_peak **out, size_t *n);

/* ---- classifier scores ----------------------------------------------------------- */

typedef struct pp_scored {
    size_t index; /* the class */
    double score;
} pp_scored;

/* Ranks k scores best first (ties: the lower index first) into out[k],
 * after a softmax when asked. false, with *bad the first one, when a score is
 * NaN or infinite (out is then unspecified). */
bool pp_rank_scores(const float *scores, size_t k, bool softmax, pp_scored *out, size_t *bad);

/* Labels, one a line, from a file: a final newline ends the last line,
 * "\r\n" is a newline, trailing empty lines are dropped and inner ones kept
 * (they are indices). Errors name the file (key, e.g. "labelsFile", prefixes
 * it): missing (ENOTFOUND), unreadable (EIO), larger than 16 MiB (ERANGE), no
 * label (EINVAL). *labels (owned) holds *n malloc'd strings. */
inferd_status pp_labels_read(const char *key, const char *path, char ***labels, size_t *n,
                             inferd_error *err);
/* Appends a copy of s[0..len) to a labels array of capacity *cap. */
inferd_status pp_labels_add(char ***labels, size_t *n, size_t *cap, const char *s, size_t len,
                            inferd_error *err);
void pp_labels_free(char **labels, size_t n);

/* ---- segmentation masks ------------------------------------------------------------ */

/* The float threshold t such that v > t exactly when v > threshold (the
 * largest float not above it). */
float pp_mask_threshold(double threshold);

/* Pixel states: background, foreground not yet labelled, labelled. FG is 255
 * so that a thresholded plane, before labelling, is the 0/255 mask image. */
enum { PP_BG = 0, PP_FG = 255, PP_DONE = 1 };

/* state[i] = PP_FG where v[i] > t, else PP_BG (NaN is background). */
void pp_threshold_plane(const float *v, uint8_t *state, size_t n, float t);

/* A connected region of a mask. */
typedef struct pp_component {
    size_t first;          /* its first pixel in raster order (a stable tie-break) */
    size_t area;           /* pixels */
    double sum;            /* of the mask's values over it */
    size_t x0, y0, x1, y1; /* inclusive pixel bounds */
} pp_component;

/* The mean mask value over the component. */
double pp_component_score(const pp_component *c);

/* The 4- or 8-connected components of the PP_FG pixels of an h x w state
 * plane (found with a queue: no recursion; the plane is left labelled), those
 * of at least min_area pixels, largest first (ties: the higher score, then
 * raster order). map holds the mask's values (for the scores). *out is
 * malloc'd (owned; NULL when none). false: out of memory. */
bool pp_label_components(const float *map, uint8_t *state, size_t h, size_t w, bool eight,
                         int64_t min_area, pp_component **out, size_t *n);

/* The thresholded plane (state before labelling) as a new GRAY8 image. A side
 * above INFERD_IMAGE_MAX_DIM is ERANGE. */
inferd_status pp_mask_image(const uint8_t *state, size_t h, size_t w, inferd_image **out,
                            inferd_error *err);

/* ---- object detection (detections.c) ------------------------------------------ */

/* A box in the model input's pixels (corners, x0 <= x1, y0 <= y1). */
typedef struct pp_box {
    float x0, y0, x1, y1;
    float score;
    size_t cls;
} pp_box;

/* The common detection heads, each output less its batch dimension:
 *   YOLOV8        one output [4+C, A]: cx, cy, w, h, then C class scores, per anchor
 *   YOLOV5        one output [A, 5+C]: cx, cy, w, h, objectness, C class scores
 *                 (a box's score is objectness x class score)
 *   BOXES_SCORES  two outputs, boxes [A, 4] as x0, y0, x1, y1 and scores [A, C]
 *                 (SSD-style; `normalised` boxes are in [0,1] of the input) */
typedef enum pp_det_layout { PP_DET_YOLOV8, PP_DET_YOLOV5, PP_DET_BOXES_SCORES } pp_det_layout;

/* One output as the decoder sees it. */
typedef struct pp_tensor_view {
    const float *v;
    size_t ndim;
    const int64_t *dims;
} pp_tensor_view;

/* The layout of outputs (n of them): YOLOV8 when one output's first dim is
 * the smaller, YOLOV5 when it is the larger, BOXES_SCORES for two. */
pp_det_layout pp_detect_guess(const pp_tensor_view *outs, size_t n);

/* Each anchor's best class, where its score is at least threshold, as a box
 * (boxes normalised to [0,1] are scaled by width and height). *out is
 * malloc'd (owned; NULL when none). EINVAL when the outputs do not have the
 * layout's shape (the message names the shapes and the layout); ENOMEM. */
inferd_status pp_detect_decode(pp_det_layout layout, const pp_tensor_view *outs, size_t n,
                               double threshold, bool normalised, double width, double height,
                               pp_box **out, size_t *count, inferd_error *err);

/* Greedy non-maximum suppression: sorts boxes by score (best first; ties by
 * top, then left, then class), then keeps each box whose IoU with every kept box of the
 * same class (of any class when agnostic) is at most iou, until max are
 * kept. The kept boxes are moved to the front; returns how many. */
size_t pp_nms(pp_box *boxes, size_t n, double iou, bool agnostic, size_t max);

/* The intersection over union of two boxes (0 when either is empty). */
double pp_iou(const pp_box *a, const pp_box *b);

/* ---- text boxes (textboxes.c) ------------------------------------------------------ */

/* A text box: four corners, top-left first then clockwise on screen, in the
 * map's pixels (continuous: pixel x spans [x, x+1)); the kernel's score. */
typedef struct pp_quad {
    double x[4], y[4];
    double score;
} pp_quad;

/* DB post-processing of an h x w probability map: pixels above
 * bin_threshold, each 8-connected region (at most max_candidates, in raster
 * order of their first pixel) as its minimum-area rectangle, dropped when its
 * shorter side is under min_size or the map's mean inside it is under
 * box_threshold, grown by d = area * unclip_ratio / perimeter on every side
 * (dropped when the shorter side is then under min_size + 2), in reading
 * order (by top; tops within 10 px left to right). *out is malloc'd (owned;
 * NULL when none). ENOMEM only. */
inferd_status pp_text_boxes(const float *map, size_t h, size_t w, double bin_threshold,
                            double box_threshold, double unclip_ratio, double min_size,
                            size_t max_candidates, pp_quad **out, size_t *count,
                            inferd_error *err);

/* A text box as a result value: {"points": [{"x", "y"} x 4] (to 0.01),
 * "x", "y", "width", "height" (the points' bounds, whole pixels), "score"},
 * each corner passed through map(ctx, &x, &y) first (back to the image). */
inferd_status pp_quad_value(const pp_quad *q, void (*map)(void *ctx, double *x, double *y),
                            void *ctx, inferd_value **out, inferd_error *err);

/* ---- sequences (sequences.c) ------------------------------------------------------ */

/* Greedy CTC decoding of a steps x classes score matrix: each step's best
 * class (the first of equal ones), repeats collapsed, the blank dropped
 * (a blank between two equal classes keeps both). out[] gets the emitted
 * classes and probs[] their probability (the softmax of the step when asked,
 * else the score), at most `steps` of each; *n how many. false, with *bad
 * the step, when a score is NaN or infinite. */
bool pp_ctc_greedy(const float *scores, size_t steps, size_t classes, size_t blank, bool softmax,
                   size_t *out, double *probs, size_t *n, size_t *bad);
/* Greedy CTC decoding as a result value: {"text": the emitted classes'
 * symbols of charset (one a class, the blank's class left out),
 * "confidence": their mean probability, 0 for an empty text}. EINVAL (and
 * *bad the step) for a score that is not finite; ENOMEM. */
inferd_status pp_ctc_read(const float *scores, size_t steps, size_t classes, size_t blank,
                          bool softmax, char *const *charset, inferd_value **out, size_t *bad,
                          inferd_error *err);

#endif /* INFERD_PP_ALGORITHMS_H */
