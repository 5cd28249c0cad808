/* vision.h: what the files of the built-in "vision" plugin share: each
 * element's declarations (properties, ports, callbacks) that vision.c puts
 * into the plugin descriptor, and the small helpers every element uses
 * (checking its one input, describing a payload in an error, deriving and
 * pushing an output, adding a metadata/transform entry).
 *
 * Everything here is plugin-internal (hidden visibility: the plugin exports
 * only inferd_plugin_entry).
 */
#ifndef INFERD_VISION_H
#define INFERD_VISION_H

#include <inferd/plugin.h>

#include <stddef.h>
#include <stdint.h>

/* ---- the elements ---------------------------------------------------------- */

/* image_decoder: image/jpeg, image/png bytes -> image/rgb, image/bgr, image/gray. */
extern const inferd_prop_spec vision_decoder_props[];
extern const inferd_port_spec vision_decoder_in[], vision_decoder_out[];
inferd_status vision_decoder_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status vision_decoder_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                     inferd_error *err);
void vision_decoder_deinit(inferd_instance *self);

/* image_resize: images -> images of a set size, with a resize transform. */
extern const inferd_prop_spec vision_resize_props[];
extern const inferd_port_spec vision_resize_in[], vision_resize_out[];
inferd_status vision_resize_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status vision_resize_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                    inferd_error *err);
void vision_resize_deinit(inferd_instance *self);

/* image_crop: images -> a rectangle of them (zero-copy), with a crop transform. */
extern const inferd_prop_spec vision_crop_props[];
extern const inferd_port_spec vision_crop_in[], vision_crop_out[];
inferd_status vision_crop_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status vision_crop_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                  inferd_error *err);
void vision_crop_deinit(inferd_instance *self);

/* image_to_tensor: images -> one normalised tensor (metadata/tensor). */
extern const inferd_prop_spec vision_encoder_props[];
extern const inferd_port_spec vision_encoder_in[], vision_encoder_out[];
inferd_status vision_encoder_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status vision_encoder_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                     inferd_error *err);
void vision_encoder_deinit(inferd_instance *self);

extern const inferd_prop_spec vision_object_crop_props[];
extern const inferd_port_spec vision_object_crop_in[], vision_object_crop_out[];
inferd_status vision_object_crop_init(inferd_instance *self, const inferd_props *p,
                                      inferd_error *err);
inferd_status vision_object_crop_process(inferd_instance *self, inferd_buffer *const *in,
                                         size_t n, inferd_error *err);
void vision_object_crop_deinit(inferd_instance *self);

/* overlay: the frame's results drawn on its picture. */
extern const inferd_prop_spec vision_overlay_props[];
extern const inferd_port_spec vision_overlay_in[], vision_overlay_out[];
inferd_status vision_overlay_init(inferd_instance *self, const inferd_props *p, inferd_error *err);
inferd_status vision_overlay_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                     inferd_error *err);
void vision_overlay_deinit(inferd_instance *self);

extern const inferd_prop_spec vision_to_tensor_props[];
extern const inferd_port_spec vision_to_tensor_in[], vision_to_tensor_out[];
inferd_status vision_to_tensor_init(inferd_instance *self, const inferd_props *p,
                                    inferd_error *err);
inferd_status vision_to_tensor_process(inferd_instance *self, inferd_buffer *const *in, size_t n,
                                       inferd_error *err);
void vision_to_tensor_deinit(inferd_instance *self);

/* ---- shared helpers (vision.c) --------------------------------------------- */

/* The port formats of decoded images that the elements accept and produce. */
#define VISION_IMAGE_FORMATS "image/rgb", "image/bgr", "image/gray"

/* Describes a buffer's payload for an error message: "image/jpeg bytes",
 * "image/rgb image", "metadata/tensor tensors", "no payload". */
const char *vision_payload_text(const inferd_buffer *buf, char *text, size_t size);

/* Every element's start: its one input (*in; EINVAL unless there is
 * exactly one, non-NULL), and an input that carries an error (an earlier
 * stage failed) sent on unchanged so that it reaches the sink. True: go on
 * with *in (*st is INFERD_OK); false: the call is done, *st says how. */
bool vision_begin(inferd_instance *self, inferd_buffer *const *in_bufs, size_t n,
                  inferd_buffer **in, inferd_status *st, inferd_error *err);

/* The decoded image of a buffer, or INFERD_ETYPE "expected an image payload,
 * got image/jpeg bytes". Also refuses (INFERD_EUNSUPPORTED) an image whose
 * pixel format is not gray, rgb or bgr, which is all the ports promise. */
inferd_status vision_input_image(const inferd_buffer *in, const inferd_image **img,
                                 inferd_error *err);

/* Derives a buffer from `in`, sets `img` as its payload (taken, also on
 * failure), adds `meta` (taken, may be NULL) under the instance's name with
 * `meta_format`, and pushes it on port 0. */
inferd_status vision_push_image(inferd_instance *self, inferd_buffer *in, inferd_image *img,
                                const char *meta_format, inferd_value *meta, inferd_error *err);

/* Small value builders: set key to an int / a double / a string on obj.
 * Return INFERD_ENOMEM on failure (the object keeps what was set). */
inferd_status vision_set_int(inferd_value *obj, const char *key, int64_t v, inferd_error *err);
inferd_status vision_set_double(inferd_value *obj, const char *key, double v, inferd_error *err);
inferd_status vision_set_string(inferd_value *obj, const char *key, const char *v,
                                inferd_error *err);

/* "an" before a word starting with a vowel, else "a" (for messages). */
const char *vision_a(const char *word);

/* A copy of s (malloc'd), or NULL when memory is exhausted. */
/* The dataSource property: *out a copy of the element named, or NULL for
 * "auto" (the element linked to the input); false when out of memory. */
bool vision_data_source(const inferd_props *p, char **out);
char *vision_strdup(const char *s);

#endif /* INFERD_VISION_H */
