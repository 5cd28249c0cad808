/* postprocess.c: the built-in "postprocess" plugin's descriptor: its three
 * elements, each in its own file (density_count.c, classify_topk.c,
 * segment_defects.c), that turn a model's output tensors into metadata
 * (metadata/points, metadata/class, metadata/object) on the same buffer.
 * See docs/elements-postprocess.md. */
#include "postprocess.h"

static const inferd_port_spec tensor_in[] = {INFERD_PORT_STATIC("metadata/tensor"),
                                             INFERD_PORT_END};
static const inferd_port_spec points_out[] = {INFERD_PORT_STATIC("metadata/points"),
                                              INFERD_PORT_END};
static const inferd_port_spec class_out[] = {INFERD_PORT_STATIC("metadata/class"),
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
                         pp_segment_deinit))
