// sample.cpp: the C sample (plugins/examples/c/sample) written in C++, as
// the pipeline seed's users write their plugins: the same element,
// mxpi_sampleplugin, declared with the same macros as in C; and a function
// for rules, word_count(text), the number of words in a string.
//
// Build it out of the tree with nothing but the installed headers:
//   c++ -std=c++20 -O2 -fPIC -shared $(pkg-config --cflags inferd-plugin) sample.cpp
//       -o sample_cpp.so
// The entry point has C linkage (INFERD_PLUGIN says so); no exception may
// leave a callback, so each one that can throw catches at its edge.
#include <inferd/plugin.h>

#include <new>
#include <sstream>
#include <string>

namespace {

const inferd_prop_spec props[] = {
    INFERD_PROP_STRING("descriptionMessage", "a message attached to every image", "hello"),
    INFERD_PROP_INT("minHeight", "images lower than this are refused", 6, 1, 4096),
    INFERD_PROP_END,
};
const inferd_port_spec in[] = {INFERD_PORT_STATIC("image/rgb", "image/bgr"), INFERD_PORT_END};
const inferd_port_spec out[] = {INFERD_PORT_STATIC("image/rgb", "image/bgr"), INFERD_PORT_END};

struct Sample {
    std::string message;
    int64_t min_height;
};

inferd_status sample_init(inferd_instance *self, const inferd_props *p, inferd_error *err)
{
    try {
        auto *s = new Sample{inferd_props_string(p, "descriptionMessage"),
                             inferd_props_int(p, "minHeight")};
        inferd_instance_set_state(self, s);
        return INFERD_OK;
    } catch (const std::bad_alloc &) {
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
}

inferd_status sample_process(inferd_instance *self, inferd_buffer *const *in_bufs, size_t n,
                             inferd_error *err)
{
    auto *s = static_cast<Sample *>(inferd_instance_state(self));
    if (n != 1 || !in_bufs[0])
        return inferd_error_set(err, INFERD_EINVAL, "expected one input, got %zu", n);
    const inferd_image *img = inferd_buffer_image(in_bufs[0]);
    if (!img) {
        const char *format = inferd_buffer_format(in_bufs[0]);
        return inferd_error_set(err, INFERD_ETYPE, "expected a decoded image, got %s",
                                format ? format : "nothing");
    }
    if (img->height < s->min_height)
        return inferd_error_set(err, INFERD_ERANGE, "image height %u is below minHeight %lld",
                                img->height, static_cast<long long>(s->min_height));
    inferd_value *meta = inferd_value_object();
    inferd_value_object_set(meta, "message", inferd_value_string(s->message.c_str()), nullptr);
    inferd_value_object_set(meta, "width", inferd_value_int(img->width), nullptr);
    inferd_value_object_set(meta, "height", inferd_value_int(img->height), nullptr);
    inferd_value_object_set(
        meta, "frame",
        inferd_value_int(static_cast<int64_t>(inferd_buffer_frame_id(in_bufs[0]))), nullptr);
    inferd_status st = inferd_buffer_add_meta_value(in_bufs[0], inferd_instance_name(self),
                                                    "metadata/attribute", meta, err);
    if (st != INFERD_OK)
        return st;
    return inferd_instance_push(self, 0, inferd_buffer_ref(in_bufs[0]), err);
}

void sample_deinit(inferd_instance *self) { delete static_cast<Sample *>(inferd_instance_state(self)); }

// word_count(text): words separated by white space; NULL in, NULL out.
inferd_status word_count(inferd_instance *, const inferd_value *const *args, size_t,
                         inferd_value **result, inferd_error *err)
{
    if (inferd_value_is(args[0], INFERD_VALUE_NULL))
        return INFERD_OK;
    const char *text = inferd_value_string_or(args[0], nullptr);
    if (!text)
        return inferd_error_set(err, INFERD_ETYPE, "word_count: expected a string, got %s",
                                inferd_value_type_name(inferd_value_type_of(args[0])));
    try {
        std::istringstream words{std::string(text)};
        int64_t n = 0;
        for (std::string w; words >> w;)
            n++;
        *result = inferd_value_int(n);
        return *result ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    } catch (const std::bad_alloc &) {
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
}

} // namespace

INFERD_PLUGIN("sample_cpp", "1.0.0",
              INFERD_ELEMENT("mxpi_sampleplugin_cpp", props, in, out, sample_init, sample_process,
                             sample_deinit),
              INFERD_FUNCTION("word_count", 1, 1, nullptr, nullptr, word_count, nullptr))
