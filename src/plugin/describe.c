/* plugin/describe.c: plugins and components as JSON-ready values, for
 * `inferd plugin list|inspect` and the HTTP plugin API. Owns nothing. */
#include "inferd/registry.h"
#include "core/build_value.h"

#include <stdio.h>

inferd_value *inferd_describe_props(const inferd_prop_spec *specs)
{
    inferd_value *arr = inferd_value_array();
    for (size_t i = 0; specs && specs[i].type != INFERD_PROP_TYPE_END; i++) {
        const inferd_prop_spec *s = &specs[i];
        inferd_value *p = inferd_value_object();
        inferd__put_str(p, "name", s->name, NULL);
        inferd__put_str(p, "type", inferd_prop_type_name(s->type), NULL);
        inferd__put_str(p, "description", s->description ? s->description : "", NULL);
        if (s->default_value)
            inferd__put_str(p, "default", s->default_value, NULL);
        inferd__put(p, "required",
                    inferd_value_bool(!s->default_value && !s->fields &&
                    !(s->flags & INFERD_PROP_OPTIONAL)),
                    NULL);
        char allowed[256];
        inferd__put_str(p, "allowed", inferd_prop_spec_allowed(s, allowed, sizeof allowed), NULL);
        switch (s->type) {
        case INFERD_PROP_TYPE_INT:
            if (s->imin || s->imax) {
                inferd__put(p, "min", inferd_value_int(s->imin), NULL);
                inferd__put(p, "max", inferd_value_int(s->imax), NULL);
            }
            break;
        case INFERD_PROP_TYPE_UINT:
            if (s->umin || s->umax) {
                inferd__put(p, "min", inferd_value_int((int64_t)s->umin), NULL);
                inferd__put(p, "max", inferd_value_int((int64_t)s->umax), NULL);
            }
            break;
        case INFERD_PROP_TYPE_FLOAT:
        case INFERD_PROP_TYPE_DOUBLE:
            if (s->dmin != 0 || s->dmax != 0) {
                inferd__put(p, "min", inferd_value_double(s->dmin), NULL);
                inferd__put(p, "max", inferd_value_double(s->dmax), NULL);
            }
            break;
        case INFERD_PROP_TYPE_ENUM: {
            inferd_value *values = inferd_value_array();
            for (size_t k = 0; s->enum_values[k]; k++)
                inferd__push(values, inferd_value_string(s->enum_values[k]), NULL);
            inferd__put(p, "values", values, NULL);
            break;
        }
        default:
            break;
        }
        if (s->fields)
            inferd__put(p, "fields", inferd_describe_props(s->fields), NULL);
        inferd__push(arr, p, NULL);
    }
    return arr;
}

static inferd_value *describe_ports(const inferd_port_spec *ports)
{
    inferd_value *arr = inferd_value_array();
    for (size_t i = 0; ports && ports[i].formats; i++) {
        inferd_value *p = inferd_value_object();
        inferd__put(p, "index", inferd_value_int((int64_t)i), NULL);
        inferd__put_str(p, "presence", ports[i].dynamic ? "dynamic" : "static", NULL);
        inferd_value *formats = inferd_value_array();
        for (size_t f = 0; ports[i].formats[f]; f++)
            inferd__push(formats, inferd_value_string(ports[i].formats[f]), NULL);
        inferd__put(p, "formats", formats, NULL);
        inferd__push(arr, p, NULL);
    }
    return arr;
}

inferd_value *inferd_describe_component(const inferd_component *c)
{
    inferd_value *o = inferd_value_object();
    inferd__put_str(o, "name", c->name, NULL);
    inferd__put_str(o, "kind", inferd_component_kind_name(c->kind), NULL);
    inferd__put_str(o, "description", c->description ? c->description : "", NULL);
    inferd__put(o, "properties", inferd_describe_props(c->props), NULL);
    switch (c->kind) {
    case INFERD_KIND_ELEMENT:
        inferd__put(o, "common_properties", inferd_describe_props(inferd_element_common_props()), NULL);
        inferd__put(o, "inputs", describe_ports(c->inputs), NULL);
        inferd__put(o, "outputs", describe_ports(c->outputs), NULL);
        break;
    case INFERD_KIND_ESTIMATOR:
        if (c->flags & INFERD_COMPONENT_FAMILY)
            inferd__put(o, "family", inferd_value_bool(true), NULL);
        else
            inferd__put_str(o, "broker_name", c->broker_name, NULL);
        inferd__put(o, "request_options", inferd_describe_props(inferd_component_request_options(c)), NULL);
        break;
    case INFERD_KIND_EVENT:
        inferd__put_str(o, "event_name", c->event_name, NULL);
        break;
    case INFERD_KIND_FUNCTION:
        inferd__put(o, "min_args", inferd_value_int(c->min_args), NULL);
        inferd__put(o, "max_args", inferd_value_int(c->max_args), NULL);
        inferd__put(o, "aggregate", inferd_value_bool(c->flags & INFERD_COMPONENT_AGGREGATE), NULL);
        break;
    case INFERD_KIND_BACKGROUND: {
        inferd_value *routes = inferd_value_array();
        for (size_t r = 0; c->routes && c->routes[r].method; r++) {
            inferd_value *rt = inferd_value_object();
            inferd__put_str(rt, "method", c->routes[r].method, NULL);
            inferd__put_str(rt, "path", c->routes[r].path, NULL);
            inferd__push(routes, rt, NULL);
        }
        inferd__put(o, "routes", routes, NULL);
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
    inferd__put_str(o, "name", p->name, NULL);
    inferd__put_str(o, "version", p->version, NULL);
    inferd__put_str(o, "file", p->path, NULL);
    char abi[32];
    snprintf(abi, sizeof abi, "%u.%u", p->abi_major, p->abi_minor);
    inferd__put_str(o, "abi", abi, NULL);
    if (p->descriptor->description)
        inferd__put_str(o, "description", p->descriptor->description, NULL);
    inferd_value *comps = inferd_value_array();
    for (size_t i = 0; i < p->descriptor->n_components; i++) {
        const inferd_component *c = inferd_plugin_component(p->descriptor, i);
        inferd_value *d;
        if (with_components) {
            d = inferd_describe_component(c);
        } else {
            d = inferd_value_object();
            inferd__put_str(d, "name", c->name, NULL);
            inferd__put_str(d, "kind", inferd_component_kind_name(c->kind), NULL);
        }
        inferd__push(comps, d, NULL);
    }
    inferd__put(o, "components", comps, NULL);
    return o;
}
