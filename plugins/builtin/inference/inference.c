/* plugins/builtin/inference/inference.c: the "inference" plugin and its
 * element tensor_infer, which runs a model through any backend component.
 *
 * Owns, per element instance (infer_state): one reference on the shared
 * model (inferd_model_open in init, inferd_model_close in deinit) and the
 * model's input descriptions (names borrowed from the backend while the
 * model is open). Per buffer, process owns the array that orders the input
 * tensors (freed before it returns) and the output tensors until they are
 * handed to the derived buffer it pushes.
 *
 * Matching (docs/backends.md): the input buffer's tensors are matched to the
 * model's inputs by name when any tensor's name is one of the model's input
 * names (then every input must be found by name), else by position. The
 * buffer must carry exactly as many tensors as the model has inputs.
 *
 * Pictures: a model with one input may also be given an image (image/rgb,
 * bgr, gray), as the pipeline seed's tensor inference takes one: it becomes
 * the model's input through the input contract (the model's metadata
 * "inferd.input" with the `input` property laid over it, fitted to the
 * model: the estimators' way, docs/models.md), and a metadata/transform
 * entry (a resize) lets the post-processors map their results back to the
 * picture. A contract that cannot fit the model is said when an image
 * comes; tensors still run.
 */
#include <inferd/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct infer_state {
    inferd_model *model;      /* owned: one reference on the shared model */
    const char *path;         /* borrowed from the instance's props */
    size_t n_in, n_out;
    inferd_tensor_info *in;   /* owned array; names borrowed from the model */
    inferd_input_contract contract; /* for images, when fits */
    bool fits;
    char why[sizeof ((inferd_error *)0)->message]; /* why images cannot be taken, when !fits */
} infer_state;

static void infer_deinit(inferd_instance *self)
{
    infer_state *s = inferd_instance_state(self);
    if (!s)
        return;
    inferd_model_close(s->model);
    free(s->in);
    free(s);
    inferd_instance_set_state(self, NULL);
}

/* backendOptions: a JSON object; *out is NULL for an empty one, so that the
 * element shares a model with callers that pass no options at all.
 *
 * For ONNX Runtime, allow_spinning is false unless the options say: its
 * idle pool threads spin for the next run by default, burning the cores
 * that the pipeline's other elements (a decoder, an encoder, an overlay)
 * need at that very moment. Measured with bench/pipeline_service (a video
 * through decode, infer, overlay, encode on 2 cores): 0.90x the plain loop
 * with spinning, 1.33x without. */
static inferd_status parse_options(const char *backend, const char *text, inferd_value **out,
                                   inferd_error *err)
{
    *out = NULL;
    inferd_value *v = NULL;
    inferd_status st = inferd_value_from_json(text, strlen(text), 0, &v, err);
    if (st != INFERD_OK) {
        inferd_error_prefix(err, "property 'backendOptions'");
        return st;
    }
    if (!inferd_value_is(v, INFERD_VALUE_OBJECT)) {
        inferd_value_free(v);
        return inferd_error_set(err, INFERD_EINVAL, "property 'backendOptions' must be a JSON "
                                "object such as {\"provider\": \"cuda\"}, got: %s", text);
    }
    if (strcmp(backend, "onnxruntime") == 0 && !inferd_value_object_get(v, "allow_spinning") &&
        inferd_value_object_set(v, "allow_spinning", inferd_value_bool(false), err) != INFERD_OK) {
        inferd_value_free(v);
        return err ? err->code : INFERD_ENOMEM;
    }
    if (inferd_value_object_len(v) == 0)
        inferd_value_free(v);
    else
        *out = v;
    return INFERD_OK;
}

/* The contract for images. A bad `input` is refused at init (it is the
 * pipeline file's); a model that takes no picture is said when one comes. */
static inferd_status image_contract(infer_state *s, const inferd_value *given, inferd_error *err)
{
    inferd_error why = {0};
    inferd_status st =
        inferd_contract_from_model(s->model, s->path, given, &s->contract, &why);
    if (st != INFERD_OK && inferd_value_object_len(given) > 0) {
        *err = why;
        inferd_error_prefix(err, "property 'input'");
        return st;
    }
    if (st == INFERD_OK && s->n_in != 1)
        st = inferd_error_set(&why, INFERD_EUNSUPPORTED, "model %s has %zu inputs: only a model "
                              "of one input takes a picture", s->path, s->n_in);
    if (st == INFERD_OK)
        st = inferd_contract_fit(&s->contract, s->path, s->in[0].dtype, s->in[0].ndim,
                                 s->in[0].shape, &why);
    s->fits = st == INFERD_OK;
    memcpy(s->why, s->fits ? "" : why.message, s->fits ? 1 : sizeof s->why);
    return INFERD_OK;
}

/* An image as the model's input: a buffer derived from in with the tensor
 * and, when the picture was resized, its metadata/transform (*out). */
static inferd_status image_input(inferd_instance *self, const infer_state *s, inferd_buffer *in,
                                 inferd_buffer **out, inferd_error *err)
{
    const inferd_image *img = inferd_buffer_image(in);
    if (!s->fits)
        return inferd_error_set(err, INFERD_EUNSUPPORTED, "a picture cannot be this model's "
                                "input: %s (give tensors: image_to_tensor)", s->why);
    inferd_input_contract c = s->contract;
    inferd_geometry g;
    inferd_status st = inferd_contract_plan(&c, 0, 0, img->width, img->height, &g, err);
    if (st != INFERD_OK)
        return st;
    int64_t shape[4] = {1, inferd_pixel_channels(c.order), g.height, g.width};
    if (c.layout == INFERD_LAYOUT_NHWC) {
        shape[1] = g.height;
        shape[2] = g.width;
        shape[3] = inferd_pixel_channels(c.order);
    }
    inferd_tensor *t = NULL;
    inferd_tensor **list = malloc(sizeof *list);
    inferd_buffer *b = list ? inferd_buffer_derive(in) : NULL;
    if (!b) {
        free(list);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    st = inferd_tensor_new(c.dtype, 4, shape, &t, err);
    if (st == INFERD_OK)
        st = inferd_tensor_set_name(t, s->in[0].name, err);
    if (st == INFERD_OK)
        st = inferd_contract_fill(&c, img, &g, t->data, err);
    if (st == INFERD_OK) {
        list[0] = t;
        t = NULL;
        st = inferd_buffer_set_tensors(b, list, 1, err); /* takes list, also on failure */
        list = NULL;
    }
    bool moved = g.scale_x != 1.0 || g.scale_y != 1.0 || g.off_x != 0 || g.off_y != 0;
    if (st == INFERD_OK && moved) {
        inferd_value *tr = inferd_value_object();
        inferd_value_object_set(tr, "type", inferd_value_string("resize"), NULL);
        inferd_value_object_set(tr, "scale_x", inferd_value_double(g.scale_x), NULL);
        inferd_value_object_set(tr, "scale_y", inferd_value_double(g.scale_y), NULL);
        inferd_value_object_set(tr, "pad_x", inferd_value_int(g.off_x), NULL);
        inferd_value_object_set(tr, "pad_y", inferd_value_int(g.off_y), NULL);
        inferd_value_object_set(tr, "src_width", inferd_value_int(img->width), NULL);
        inferd_value_object_set(tr, "src_height", inferd_value_int(img->height), NULL);
        st = inferd_buffer_add_meta_value(b, inferd_instance_name(self), "metadata/transform", tr,
                                          err);
    }
    inferd_tensor_free(t);
    free(list);
    if (st != INFERD_OK) {
        inferd_buffer_unref(b);
        return st;
    }
    *out = b;
    return INFERD_OK;
}

static inferd_status infer_init(inferd_instance *self, const inferd_props *props,
                                inferd_error *err)
{
    infer_state *s = calloc(1, sizeof *s);
    if (!s)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_instance_set_state(self, s);
    s->path = inferd_props_string(props, "modelPath");
    inferd_value *options = NULL;
    inferd_status st = parse_options(inferd_props_string(props, "backend"),
                                     inferd_props_string(props, "backendOptions"), &options, err);
    if (st == INFERD_OK)
        st = inferd_model_open(self, inferd_props_string(props, "backend"), s->path, NULL, 0,
                               options, &s->model, err);
    inferd_value_free(options);
    if (st == INFERD_OK) {
        s->n_in = inferd_model_io_count(s->model, 0);
        s->n_out = inferd_model_io_count(s->model, 1);
        if (s->n_in == 0 || s->n_out == 0)
            st = inferd_error_set(err, INFERD_EUNSUPPORTED,
                                  "model %s has %zu input(s) and %zu output(s): tensor_infer needs "
                                  "at least one of each", s->path, s->n_in, s->n_out);
    }
    if (st == INFERD_OK && !(s->in = calloc(s->n_in, sizeof *s->in)))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->n_in && st == INFERD_OK; i++)
        st = inferd_model_io(s->model, 0, i, &s->in[i], err);
    if (st == INFERD_OK)
        st = image_contract(s, inferd_props_get(props, "input"), err);
    if (st != INFERD_OK)
        infer_deinit(self); /* the host never calls deinit after a failed init */
    return st;
}

/* "'a', 'b'": the model's input names, for messages. */
static const char *input_names(const infer_state *s, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->n_in && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s'%s'", i ? ", " : "", s->in[i].name);
    return buf;
}

static bool is_input_name(const infer_state *s, const char *name)
{
    for (size_t i = 0; name && i < s->n_in; i++)
        if (strcmp(s->in[i].name, name) == 0)
            return true;
    return false;
}

/* Puts the buffer's tensors in the model's input order (see the top). */
static inferd_status order_inputs(const infer_state *s, const inferd_buffer *buf,
                                  const inferd_tensor **ordered, inferd_error *err)
{
    char names[256];
    size_t n = inferd_buffer_tensor_count(buf);
    if (n != s->n_in)
        return inferd_error_set(err, INFERD_EINVAL, "model %s has %zu input(s) (%s); the buffer "
                                "carries %zu tensor(s)", s->path, s->n_in,
                                input_names(s, names, sizeof names), n);
    bool by_name = false;
    for (size_t k = 0; k < n && !by_name; k++)
        by_name = is_input_name(s, inferd_buffer_tensor(buf, k)->name);
    for (size_t i = 0; i < s->n_in; i++) {
        ordered[i] = by_name ? NULL : inferd_buffer_tensor(buf, i);
        for (size_t k = 0; by_name && k < n && !ordered[i]; k++) {
            const inferd_tensor *t = inferd_buffer_tensor(buf, k);
            if (t->name && strcmp(t->name, s->in[i].name) == 0)
                ordered[i] = t;
        }
        if (!ordered[i])
            return inferd_error_set(err, INFERD_EINVAL, "model %s needs input '%s': the buffer "
                                    "has no tensor of that name (matched by name, since some "
                                    "tensors are named after the model's inputs %s)", s->path,
                                    s->in[i].name, input_names(s, names, sizeof names));
    }
    return INFERD_OK;
}

static inferd_status run_tensors(inferd_instance *self, const infer_state *s, inferd_buffer *in,
                                 inferd_error *err);

static inferd_status infer_process(inferd_instance *self, inferd_buffer *const *inputs,
                                   size_t n_inputs, inferd_error *err)
{
    infer_state *s = inferd_instance_state(self);
    inferd_buffer *in = n_inputs > 0 ? inputs[0] : NULL, *pictured = NULL;
    if (!in)
        return INFERD_OK; /* asynchronous mode: nothing on this port yet */
    if (inferd_buffer_payload_kind(in) == INFERD_PAYLOAD_IMAGE) {
        inferd_status st = image_input(self, s, in, &pictured, err);
        if (st != INFERD_OK)
            return st;
        in = pictured; /* the tensor's buffer: what follows derives from it */
    }
    inferd_status result = run_tensors(self, s, in, err);
    inferd_buffer_unref(pictured);
    return result;
}

static inferd_status run_tensors(inferd_instance *self, const infer_state *s, inferd_buffer *in,
                                 inferd_error *err)
{
    if (inferd_buffer_payload_kind(in) != INFERD_PAYLOAD_TENSORS) {
        const char *format = inferd_buffer_format(in);
        return inferd_error_set(err, INFERD_EINVAL, "the input buffer carries %s%s; tensor_infer "
                                "needs metadata/tensor or a picture", format ? "" : "no payload",
                                format ? format : "");
    }
    const inferd_tensor **ordered = calloc(s->n_in, sizeof *ordered);
    inferd_tensor **outputs = calloc(s->n_out, sizeof *outputs); /* malloc'd: the buffer takes it */
    inferd_status st = ordered && outputs
                           ? order_inputs(s, in, ordered, err)
                           : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK)
        st = inferd_model_run(s->model, ordered, s->n_in, outputs, s->n_out, err);
    free(ordered);
    if (st != INFERD_OK) {
        free(outputs); /* a failed run leaves no tensor in it */
        return st;
    }
    inferd_buffer *out = inferd_buffer_derive(in);
    if (!out) {
        for (size_t j = 0; j < s->n_out; j++)
            inferd_tensor_free(outputs[j]);
        free(outputs);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    st = inferd_buffer_set_tensors(out, outputs, s->n_out, err); /* takes them, also on failure */
    if (st != INFERD_OK) {
        inferd_buffer_unref(out);
        return st;
    }
    return inferd_instance_push(self, 0, out, err);
}

static const inferd_prop_spec input_fields[] = {INFERD_CONTRACT_FIELDS, INFERD_PROP_END};
static const inferd_prop_spec props[] = {
    INFERD_PROP_STRING("modelPath", "the model file", NULL),
    INFERD_PROP_STRING("backend", "the backend component that runs the model", "onnxruntime"),
    INFERD_PROP_STRING("backendOptions", "the backend's options as a JSON object, e.g. "
                       "{\"provider\": \"cuda\", \"device_id\": 0}", "{}"),
    {.name = "input", .type = INFERD_PROP_TYPE_OBJECT, .fields = input_fields,
     .description = "for a picture in: how it becomes the model's input (dtype, layout, "
                    "channelOrder, scale, mean, std, resize; over the model's metadata; "
                    "docs/models.md)"},
    INFERD_PROP_END,
};
static const inferd_port_spec in_ports[] = {
    INFERD_PORT_STATIC("metadata/tensor", "image/rgb", "image/bgr", "image/gray"),
    INFERD_PORT_END};
static const inferd_port_spec out_ports[] = {INFERD_PORT_STATIC("metadata/tensor"),
                                             INFERD_PORT_END};

INFERD_PLUGIN("inference", "1.0.0",
              INFERD_ELEMENT("tensor_infer", props, in_ports, out_ports, infer_init, infer_process,
                             infer_deinit))
