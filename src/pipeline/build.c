/* pipeline/build.c: a pipeline file -> a checked graph of element instances.
 *
 * Owns the parsing and validation of pipeline files. Everything is checked
 * before any element is created: the file's shape, factories, links and
 * their ports, formats at both ends of each link, static ports left
 * unlinked, inputs linked twice, cycles. Then the elements are created (their
 * properties validated, their init called). Every error names the place.
 */
#include "pipeline/internal.h"
#include "core/names.h"
#include "plugin/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/log.h"

#define MAX_PIPELINE_BYTES (4u << 20)

/* ---- ports --------------------------------------------------------------- */

static size_t count_ports(const inferd_port_spec *ports)
{
    size_t n = 0;
    while (ports && ports[n].formats)
        n++;
    return n;
}

#define port_spec inferd__port_spec

static size_t static_ports(const inferd_port_spec *ports)
{
    size_t n = count_ports(ports);
    return n > 0 && ports[n - 1].dynamic ? n - 1 : n;
}

static bool formats_meet(const inferd_port_spec *a, const inferd_port_spec *b)
{
    for (size_t i = 0; a->formats[i]; i++)
        for (size_t j = 0; b->formats[j]; j++)
            if (strcmp(a->formats[i], "ANY") == 0 || strcmp(b->formats[j], "ANY") == 0 ||
                strcmp(a->formats[i], b->formats[j]) == 0)
                return true;
    return false;
}

static void list_formats(const inferd_port_spec *p, char *buf, size_t size)
{
    inferd__port_formats(p, buf, size);
}

/* ---- the file ------------------------------------------------------------- */

/* One parsed element before instances exist. */
typedef struct draft {
    const char *name;                 /* borrowed from the JSON tree */
    const inferd_value *props;        /* borrowed from decl */
    const inferd_value *next;         /* borrowed from decl, may be NULL: an array of strings */
    const inferd_component *comp;
    inferd_props *decl;               /* owned: the element's keys, checked */
    inferd_value *aliased;            /* owned: props with the seed's names turned, or NULL */
} draft;

static void free_drafts(draft *d, size_t n)
{
    for (size_t i = 0; d && i < n; i++) {
        inferd_props_free(d[i].decl);
        inferd_value_free(d[i].aliased);
    }
    free(d);
}

/* An element's keys, declared (the pipeline seed's names). */
typedef struct element_decl {
    const char *factory;
    const inferd_value *props, *next;
} element_decl;

static const inferd_prop_spec element_specs[] = {
    {.name = "factory", .type = INFERD_PROP_TYPE_STRING, .description = "the element component "
     "that makes it", INFERD_PROP_AT(element_decl, factory)},
    {.name = "props", .type = INFERD_PROP_TYPE_OBJECT, .default_value = "{}",
     .description = "its properties (status, deviceId and dataSource among them)",
     INFERD_PROP_AT(element_decl, props)},
    {.name = "next", .type = INFERD_PROP_TYPE_STRLIST, .description = "the elements its outputs "
     "link to, in port order: \"e2\" or [\"e2\", \"e3:1\"]",
     INFERD_PROP_AT_OPTIONAL(element_decl, next)},
    INFERD_PROP_END,
};

/* Adds one more fault to err ("; " after those there), as room allows. */
static void add_fault(inferd_error *err, size_t *faults, const inferd_error *one)
{
    if ((*faults)++ == 0) {
        if (err)
            *err = *one;
        return;
    }
    size_t used = err ? strlen(err->message) : 0, len = strlen(one->message);
    if (err && used + 2 + len < sizeof err->message) {
        memcpy(err->message + used, "; ", 2);
        memcpy(err->message + used + 2, one->message, len + 1);
    }
}

static long find_draft(const draft *d, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(d[i].name) == len && strncmp(d[i].name, name, len) == 0)
            return (long)i;
    return -1;
}

/* Parses "elem" or "elem:port". */
static inferd_status parse_target(const char *origin, const char *from, size_t out_port,
                                  const char *text, const draft *d, size_t n, size_t *to,
                                  size_t *in_port, inferd_error *err)
{
    const char *colon = strrchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    *in_port = 0;
    if (colon) {
        char *end;
        errno = 0;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || errno || p > 1024)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%s: element %s: next \"%s\": the port after ':' must be a "
                                    "number 0..1024", origin, from, text);
        *in_port = (size_t)p;
    }
    long i = find_draft(d, n, text, len);
    if (i < 0)
        return inferd_error_set(err, INFERD_ENOTFOUND,
                                "%s: element %s: output %zu links to \"%.*s\", which is not an "
                                "element of this pipeline", origin, from, out_port, (int)len, text);
    *to = (size_t)i;
    return INFERD_OK;
}

/* Reads the stream object into drafts; checks factories. */
static inferd_status read_drafts(inferd_registry *reg, const char *origin, const char *stream,
                                 const inferd_value *obj, draft **out, size_t *n_out,
                                 inferd_error *err)
{
    size_t cap = inferd_value_object_len(obj);
    draft *d = calloc(cap ? cap : 1, sizeof *d);
    if (!d)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    size_t n = 0, faults = 0;
    const char *key;
    inferd_value *item;
    inferd_status st = INFERD_OK;
    for (size_t k = 0; st == INFERD_OK && inferd_value_object_entry(obj, k, &key, &item); k++) {
        if (strcmp(key, "stream_config") == 0) {
            if (!inferd_value_is(item, INFERD_VALUE_OBJECT))
                st = inferd_error_set(err, INFERD_ETYPE, "%s: stream %s: stream_config must be "
                                      "an object", origin, stream);
            continue;
        }
        /* Every element is checked: a file's faults come all at once. */
        inferd_error one = {0};
        char owner[300];
        snprintf(owner, sizeof owner, "%s: element %.128s", origin, key);
        inferd_props *decl = NULL;
        element_decl e = {0};
        if (inferd_props_validate(element_specs, owner, item, &decl, &one) != INFERD_OK) {
            if (one.code != INFERD_ENOMEM)
                one.code = INFERD_EINVAL;
            add_fault(err, &faults, &one);
            continue;
        }
        inferd_props_bind(decl, &e);
        /* A seed name: its inferd factory, unless a component of that name is
         * registered (a user's own wins); appsrc and appsink share theirs. */
        const inferd_component *c = inferd_registry_find(reg, e.factory, NULL);
        const char *alias = pl_alias_factory(e.factory);
        if (c && alias && strcmp(alias, e.factory) != 0)
            alias = NULL;
        inferd_value *aliased = NULL;
        if (alias && (c = inferd_registry_find(reg, alias, NULL)) &&
            pl_alias_props(e.factory, key, origin, e.props, &aliased, &one) != INFERD_OK) {
            inferd_props_free(decl);
            add_fault(err, &faults, &one);
            continue;
        }
        if (!c)
            inferd_error_set(&one, INFERD_ENOTFOUND, "%s: element %s: unknown factory \"%s\" (no "
                             "such component is registered; `inferd plugin list` shows what "
                             "is)", origin, key, e.factory);
        else if (c->kind != INFERD_KIND_ELEMENT)
            inferd_error_set(&one, INFERD_EINVAL, "%s: element %s: factory \"%s\" is a %s, not "
                             "an element", origin, key, e.factory,
                             inferd_component_kind_name(c->kind));
        if (one.code != INFERD_OK) {
            inferd_props_free(decl);
            add_fault(err, &faults, &one);
            continue;
        }
        d[n++] = (draft){.name = key, .props = aliased ? aliased : e.props, .next = e.next,
                         .comp = c, .decl = decl, .aliased = aliased};
    }
    if (faults)
        st = err ? err->code : INFERD_EINVAL;
    if (st == INFERD_OK && n == 0)
        st = inferd_error_set(err, INFERD_EINVAL, "%s: stream %s has no elements", origin, stream);
    if (st != INFERD_OK) {
        free_drafts(d, n);
        return st;
    }
    *out = d;
    *n_out = n;
    return INFERD_OK;
}

static const char *next_at(const inferd_value *next, size_t i)
{
    if (inferd_value_is(next, INFERD_VALUE_STRING))
        return i == 0 ? inferd_value_string_or(next, NULL) : NULL;
    return inferd_value_string_or(inferd_value_array_get(next, i), NULL);
}

static size_t next_count(const inferd_value *next)
{
    if (!next)
        return 0;
    return inferd_value_is(next, INFERD_VALUE_STRING) ? 1 : inferd_value_array_len(next);
}

/* Depth-first search for a cycle; state: 0 new, 1 on the path, 2 done. */
static long find_cycle(const inferd_pipeline *p, size_t i, unsigned char *state)
{
    state[i] = 1;
    for (size_t o = 0; o < p->elems[i].n_out; o++) {
        size_t t = p->elems[i].out[o].to;
        if (t == NO_LINK)
            continue;
        if (state[t] == 1)
            return (long)t;
        if (state[t] == 0) {
            long c = find_cycle(p, t, state);
            if (c >= 0)
                return c;
        }
    }
    state[i] = 2;
    return -1;
}

/* Links, ports, formats, unlinked ports, fan-in, cycles: all before any init. */
static inferd_status build_links(inferd_pipeline *p, const draft *d, const char *origin,
                                 inferd_error *err)
{
    /* Output side: each "next" entry i is output port i. */
    for (size_t e = 0; e < p->n; e++) {
        pl_element *el = &p->elems[e];
        const inferd_port_spec *outs = d[e].comp->outputs;
        size_t n_next = next_count(d[e].next);
        el->n_out = n_next > static_ports(outs) ? n_next : static_ports(outs);
        if (el->n_out > 0 && !(el->out = calloc(el->n_out, sizeof *el->out)))
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        for (size_t o = 0; o < el->n_out; o++)
            el->out[o].to = NO_LINK;
        for (size_t o = 0; o < n_next; o++) {
            const char *target = next_at(d[e].next, o);
            if (!target)
                return inferd_error_set(err, INFERD_ETYPE, "%s: element %s: next[%zu] is not "
                                        "a string", origin, el->name, o);
            if (!port_spec(outs, o))
                return inferd_error_set(err, INFERD_ERANGE,
                                        "%s: element %s (%s) has %zu output port%s; next[%zu] "
                                        "\"%s\" would need output %zu", origin, el->name,
                                        d[e].comp->name, count_ports(outs),
                                        count_ports(outs) == 1 ? "" : "s", o, target, o);
            inferd_status st = parse_target(origin, el->name, o, target, d, p->n, &el->out[o].to,
                                            &el->out[o].port, err);
            if (st != INFERD_OK)
                return st;
        }
    }
    /* Input side: count and check each target port. */
    size_t *linked = NULL;
    for (size_t e = 0; e < p->n; e++) {
        pl_element *from = &p->elems[e];
        for (size_t o = 0; o < from->n_out; o++) {
            pl_link l = from->out[o];
            if (l.to == NO_LINK)
                continue;
            pl_element *to = &p->elems[l.to];
            const inferd_port_spec *in = port_spec(d[l.to].comp->inputs, l.port);
            if (!in)
                return inferd_error_set(err, INFERD_ERANGE,
                                        "%s: link %s:%zu -> %s:%zu: %s (%s) has no input port %zu "
                                        "(it has %zu)", origin, from->name, o, to->name, l.port,
                                        to->name, d[l.to].comp->name, l.port,
                                        count_ports(d[l.to].comp->inputs));
            const inferd_port_spec *out = port_spec(d[e].comp->outputs, o);
            if (!formats_meet(out, in)) {
                char a[256], b[256];
                list_formats(out, a, sizeof a);
                list_formats(in, b, sizeof b);
                return inferd_error_set(err, INFERD_EINVAL,
                                        "%s: link %s:%zu -> %s:%zu: formats cannot meet: %s output "
                                        "%zu gives %s; %s input %zu takes %s", origin, from->name,
                                        o, to->name, l.port, from->name, o, a, to->name, l.port, b);
            }
            if (l.port + 1 > to->n_in)
                to->n_in = l.port + 1;
        }
    }
    for (size_t e = 0; e < p->n; e++) {
        size_t s = static_ports(d[e].comp->inputs);
        if (p->elems[e].n_in < s)
            p->elems[e].n_in = s;
        bool no_inputs = count_ports(d[e].comp->inputs) == 0;
        p->elems[e].producer = no_inputs && (d[e].comp->flags & INFERD_COMPONENT_PRODUCER);
        p->elems[e].is_source = no_inputs && !p->elems[e].producer;
    }
    /* Every input port in use linked exactly once; static outputs linked. */
    for (size_t e = 0; e < p->n; e++) {
        pl_element *el = &p->elems[e];
        free(linked);
        linked = calloc(el->n_in ? el->n_in : 1, sizeof *linked);
        if (!linked)
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        for (size_t f = 0; f < p->n; f++)
            for (size_t o = 0; o < p->elems[f].n_out; o++)
                if (p->elems[f].out[o].to == e && linked[p->elems[f].out[o].port]++ > 0) {
                    free(linked);
                    return inferd_error_set(err, INFERD_EINVAL,
                                            "%s: element %s: input port %zu is linked more than "
                                            "once (a second link comes from %s); use a "
                                            "synchronizer to join streams", origin, el->name,
                                            p->elems[f].out[o].port, p->elems[f].name);
                }
        for (size_t i = 0; i < el->n_in; i++)
            if (!linked[i]) {
                bool dynamic = port_spec(d[e].comp->inputs, i)->dynamic;
                free(linked);
                return inferd_error_set(err, INFERD_EINVAL,
                                        "%s: element %s (%s): %s input port %zu is not linked "
                                        "(nothing names \"%s:%zu\" in its next)", origin, el->name,
                                        d[e].comp->name, dynamic ? "dynamic" : "static", i,
                                        el->name, i);
            }
        for (size_t o = 0; o < el->n_out; o++)
            if (el->out[o].to == NO_LINK && !port_spec(d[e].comp->outputs, o)->dynamic) {
                free(linked);
                return inferd_error_set(err, INFERD_EINVAL,
                                        "%s: element %s (%s): static output port %zu is not "
                                        "linked (add it to \"next\")", origin, el->name,
                                        d[e].comp->name, o);
            }
    }
    free(linked);
    unsigned char *state = calloc(p->n, 1);
    if (!state)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t e = 0; e < p->n; e++) {
        long c = state[e] == 0 ? find_cycle(p, e, state) : -1;
        if (c >= 0) {
            free(state);
            return inferd_error_set(err, INFERD_EINVAL,
                                    "%s: the links form a cycle through element %s", origin,
                                    p->elems[c].name);
        }
    }
    free(state);
    return INFERD_OK;
}

/* Every element's properties checked before any is created, so that a
 * file's property faults come in one message, element by element. */
static inferd_status check_properties(const inferd_pipeline *p, const draft *d,
                                      const char *origin, inferd_error *err)
{
    char msg[INFERD_ERROR_MESSAGE_MAX] = "";
    size_t pos = 0, faults = 0;
    inferd_status first = INFERD_OK;
    for (size_t e = 0; e < p->n; e++) {
        inferd_error one = {0};
        inferd_status st = inferd__component_check_props(d[e].comp, p->elems[e].name, d[e].props,
                                                         &one);
        if (st == INFERD_ENOMEM)
            return inferd_error_set(err, st, "out of memory");
        if (st == INFERD_OK)
            continue;
        if (!faults++)
            first = st;
        if (pos < sizeof msg)
            pos += (size_t)snprintf(msg + pos, sizeof msg - pos, "%s%s", faults > 1 ? "; " : "",
                                    one.message);
    }
    return faults ? inferd_error_set(err, first, "%s: %s", origin, msg) : INFERD_OK;
}

/* Whether element a's buffers reach element b (a is upstream of b). */
static bool upstream(const inferd_pipeline *p, size_t a, size_t b, unsigned char *seen)
{
    if (a == b)
        return true;
    if (seen[a])
        return false;
    seen[a] = 1;
    for (size_t o = 0; o < p->elems[a].n_out; o++) {
        size_t to = p->elems[a].out[o].to;
        if (to != NO_LINK && upstream(p, to, b, seen))
            return true;
    }
    return false;
}

/* Every dataSource names an element upstream of its own (whose metadata
 * reaches it); every fault of the file in one message. */
static inferd_status check_data_sources(const inferd_pipeline *p, const draft *d,
                                        const char *origin, inferd_error *err)
{
    char msg[INFERD_ERROR_MESSAGE_MAX] = "";
    size_t pos = 0, faults = 0;
    unsigned char *seen = calloc(p->n ? p->n : 1, 1);
    if (!seen)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    for (size_t e = 0; e < p->n; e++) {
        const char *src =
            inferd_value_string_or(inferd_value_object_get(d[e].props, "dataSource"), NULL);
        if (!src || !*src || strcmp(src, "auto") == 0)
            continue;
        size_t at = p->n;
        for (size_t k = 0; k < p->n; k++)
            if (strcmp(p->elems[k].name, src) == 0)
                at = k;
        char why[300];
        if (at == p->n) {
            const char *near = inferd__closest_name(p->elems, sizeof *p->elems, p->n, src);
            snprintf(why, sizeof why, "names no element of this pipeline%s%s%s", near ? " (did you mean '" : "",
                     near ? near : "", near ? "'?)" : "");
        } else {
            memset(seen, 0, p->n);
            if (upstream(p, at, e, seen))
                continue;
            snprintf(why, sizeof why, "is not upstream of it: its metadata never reaches %s",
                     p->elems[e].name);
        }
        if (pos < sizeof msg)
            pos += (size_t)snprintf(msg + pos, sizeof msg - pos, "%selement %s: dataSource \"%s\" %s",
                                    faults++ ? "; " : "", p->elems[e].name, src, why);
    }
    free(seen);
    return faults ? inferd_error_set(err, INFERD_EINVAL, "%s: %s", origin, msg) : INFERD_OK;
}

static inferd_status create_instances(inferd_pipeline *p, const draft *d, const char *origin,
                                      inferd_error *err)
{
    for (size_t e = 0; e < p->n; e++) {
        pl_element *el = &p->elems[e];
        inferd_status st = inferd_instance_create(p->reg, d[e].comp->name, el->name, d[e].props,
                                                  &el->inst, err);
        if (st != INFERD_OK) {
            inferd_error_prefix(err, "%s", origin);
            return st;
        }
        el->sync = inferd_props_int(inferd_instance_props(el->inst), "status") == 1;
        inferd_instance_set_push(el->inst, inferd__pipeline_route, el);
        inferd_instance_set_stop_flag(el->inst, &p->stopping);
        inferd_instance_set_output_count(el->inst, el->n_out);
        /* A source's queue takes what the application pushes; every element's
         * dynamic output left unlinked goes to the application (appsink). */
        if (!(el->in_queue = inferd_queue_new(p->queue_capacity)))
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        const inferd_port_spec *outs = d[e].comp->outputs;
        size_t n = count_ports(outs);
        if (n > 0 && outs[n - 1].dynamic) {
            bool unlinked = el->n_out < n;
            for (size_t o = static_ports(outs); o < el->n_out; o++)
                unlinked = unlinked || el->out[o].to == NO_LINK;
            if (unlinked && !(el->app_queue = inferd_queue_new(p->queue_capacity * 4)))
                return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
    }
    return INFERD_OK;
}

inferd_status inferd_pipeline_new(inferd_registry *reg, const char *json, size_t len,
                                  const char *origin, inferd_pipeline **out, inferd_error *err)
{
    if (!origin)
        origin = "pipeline";
    inferd_value *doc = NULL;
    inferd_status st = inferd_value_from_json(json, len, 0, &doc, err);
    if (st != INFERD_OK) {
        inferd_error_prefix(err, "%s", origin);
        return st;
    }
    const char *stream = NULL;
    inferd_value *obj = NULL;
    if (!inferd_value_is(doc, INFERD_VALUE_OBJECT) || inferd_value_object_len(doc) != 1 ||
        !inferd_value_object_entry(doc, 0, &stream, &obj) ||
        !inferd_value_is(obj, INFERD_VALUE_OBJECT)) {
        inferd_value_free(doc);
        return inferd_error_set(err, INFERD_EINVAL,
                                "%s: a pipeline file is an object with one stream: "
                                "{\"name\": {\"stream_config\": {...}, \"element\": {...}, ...}}",
                                origin);
    }
    draft *d = NULL;
    size_t n = 0;
    if ((st = read_drafts(reg, origin, stream, obj, &d, &n, err)) != INFERD_OK) {
        inferd_value_free(doc);
        return st;
    }
    inferd_pipeline *p = calloc(1, sizeof *p);
    if (!p || !(p->name = strdup(stream)) || !(p->elems = calloc(n, sizeof *p->elems))) {
        if (p)
            free(p->name);
        free(p);
        free_drafts(d, n);
        inferd_value_free(doc);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    p->reg = reg;
    p->n = n;
    p->queue_capacity = INFERD_PIPELINE_QUEUE_DEFAULT;
    for (size_t e = 0; e < n && st == INFERD_OK; e++) {
        p->elems[e].pipeline = p;
        p->elems[e].comp = d[e].comp;
        if (!(p->elems[e].name = strdup(d[e].name)))
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    if (st == INFERD_OK)
        st = build_links(p, d, origin, err);
    if (st == INFERD_OK)
        st = check_properties(p, d, origin, err);
    if (st == INFERD_OK)
        st = check_data_sources(p, d, origin, err);
    if (st == INFERD_OK)
        st = create_instances(p, d, origin, err);
    free_drafts(d, n);
    inferd_value_free(doc);
    if (st != INFERD_OK) {
        inferd_pipeline_free(p);
        return st;
    }
    inferd_log_debug("pipeline", "built pipeline %s from %s (%zu elements)", p->name, origin, n);
    *out = p;
    return INFERD_OK;
}

inferd_status inferd_pipeline_load(inferd_registry *reg, const char *path, inferd_pipeline **out,
                                   inferd_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return inferd_error_set(err, INFERD_EIO, "cannot open pipeline file %s: %s", path,
                                strerror(errno));
    char *buf = malloc(MAX_PIPELINE_BYTES + 1);
    size_t n = buf ? fread(buf, 1, MAX_PIPELINE_BYTES + 1, f) : 0;
    bool bad = !buf || ferror(f) || n > MAX_PIPELINE_BYTES;
    fclose(f);
    if (bad) {
        free(buf);
        return inferd_error_set(err, INFERD_EIO, "pipeline file %s: %s", path,
                                !buf ? "out of memory" : n > MAX_PIPELINE_BYTES
                                                             ? "larger than 4 MiB"
                                                             : "read error");
    }
    inferd_status st = inferd_pipeline_new(reg, buf, n, path, out, err);
    free(buf);
    return st;
}

const char *inferd_pipeline_name(const inferd_pipeline *p) { return p->name; }

static size_t nth_matching(const inferd_pipeline *p, bool sources, size_t i, bool *found)
{
    size_t k = 0;
    for (size_t e = 0; e < p->n; e++) {
        bool match = sources ? p->elems[e].is_source : p->elems[e].app_queue != NULL;
        if (match && k++ == i) {
            *found = true;
            return e;
        }
    }
    *found = false;
    return k;
}

size_t inferd_pipeline_source_count(const inferd_pipeline *p)
{
    bool f;
    return nth_matching(p, true, (size_t)-1, &f);
}

const char *inferd_pipeline_source_name(const inferd_pipeline *p, size_t i)
{
    bool f;
    size_t e = nth_matching(p, true, i, &f);
    return f ? p->elems[e].name : NULL;
}

size_t inferd_pipeline_sink_count(const inferd_pipeline *p)
{
    bool f;
    return nth_matching(p, false, (size_t)-1, &f);
}

const char *inferd_pipeline_sink_name(const inferd_pipeline *p, size_t i)
{
    bool f;
    size_t e = nth_matching(p, false, i, &f);
    return f ? p->elems[e].name : NULL;
}
