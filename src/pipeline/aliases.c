/* pipeline/aliases.c: the pipeline seed's framework's element names and
 * their common property names, accepted so that a pipeline file written for
 * it runs where inferd has the counterpart (docs/pipelines.md, "Migrating").
 * A property with no counterpart is refused with what to do instead; the
 * file's faults come together like every other kind. */
#include "pipeline/internal.h"

#include <stdio.h>
#include <string.h>

typedef struct prop_alias {
    const char *from;   /* the seed's name */
    const char *to;     /* inferd's; NULL: no counterpart; "": accepted, changes nothing */
    const char *advice; /* with to NULL: what to do */
} prop_alias;

typedef struct factory_alias {
    const char *from, *to;
    const prop_alias *props; /* NULL-terminated (from) */
} factory_alias;

static const prop_alias decoder_props[] = {
    {"imageFormat", NULL, "remove it: the codec is read from the bytes (JPEG or PNG)"},
    {"cvProcessor", NULL, "remove it: decoding runs on the CPU (libjpeg-turbo, libspng)"},
    {"outputDataFormat", "format", NULL},
    {NULL, NULL, NULL},
};
static const prop_alias resize_props[] = {
    {"resizeType", NULL, "remove it and use keepAspect, padPosition, limit or shortSide"},
    {"paddingType", NULL, "remove it and use keepAspect with padValue"},
    {"cvProcessor", NULL, "remove it: resizing runs on the CPU"},
    {NULL, NULL, NULL},
};
static const prop_alias infer_props[] = {
    {"waitingTime", NULL, "remove it: batching is the estimators' (maxDelayUs, docs/service.md)"},
    {"dynamicStrategy", NULL, "remove it: the batch follows the model (docs/service.md)"},
    {"singleBatchInfer", NULL, "remove it: one frame runs at a time here"},
    {"outputDeviceId", NULL, "remove it: outputs come back to the host"},
    {"outputHasBatchDim", NULL, "remove it: outputs keep the model's batch dimension"},
    {"skipModelCheck", NULL, "remove it: inputs are always checked against the model"},
    {NULL, NULL, NULL},
};
static const prop_alias serialize_props[] = {
    {"outputDataKeys", "dataSource", NULL},
    {"eraseHeaderVecFlag", NULL, "remove it: results carry no header"},
    {NULL, NULL, NULL},
};
/* appsrc and appsink keep their names; GStreamer's read size means nothing
 * where a frame travels whole, as one buffer. */
static const prop_alias app_props[] = {
    {"blocksize", "", NULL},
    {NULL, NULL, NULL},
};
static const prop_alias none[] = {{NULL, NULL, NULL}};

static const factory_alias aliases[] = {
    {"mxpi_imagedecoder", "image_decoder", decoder_props},
    {"mxpi_imageresize", "image_resize", resize_props},
    {"mxpi_imagecrop", "image_crop", none},
    {"mxpi_tensorinfer", "tensor_infer", infer_props},
    {"mxpi_dataserialize", "json_serialize", serialize_props},
    {"mxpi_synchronize", "synchronize", none},
    {"appsrc", "appsrc", app_props},
    {"appsink", "appsink", app_props},
    {NULL, NULL, NULL},
};

const char *pl_alias_factory(const char *factory)
{
    for (size_t i = 0; aliases[i].from; i++)
        if (strcmp(aliases[i].from, factory) == 0)
            return aliases[i].to;
    return NULL;
}

inferd_status pl_alias_props(const char *factory, const char *element, const char *origin,
                             const inferd_value *props, inferd_value **out, inferd_error *err)
{
    *out = NULL;
    const factory_alias *a = NULL;
    for (size_t i = 0; aliases[i].from && !a; i++)
        if (strcmp(aliases[i].from, factory) == 0)
            a = &aliases[i];
    if (!a || !props)
        return INFERD_OK;
    inferd_value *copy = inferd_value_object();
    char msg[INFERD_ERROR_MESSAGE_MAX] = "";
    size_t pos = 0, faults = 0;
    const char *key;
    inferd_value *v;
    for (size_t k = 0; copy && inferd_value_object_entry(props, k, &key, &v); k++) {
        const prop_alias *pa = NULL;
        for (size_t j = 0; a->props[j].from && !pa; j++)
            if (strcmp(a->props[j].from, key) == 0)
                pa = &a->props[j];
        if (pa && !pa->to) {
            if (pos < sizeof msg)
                pos += (size_t)snprintf(msg + pos, sizeof msg - pos,
                                        "%selement %s (%s, as %s): property '%s' has no "
                                        "counterpart: %s", faults ? "; " : "", element, factory,
                                        a->to, key, pa->advice);
            faults++;
            continue;
        }
        if (pa && !pa->to[0])
            continue; /* accepted, and nothing to do */
        if (inferd_value_object_set(copy, pa ? pa->to : key, inferd_value_copy(v), NULL) !=
            INFERD_OK) {
            inferd_value_free(copy);
            copy = NULL;
        }
    }
    if (!copy)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (faults) {
        inferd_value_free(copy);
        return inferd_error_set(err, INFERD_EINVAL, "%s: %s", origin, msg);
    }
    *out = copy;
    return INFERD_OK;
}
