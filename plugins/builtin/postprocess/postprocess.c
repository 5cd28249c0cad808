/* postprocess.c: the built-in "postprocess" plugin's descriptor: its
 * elements, each in its own file (density_count.c, classify_topk.c,
 * segment_defects.c, text_boxes.c, ctc_decode.c), that turn a model's output
 * tensors into metadata (metadata/points, metadata/class, metadata/object,
 * metadata/text) on the same buffer.
 * See docs/elements-postprocess.md. */
#include "postprocess.h"

static const inferd_port_spec tensor_in[] = {INFERD_PORT_STATIC("metadata/tensor"),
                                             INFERD_PORT_END};
static const inferd_port_spec points_out[] = {INFERD_PORT_STATIC("metadata/points"),
                                              INFERD_PORT_END};
static const inferd_port_spec class_out[] = {INFERD_PORT_STATIC("metadata/class"),
                                             INFERD_PORT_END};
static const inferd_port_spec text_out[] = {INFERD_PORT_STATIC("metadata/text"),
                                            INFERD_PORT_END};
static const inferd_port_spec boxes_out[] = {INFERD_PORT_STATIC("metadata/object"),
                                             INFERD_PORT_END};
static const inferd_port_spec object_out[] = {
    INFERD_PORT_STATIC("metadata/object", "metadata/semanticseg"), INFERD_PORT_END};

/* Every element here reads tensors. */
#define PP_ELEMENT(cname, cdesc, cprops, cout, finit, fprocess, fdeinit)                       \
    INFERD_COMPONENT(INFERD_KIND_ELEMENT, .name = (cname), .description = (cdesc),             \
                     .props = (cprops), .inputs = tensor_in, .outputs = (cout),                \
                     .ops = INFERD_ELEMENT_OPS(finit, fprocess, fdeinit))

INFERD_PLUGIN("postprocess", "1.0.0",
              PP_ELEMENT("density_count",
                         "count from a density map (its sum) and, for target T1, the peaks' "
                         "coordinates in the original image: metadata/points",
                         pp_density_props, points_out, pp_density_init, pp_density_process,
                         pp_density_deinit),
              PP_ELEMENT("classify_topk",
                         "the topK classes of a classifier's scores, with their labels: "
                         "metadata/class",
                         pp_classify_props, class_out, pp_classify_init, pp_classify_process,
                         pp_classify_deinit),
              PP_ELEMENT("segment_defects",
                         "connected regions of a segmentation mask as boxes in the original "
                         "image: metadata/object (and the mask: metadata/semanticseg)",
                         pp_segment_props, object_out, pp_segment_init, pp_segment_process,
                         pp_segment_deinit),
              PP_ELEMENT("text_boxes",
                         "DB text detection: a probability map's text regions as rotated "
                         "boxes in the original image, unclipped, in reading order: "
                         "metadata/object",
                         pp_text_props, boxes_out, pp_text_init, pp_text_process,
                         pp_text_deinit),
              PP_ELEMENT("ctc_decode",
                         "greedy CTC decoding of a recogniser's [T,C] scores over a charset: "
                         "metadata/text {text, confidence}",
                         pp_ctc_props, text_out, pp_ctc_init, pp_ctc_process, pp_ctc_deinit))
