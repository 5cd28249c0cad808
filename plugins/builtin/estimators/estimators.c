/* estimators.c: the built-in "estimators" plugin's descriptor: three named
 * estimators, each served by the component of the same name (its broker
 * name), each in its own file: peopleCountEstimator (people_count.c),
 * imageLabelEstimator (image_label.c) and defectEstimator (defects.c); and
 * their families (density, classify, segment), the same code serving the
 * names the config defines ("type": "density"). The
 * host (src/estimators) batches concurrent requests and calls their
 * estimate_batch on its worker threads; a plugin that declares the same
 * broker name replaces one of them. */
#include "estimators.h"

/* A family serves the names the config defines with "type": its name; the
 * built-in names are instances of the same code with the default models. */
#define EST_FAMILY(cname, cdesc, cprops, copts, finit, fbatch, fdeinit)                       \
    INFERD_COMPONENT(INFERD_KIND_ESTIMATOR, .name = (cname), .description = (cdesc),          \
                     .props = (cprops), .flags = INFERD_COMPONENT_FAMILY,                     \
                     .ops = INFERD_ESTIMATOR_OPS(finit, fbatch, fdeinit),                     \
                     .request_options = (copts))

/* Each built-in estimator serves its own name. */
#define EST_COMPONENT(cname, cdesc, cprops, copts, finit, fbatch, fdeinit)                    \
    INFERD_COMPONENT(INFERD_KIND_ESTIMATOR, .name = (cname), .description = (cdesc),          \
                     .props = (cprops), .broker_name = (cname),                               \
                     .ops = INFERD_ESTIMATOR_OPS(finit, fbatch, fdeinit),                     \
                     .request_options = (copts))

INFERD_PLUGIN("estimators", "1.0.0",
              EST_COMPONENT("peopleCountEstimator",
                            "counts (dot_density): the count and, for targets T1, the points",
                            est_people_props, est_people_options, est_people_init,
                            est_people_batch, est_deinit),
              EST_COMPONENT("imageLabelEstimator",
                            "the topK labels of an image (colour_classifier), best first",
                            est_label_props, est_label_options, est_label_init, est_label_batch,
                            est_label_deinit),
              EST_COMPONENT("defectEstimator",
                            "defects as boxes (scratch_segmenter), largest first, and on "
                            "request the mask as a PNG",
                            est_defect_props, est_defect_options, est_defect_init,
                            est_defect_batch, est_deinit),
              EST_FAMILY("density", "a density map whose sum is the count: the count and, for "
                         "targets T1, the points (peopleCountEstimator is one)",
                         est_people_props, est_people_options, est_people_init,
                         est_people_batch, est_deinit),
              EST_FAMILY("classify", "class scores: the topK labels from a labels file, best "
                         "first (imageLabelEstimator is one)",
                         est_label_props, est_label_options, est_label_init, est_label_batch,
                         est_label_deinit),
              EST_FAMILY("segment", "a mask: regions above a threshold as boxes, largest first, "
                         "and on request the mask (defectEstimator is one)",
                         est_defect_props, est_defect_options, est_defect_init,
                         est_defect_batch, est_deinit),
              EST_FAMILY("detect", "object boxes from a YOLOv8, YOLOv5 or SSD-style head, with "
                         "class-aware non-maximum suppression, mapped back through the "
                         "letterbox", est_detect_props, est_detect_options, est_detect_init,
                         est_detect_batch, est_detect_deinit),
              EST_FAMILY("text", "text boxes from a DB-style probability map: thresholded "
                         "regions as rotated rectangles, scored, unclipped, in reading order",
                         est_text_props, est_text_options, est_text_init, est_text_batch,
                         est_deinit),
              EST_FAMILY("ctc", "text from a recogniser's [N,T,C] scores: greedy CTC decoding "
                         "over a charset file, with a confidence",
                         est_ctc_props, est_ctc_options, est_ctc_init, est_ctc_batch,
                         est_ctc_deinit))
