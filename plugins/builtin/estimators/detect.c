/* detect.c: the "detect" estimator family: object boxes from the common
 * detection heads (YOLOv8 [4+C, A], YOLOv5 [A, 5+C], SSD-style boxes and
 * scores), each anchor's best class above scoreThreshold, non-maximum
 * suppression per class (or across classes with classAgnostic), at most
 * maxDetections, every box mapped back through the input contract (the
 * letterbox) to the pixels of the image sent.
 *
 * Result per image: {"count": N, "objects": [{"x", "y", "width", "height",
 * "score", "class", "label"?}...]}, best first; "label" when a labelsFile
 * names the classes.
 */
#include "algorithms.h"
#include "estimators.h"

#include <stdlib.h>
#include <string.h>

static const char *const heads[] = {"auto", "yolov8", "yolov5", "boxes_scores", NULL};

const inferd_prop_spec est_detect_options[] = {INFERD_PROP_END};

const inferd_prop_spec est_detect_props[] = {
    INFERD_PROP_STRING("modelPath", "the ONNX detector", NULL),
    EST_PROP_DEVICE,
    EST_PROP_INPUT,
    INFERD_PROP_ENUM("head", "the output layout: yolov8 [N,4+C,A] (cx, cy, w, h, class "
                     "scores), yolov5 [N,A,5+C] (with objectness), boxes_scores (two outputs: "
                     "boxes [N,A,4] x0 y0 x1 y1 and scores [N,A,C]); auto: boxes_scores for "
                     "two outputs, else yolov8 when the first dim is the smaller",
                     "auto", heads),
    INFERD_PROP_DOUBLE("scoreThreshold", "a box's score must be at least this", 0.25, 0, 1),
    INFERD_PROP_DOUBLE("iouThreshold", "a box overlapping a better one of its class by more "
                       "than this (intersection over union) is dropped", 0.45, 0, 1),
    INFERD_PROP_UINT("maxDetections", "the most boxes an image returns", 100, 1, 100000),
    INFERD_PROP_BOOL("classAgnostic", "suppress overlaps across classes too", false),
    INFERD_PROP_BOOL("boxesNormalized", "boxes_scores: the boxes are in [0,1] of the input "
                     "(else in its pixels)", false),
    INFERD_PROP_STRING("labelsFile", "the class names, one a line, in the model's order (none: "
                       "the class index only); a bare file name is looked for beside the model",
                       ""),
    INFERD_PROP_END,
};

typedef struct detector {
    est_model m; /* first: est_deinit's layout */
    char **labels;
    size_t n_labels;
    int head; /* -1 auto, else a pp_det_layout */
    double score, iou;
    size_t max;
    bool agnostic, normalised;
} detector;

void est_detect_deinit(inferd_instance *self)
{
    detector *s = inferd_instance_state(self);
    if (!s)
        return;
    est_model_close(&s->m);
    pp_labels_free(s->labels, s->n_labels);
    free(s);
}

inferd_status est_detect_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    detector *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_instance_set_state(self, s);
    const char *head = inferd_props_string(p, "head");
    s->head = strcmp(head, "yolov8") == 0         ? PP_DET_YOLOV8
              : strcmp(head, "yolov5") == 0       ? PP_DET_YOLOV5
              : strcmp(head, "boxes_scores") == 0 ? PP_DET_BOXES_SCORES
                                                  : -1;
    s->score = inferd_props_double(p, "scoreThreshold");
    s->iou = inferd_props_double(p, "iouThreshold");
    s->max = (size_t)inferd_props_int(p, "maxDetections");
    s->agnostic = inferd_props_bool(p, "classAgnostic");
    s->normalised = inferd_props_bool(p, "boxesNormalized");
    inferd_status st = est_model_open(self, p, &s->m, err);
    const char *labels = inferd_props_string(p, "labelsFile");
    char path[4096];
    if (st == INFERD_OK && labels[0])
        st = pp_labels_read("labelsFile",
                            est_resolve_beside_model(labels, s->m.path, path, sizeof path),
                            &s->labels, &s->n_labels, err);
    if (st == INFERD_OK && s->head == PP_DET_BOXES_SCORES &&
        inferd_model_io_count(s->m.model, 1) < 2)
        st = inferd_error_set(err, INFERD_EUNSUPPORTED,
                              "model %s has one output: head boxes_scores needs two (boxes, "
                              "scores)", s->m.path);
    if (st != INFERD_OK) {
        est_detect_deinit(self); /* the host never calls deinit after a failed init */
        inferd_instance_set_state(self, NULL);
    }
    return st;
}

static inferd_status object_value(const detector *s, const est_item *it, const pp_box *b,
                                  inferd_value *arr, inferd_error *err)
{
    int64_t x0, y0, x1, y1;
    est_map_box(it, b->x0, b->y0, b->x1, b->y1, &x0, &y0, &x1, &y1);
    inferd_value *o = inferd_value_object();
    inferd_status st;
    if (!o)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if ((st = est_set_int(o, "x", x0, err)) || (st = est_set_int(o, "y", y0, err)) ||
        (st = est_set_int(o, "width", x1 - x0, err)) ||
        (st = est_set_int(o, "height", y1 - y0, err)) ||
        (st = est_set_double(o, "score", b->score, err)) ||
        (st = est_set_int(o, "class", (int64_t)b->cls, err)) ||
        (b->cls < s->n_labels &&
         (st = inferd_value_object_set(o, "label", inferd_value_string(s->labels[b->cls]),
                                       err)))) {
        inferd_value_free(o);
        return st;
    }
    return inferd_value_array_push(arr, o, err);
}

static inferd_status detect_post(inferd_instance *self, const est_item *it,
                                 const est_output *out, inferd_value **result, inferd_error *err)
{
    const detector *s = inferd_instance_state(self);
    pp_tensor_view views[2];
    size_t nv = out->n_outputs < 2 ? out->n_outputs : 2;
    for (size_t j = 0; j < nv; j++)
        views[j] = (pp_tensor_view){out[j].v, out[j].ndim, out[j].dims};
    pp_det_layout layout = s->head >= 0 ? (pp_det_layout)s->head : pp_detect_guess(views, nv);
    pp_box *boxes = NULL;
    size_t n = 0;
    inferd_status st = pp_detect_decode(layout, views, nv, s->score, s->normalised,
                                        it->geo.width, it->geo.height, &boxes, &n, err);
    if (st != INFERD_OK)
        return est_model_fault(&s->m, st, err);
    size_t kept = pp_nms(boxes, n, s->iou, s->agnostic, s->max);
    inferd_value *arr = inferd_value_array();
    if (!arr)
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < kept && st == INFERD_OK; i++)
        st = object_value(s, it, &boxes[i], arr, err);
    free(boxes);
    if (st != INFERD_OK) {
        inferd_value_free(arr);
        return st;
    }
    return est_counted((int64_t)kept, "objects", arr, result, err);
}

inferd_status est_detect_batch(inferd_instance *self, inferd_estimate *const *items, size_t n,
                               inferd_error *err)
{
    const detector *s = inferd_instance_state(self);
    return est_run_batch(self, &s->m, items, n, detect_post, err);
}
