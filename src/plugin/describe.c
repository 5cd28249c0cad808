/* plugin/describe.c: plugins and components as JSON-ready values, for
 * `inferd plugin list|inspect` and the HTTP plugin API. Owns nothing. */
#include "inferd/registry.h"

#include <stdio.h>

/* Small helpers that ignore allocation failure: a description missing a
 * field under memory pressure is acceptable, a crash is not. */
static void put(inferd_value *obj, const char *key, inferd_value *v)
{
    inferd_value_object_set(obj, key, v, NULL);
}

static void put_str(inferd_value *obj, const char *key, const char *s)
{
    if (s)
        put(obj, key, inferd_value_string(s));
}

static inferd_value *describe_props(const inferd_prop_spec *specs)
{
    inferd_value *arr = inferd_value_array();
    for (size_t i = 0; specs && specs[i].type != INFERD_PROP_TYPE_END; i++) {
        const inferd_prop_spec *s = &specs[i];
        inferd_value *p = inferd_value_object();
        put_str(p, "name", s->name);
        put_str(p, "type", inferd_prop_type_name(s->type));
        put_str(p, "description", s->description ? s->description : "");
        if (s->default_value)
            put_str(p, "default", s->default_value);
        else
            put(p, "required", inferd_value_bool(true));
        char allowed[256];
        put_str(p, "allowed", inferd_prop_spec_allowed(s, allowed, sizeof allowed));
        switch (s->type) {
        case INFERD_PROP_TYPE_INT:
            if (s->imin || s->imax) {
                put(p, "min", inferd_value_int(s->imin));
                put(p, "max", inferd_value_int(s->imax));
            }
            break;
        case INFERD_PROP_TYPE_UINT:
            if (s->umin || s->umax) {
                put(p, "min", inferd_value_int((int64_t)s->umin));
                put(p, "max", inferd_value_int((int64_t)s->umax));
            }
            break;
        case INFERD_PROP_TYPE_FLOAT:
        case INFERD_PROP_TYPE_DOUBLE:
            if (s->dmin != 0 || s->dmax != 0) {
                put(p, "min", inferd_value_double(s->dmin));
                put(p, "max", inferd_value_double(s->dmax));
            }
            break;
        case INFERD_PROP_TYPE_ENUM: {
            inferd_value *values = inferd_value_array();
            for (size_t k = 0; s->enum_values[k]; k++)
                inferd_value_array_push(values, inferd_value_string(s->enum_values[k]), NULL);
            put(p, "values", values);
            break;
        }
        default:
            break;
        }
        inferd_value_array_push(arr, p, NULL);
    }
    return arr;
}

static inferd_value *describe_ports(const inferd_port_spec *ports)
{
    inferd_value *arr = inferd_value_array();
    for (size_t i = 0; ports && ports[i].formats; i++) {
        inferd_value *p = inferd_value_object();
        put(p, "index", inferd_value_int((int64_t)i));
        put_str(p, "presence", ports[i].dynamic ? "dynamic" : "static");
        inferd_value *formats = inferd_value_array();
        for (size_t f = 0; ports[i].formats[f]; f++)
            inferd_value_array_push(formats, inferd_value_string(ports[i].formats[f]), NULL);
        put(p, "formats", formats);
        inferd_value_array_push(arr, p, NULL);
    }
    return arr;
}

inferd_value *inferd_describe_component(const inferd_component *c)
{
    inferd_value *o = inferd_value_object();
    put_str(o, "name", c->name);
    put_str(o, "kind", inferd_component_kind_name(c->kind));
    put_str(o, "description", c->description ? c->description : "");
    put(o, "properties", describe_props(c->props));
    switch (c->kind) {
    case INFERD_KIND_ELEMENT:
        put(o, "common_properties", describe_props(inferd_element_common_props()));
        put(o, "inputs", describe_ports(c->inputs));
        put(o, "outputs", describe_ports(c->outputs));
        break;
    case INFERD_KIND_ESTIMATOR:
        put_str(o, "broker_name", c->broker_name);
        put(o, "request_options", describe_props(inferd_component_request_options(c)));
        break;
    case INFERD_KIND_EVENT:
        put_str(o, "event_name", c->event_name);
        break;
    case INFERD_KIND_FUNCTION:
        put(o, "min_args", inferd_value_int(c->min_args));
        put(o, "max_args", inferd_value_int(c->max_args));
        put(o, "aggregate", inferd_value_bool(c->flags & INFERD_COMPONENT_AGGREGATE));
        break;
    case INFERD_KIND_BACKGROUND: {
        inferd_value *routes = inferd_value_array();
        for (size_t r = 0; c->routes && c->routes[r].method; r++) {
            inferd_value *rt = inferd_value_object();
            put_str(rt, "method", c->routes[r].method);
            put_str(rt, "path", c->routes[r].path);
            inferd_value_array_push(routes, rt, NULL);
        }
        put(o, "routes", routes);
        break;
    }
    default:
        break;
    }
    return o;
}

inferd_value *inferd_describe_plugin(const inferd_plugin_info *p, bool with_components)
{
    inferd_value *o = inferd_value_object();
    put_str(o, "name", p->name);
    put_str(o, "version", p->version);
    put_str(o, "file", p->path);
    char abi[32];
    snprintf(abi, sizeof abi, "%u.%u", p->abi_major, p->abi_minor);
    put_str(o, "abi", abi);
    if (p->descriptor->description)
        put_str(o, "description", p->descriptor->description);
    inferd_value *comps = inferd_value_array();
    for (size_t i = 0; i < p->descriptor->n_components; i++) {
        const inferd_component *c = inferd_plugin_component(p->descriptor, i);
        inferd_value *d;
        if (with_components) {
            d = inferd_describe_component(c);
        } else {
            d = inferd_value_object();
            put_str(d, "name", c->name);
            put_str(d, "kind", inferd_component_kind_name(c->kind));
        }
        inferd_value_array_push(comps, d, NULL);
    }
    put(o, "components", comps);
    return o;
}
