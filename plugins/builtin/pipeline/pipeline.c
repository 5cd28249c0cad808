/* plugins/builtin/pipeline: the pipeline's own elements, a plugin like any:
 *
 *   appsrc          where the application's buffers enter (inferd_pipeline_push)
 *   appsink         where results leave for the application (inferd_pipeline_pull)
 *   synchronize     joins n inputs of the same frame into one buffer (MIMO, sync)
 *   json_serialize  the frame's metadata as one JSON object (result/json)
 *   filesrc         reads an image file, or every image of a folder (a producer)
 *   filesink        appends each result to a file, one JSON object a line
 *   tee             one input to every linked output (branches)
 *
 * appsrc has no input port: the engine feeds it. appsink's only output is
 * dynamic and left unlinked: the engine hands what it pushes there to the
 * application.
 */
#include "inferd/plugin.h"
#include "pipeline_elements.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- appsrc, appsink: pass the buffer on ---------------------------------- */

static inferd_status pass_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                  inferd_error *err)
{
    if (n < 1 || !in[0])
        return inferd_error_set(err, INFERD_EINVAL, "no input buffer");
    return inferd_instance_push(self, 0, inferd_buffer_ref(in[0]), err);
}

static const inferd_port_spec any_out[] = {INFERD_PORT_STATIC("ANY"), INFERD_PORT_END};
static const inferd_port_spec any_in[] = {INFERD_PORT_STATIC("ANY"), INFERD_PORT_END};
static const inferd_port_spec app_out[] = {INFERD_PORT_DYNAMIC("ANY"), INFERD_PORT_END};

/* ---- synchronize ------------------------------------------------------------ */

static const inferd_port_spec sync_in[] = {INFERD_PORT_STATIC("ANY"), INFERD_PORT_DYNAMIC("ANY"),
                                           INFERD_PORT_END};

/* Called with every input of one frame (the engine runs it in sync mode
 * whatever its status says, see init). The output is derived from input 0
 * and carries its payload (a view of its image or tensors, which the derived
 * buffer keeps alive; a copy of a value), so that what follows the join sees
 * the image; the other inputs' value metadata are copied into it under their
 * producers' names, so one buffer carries what every branch found. */
static inferd_status sync_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    if (inferd_props_int(p, "status") != 1)
        return inferd_error_set(err, INFERD_EINVAL, "synchronize needs \"status\": 1 (it joins "
                                "inputs of the same frame)");
    return INFERD_OK;
}

/* out (derived from in) shows in's payload. */
static inferd_status carry_payload(inferd_buffer *out, inferd_buffer *in, inferd_error *err)
{
    switch (inferd_buffer_payload_kind(in)) {
    case INFERD_PAYLOAD_VALUE:
        return inferd_buffer_set_value(out, inferd_buffer_format(in),
                                       inferd_value_copy(inferd_buffer_value(in)), err);
    case INFERD_PAYLOAD_IMAGE: {
        const inferd_image *im = inferd_buffer_image(in);
        inferd_image *view = NULL;
        inferd_status st = inferd_image_wrap(im->format, im->width, im->height, im->stride,
                                             im->data, NULL, NULL, &view, err);
        return st == INFERD_OK ? inferd_buffer_set_image(out, view, err) : st;
    }
    case INFERD_PAYLOAD_TENSORS: {
        size_t n = inferd_buffer_tensor_count(in);
        inferd_tensor **views = calloc(n ? n : 1, sizeof *views);
        inferd_status st = views ? INFERD_OK
                                 : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        for (size_t i = 0; i < n && st == INFERD_OK; i++) {
            const inferd_tensor *t = inferd_buffer_tensor(in, i);
            st = inferd_tensor_wrap(t->dtype, t->ndim, t->shape, t->data, t->nbytes, NULL, NULL,
                                    &views[i], err);
            if (st == INFERD_OK && t->name)
                st = inferd_tensor_set_name(views[i], t->name, err);
        }
        if (st == INFERD_OK)
            return inferd_buffer_set_tensors(out, views, n, err);
        for (size_t i = 0; views && i < n; i++)
            inferd_tensor_free(views[i]);
        free(views);
        return st;
    }
    case INFERD_PAYLOAD_NONE:
        break;
    }
    return INFERD_OK;
}

static inferd_status sync_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                  inferd_error *err)
{
    inferd_buffer *out = inferd_buffer_derive(in[0]);
    if (!out)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status cst = carry_payload(out, in[0], err);
    if (cst != INFERD_OK) {
        inferd_buffer_unref(out);
        return cst;
    }
    for (size_t i = 1; i < n; i++) {
        inferd_meta m;
        for (size_t k = 0; in[i] && inferd_buffer_meta_at(in[i], k, &m); k++) {
            if (!m.value || inferd_buffer_find_meta(out, m.producer, m.format, NULL))
                continue;
            inferd_status st = inferd_buffer_add_meta_value(out, m.producer, m.format,
                                                            inferd_value_copy(m.value), err);
            if (st != INFERD_OK) {
                inferd_buffer_unref(out);
                return st;
            }
        }
    }
    return inferd_instance_push(self, 0, out, err);
}

/* ---- json_serialize ------------------------------------------------------- */

/* {"frame": id, "<producer>": value, ...} for every value entry of the
 * frame (transforms left out); of several entries of one producer the last
 * wins. With the common property dataSource naming an element (not "auto"),
 * only that element's entries. A frame with an error never gets here: the
 * engine passes it on. */
static inferd_status serialize_init(inferd_instance *self, const inferd_props *p,
                                    inferd_error *err)
{
    const char *source = inferd_props_string(p, "dataSource");
    if (strcmp(source, "auto") == 0 || !*source)
        return INFERD_OK;
    size_t len = strlen(source);
    char *copy = malloc(len + 1);
    if (!copy)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    memcpy(copy, source, len + 1);
    inferd_instance_set_state(self, copy);
    return INFERD_OK;
}

static void serialize_deinit(inferd_instance *self) { free(inferd_instance_state(self)); }

static inferd_status serialize_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                       inferd_error *err)
{
    const char *only = inferd_instance_state(self);
    inferd_value *obj = inferd_value_object();
    if (!obj)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_value_object_set(obj, "frame", inferd_value_int((int64_t)inferd_buffer_frame_id(in[0])),
                            NULL);
    inferd_meta m;
    for (size_t k = 0; inferd_buffer_meta_at(in[0], k, &m); k++) {
        if (!m.value || strcmp(m.format, "metadata/transform") == 0 ||
            (only && strcmp(m.producer, only) != 0))
            continue;
        /* A later entry of the same producer (a later stage) wins. */
        inferd_value_object_set(obj, m.producer, inferd_value_copy(m.value), NULL);
    }
    inferd_buffer *out = inferd_buffer_derive(in[0]);
    if (!out) {
        inferd_value_free(obj);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_status st = inferd_buffer_set_value(out, "result/json", obj, err);
    if (st != INFERD_OK) {
        inferd_buffer_unref(out);
        return st;
    }
    return inferd_instance_push(self, 0, out, err);
}

static const inferd_port_spec json_out[] = {INFERD_PORT_STATIC("result/json"), INFERD_PORT_END};

/* ---- tee: one input, many branches ------------------------------------------ */

/* Each branch gets its own buffer derived from the input, showing its
 * payload (carry_payload: no pixels copied): what one branch adds to its
 * frame stays out of the others', as GStreamer's tee keeps branches apart. */
static inferd_status tee_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                 inferd_error *err)
{
    if (n < 1 || !in[0])
        return inferd_error_set(err, INFERD_EINVAL, "no input buffer");
    size_t outs = inferd_instance_output_count(self);
    for (size_t o = 0; o < (outs ? outs : 1); o++) {
        inferd_buffer *b = inferd_buffer_derive(in[0]);
        if (!b)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        inferd_status st = carry_payload(b, in[0], err);
        if (st == INFERD_OK)
            st = inferd_instance_push(self, o, b, err);
        else
            inferd_buffer_unref(b);
        if (st != INFERD_OK)
            return st;
    }
    return INFERD_OK;
}

static const inferd_port_spec tee_out[] = {INFERD_PORT_DYNAMIC("ANY"), INFERD_PORT_END};

/* ---- filesrc: a producer ---------------------------------------------------- */

#define FILESRC_MAX_BYTES (256u << 20)

static const inferd_prop_spec filesrc_props[] = {
    INFERD_PROP_STRING("location", "an image file, or a folder whose .jpg, .jpeg and .png files "
                       "are read in name order", NULL),
    INFERD_PROP_END,
};

static bool has_image_suffix(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    char low[8] = {0};
    for (size_t i = 0; i < sizeof low - 1 && dot[i]; i++)
        low[i] = (char)(dot[i] >= 'A' && dot[i] <= 'Z' ? dot[i] + 32 : dot[i]);
    return strcmp(low, ".jpg") == 0 || strcmp(low, ".jpeg") == 0 || strcmp(low, ".png") == 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The files to read: location itself, or the images of the folder, sorted.
 * Returns a malloc'd array of malloc'd paths (and *n), or NULL with err. */
static char **filesrc_list(const char *location, size_t *n, inferd_error *err)
{
    DIR *d = opendir(location);
    char **list = NULL;
    *n = 0;
    if (!d) {
        if (errno != ENOTDIR) {
            inferd_error_set(err, INFERD_EIO, "cannot read %s: %s", location, strerror(errno));
            return NULL;
        }
        list = malloc(sizeof *list);
        size_t len = strlen(location);
        if (!list || !(list[0] = malloc(len + 1))) {
            free(list);
            inferd_error_set(err, INFERD_ENOMEM, "out of memory");
            return NULL;
        }
        memcpy(list[0], location, len + 1);
        *n = 1;
        return list;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!has_image_suffix(e->d_name))
            continue;
        char **grown = realloc(list, (*n + 1) * sizeof *list);
        size_t len = strlen(location) + strlen(e->d_name) + 2;
        if (!grown || !(grown[*n] = malloc(len))) {
            list = grown ? grown : list;
            break;
        }
        list = grown;
        snprintf(list[*n], len, "%s/%s", location, e->d_name);
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(list, *n, sizeof *list, by_name);
    return list ? list : malloc(1); /* an empty folder: an empty stream */
}

/* One frame for one file: its bytes, or the reason it could not be read. */
static inferd_buffer *filesrc_read(inferd_instance *self, const char *path)
{
    inferd_buffer *b = inferd_buffer_new();
    if (!b)
        return NULL;
    inferd_value *meta = inferd_value_object();
    inferd_value_object_set(meta, "file", inferd_value_string(path), NULL);
    inferd_buffer_add_meta_value(b, inferd_instance_name(self), "metadata/attribute", meta, NULL);
    inferd_error err = {0};
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size = -1;
    if (!f) {
        inferd_error_set(&err, INFERD_EIO, "cannot open %s: %s", path, strerror(errno));
    } else if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        inferd_error_set(&err, INFERD_EIO, "cannot read %s: %s", path, strerror(errno));
    } else if ((unsigned long)size > FILESRC_MAX_BYTES) {
        inferd_error_set(&err, INFERD_ERANGE, "%s is larger than %u MiB", path,
                         FILESRC_MAX_BYTES >> 20);
    } else if (!(data = malloc(size ? (size_t)size : 1)) ||
               fread(data, 1, (size_t)size, f) != (size_t)size) {
        inferd_error_set(&err, INFERD_EIO, "cannot read %s", path);
    }
    if (f)
        fclose(f);
    if (err.code != INFERD_OK) {
        free(data);
        inferd_buffer_set_error(b, &err);
        return b;
    }
    const char *mime = inferd_image_codec_mime(inferd_image_sniff(data, (size_t)size));
    inferd_buffer_set_value(b, mime ? mime : "application/octet-stream",
                            inferd_value_bytes_take(data, (size_t)size), NULL);
    return b;
}

/* The producer's one call: every file, in order; a push that fails (the
 * pipeline is stopping) ends it. */
static inferd_status filesrc_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                     inferd_error *err)
{
    size_t count = 0;
    char **list = filesrc_list(inferd_instance_state(self), &count, err);
    if (!list)
        return err ? err->code : INFERD_EIO;
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < count; i++) {
        if (st == INFERD_OK && inferd_instance_stopping(self))
            st = inferd_error_set(err, INFERD_ESTATE, "stopped after %zu of %zu files", i, count);
        if (st == INFERD_OK) {
            inferd_buffer *b = filesrc_read(self, list[i]);
            st = b ? inferd_instance_push(self, 0, b, err)
                   : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        free(list[i]);
    }
    free(list);
    return st;
}

static inferd_status filesrc_init(inferd_instance *self, const inferd_props *p,
                                  inferd_error *err)
{
    const char *location = inferd_props_string(p, "location");
    size_t len = strlen(location);
    char *copy = malloc(len + 1);
    if (!copy)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    memcpy(copy, location, len + 1);
    inferd_instance_set_state(self, copy);
    return INFERD_OK;
}

static void filesrc_deinit(inferd_instance *self) { free(inferd_instance_state(self)); }

static const inferd_port_spec filesrc_out[] = {INFERD_PORT_STATIC("image/jpeg", "image/png"),
                                               INFERD_PORT_END};

/* ---- filesink --------------------------------------------------------------- */

static const inferd_prop_spec filesink_props[] = {
    INFERD_PROP_STRING("location", "the file to write, one JSON object a line", NULL),
    INFERD_PROP_BOOL("append", "append to the file instead of truncating it", false),
    INFERD_PROP_END,
};

static inferd_status filesink_init(inferd_instance *self, const inferd_props *p,
                                   inferd_error *err)
{
    const char *path = inferd_props_string(p, "location");
    FILE *f = fopen(path, inferd_props_bool(p, "append") ? "a" : "w");
    if (!f)
        return inferd_error_set(err, INFERD_EIO, "cannot open %s: %s", path, strerror(errno));
    inferd_instance_set_state(self, f);
    return INFERD_OK;
}

/* Writes the JSON payload, or the frame's error, as one line. */
static inferd_status filesink_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                      inferd_error *err)
{
    FILE *f = inferd_instance_state(self);
    const inferd_value *v = inferd_buffer_value(in[0]);
    if (!v || inferd_value_is(v, INFERD_VALUE_BYTES))
        return inferd_error_set(err, INFERD_ETYPE, "filesink writes JSON results; got %s",
                                inferd_buffer_format(in[0]) ? inferd_buffer_format(in[0])
                                                            : "no payload");
    char *text = NULL;
    size_t len = 0;
    inferd_status st = inferd_value_to_json(v, INFERD_JSON_COMPACT, &text, &len, err);
    if (st != INFERD_OK)
        return st;
    bool ok = fwrite(text, 1, len, f) == len && fputc('\n', f) != EOF && fflush(f) == 0;
    free(text);
    if (!ok)
        return inferd_error_set(err, INFERD_EIO, "write failed: %s", strerror(errno));
    return INFERD_OK;
}

static void filesink_deinit(inferd_instance *self)
{
    FILE *f = inferd_instance_state(self);
    if (f)
        fclose(f);
}

static const inferd_port_spec json_in[] = {INFERD_PORT_STATIC("result/json"), INFERD_PORT_END};

INFERD_PLUGIN("pipeline", "1.0.0",
              INFERD_ELEMENT("appsrc", NULL, NULL, any_out, NULL, pass_process, NULL),
              INFERD_ELEMENT("appsink", NULL, any_in, app_out, NULL, pass_process, NULL),
              INFERD_ELEMENT("synchronize", NULL, sync_in, any_out, sync_init, sync_process, NULL),
              INFERD_ELEMENT("json_serialize", NULL, any_in, json_out, serialize_init,
                             serialize_process, serialize_deinit),
              INFERD_ELEMENT("filesink", filesink_props, json_in, NULL, filesink_init,
                             filesink_process, filesink_deinit),
              INFERD_COMPONENT(INFERD_KIND_ELEMENT, .name = "tee",
                               .description = "sends each frame to every linked output, each "
                                              "branch with its own buffer (the payload shared)",
                               .inputs = any_in, .outputs = tee_out,
                               .ops = INFERD_ELEMENT_OPS(NULL, tee_process, NULL)),
              INFERD_COMPONENT(INFERD_KIND_ELEMENT, .name = "filesrc",
                               .description = "reads an image file, or every image of a folder",
                               .props = filesrc_props, .outputs = filesrc_out,
                               .flags = INFERD_COMPONENT_PRODUCER,
                               .ops = INFERD_ELEMENT_OPS(filesrc_init, filesrc_process,
                                                         filesrc_deinit)),
              INFERD_COMPONENT(INFERD_KIND_ELEMENT, .name = "object_join",
                               .description = "gathers the per-object results of an "
                                              "object_crop's fan-out back onto their objects: "
                                              "one buffer per frame",
                               .props = pipeline_join_props, .inputs = any_in,
                               .outputs = any_out, .flags = INFERD_COMPONENT_TAKES_ERRORS,
                               .ops = INFERD_ELEMENT_OPS(pipeline_join_init,
                                                         pipeline_join_process,
                                                         pipeline_join_deinit)))
