/* service/api_portables.c: portable plugin packages over REST, as the
 * stream engine of the seeds has them (POST/GET/DELETE /plugins/portables),
 * and calling a function component (C or portable) directly:
 * POST /v1/functions/{name}/exec.
 *
 * Installing runs on the HTTP thread that took the request: it waits for
 * install.sh and the plugin's handshake, both bounded by their timeouts. */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "portable/portables.h"
#include "rules/rules.h"
#include "service/service.h"

static bool have_portables(svc_request *r)
{
    if (svc_of(r)->portables)
        return true;
    svc_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "not_ready",
                    "portable plugins are not available in this daemon");
    return false;
}

/* The outcome of an install or an upgrade, as HTTP: a name taken or a
 * plugin in the wrong state is 409, what is wrong with the package 400
 * bad_package. */
static void reply_changed(svc_request *r, unsigned ok_status, inferd_status st,
                          inferd_value *desc, const inferd_error *err)
{
    if (st == INFERD_OK)
        svc_reply_json(r, ok_status, desc);
    else if (st == INFERD_EEXIST || st == INFERD_ESTATE)
        svc_reply_error(r, MHD_HTTP_CONFLICT, "conflict", "%s", err->message);
    else if (st == INFERD_ENOTFOUND && ok_status == MHD_HTTP_OK)
        svc_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "%s", err->message);
    else if (st == INFERD_ENOMEM || st == INFERD_EINTERNAL)
        svc_reply_status(r, st, err);
    else /* the package's fault: what is wrong with it */
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_package", "%s", err->message);
}

/* Where a request's package is: an uploaded one (the zip as the body,
 * application/zip or octet-stream) is written to
 * <state>/uploads/NAME@<ms>.zip and kept as the "file" the plugin came
 * from (removed again when the change fails: nothing is left behind);
 * else the body is {"file": "file:///...zip"} (and, for an install, its
 * "name"). NULL after replying the error. *upload: whether it was written. */
static char *package_of(svc_request *r, const char *name, bool *upload)
{
    svc *s = svc_of(r);
    *upload = false;
    const char *type = svc_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type && (strncasecmp(type, "application/zip", 15) == 0 ||
                 strncasecmp(type, "application/octet-stream", 24) == 0)) {
        size_t len = 0;
        const void *body = svc_body(r, &len);
        inferd_error err = {0};
        inferd_status st = inferd_portables_check_name(s->portables, name, &err);
        if (st == INFERD_EINVAL) {
            svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "%s", err.message);
            return NULL;
        }
        if (len == 0) {
            svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request", "the body is empty: send "
                            "the package's zip");
            return NULL;
        }
        char *dir = NULL, *path = NULL;
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (asprintf(&dir, "%s/uploads", inferd_portables_state_dir(s->portables)) < 0)
            dir = NULL;
        if (dir && asprintf(&path, "%s/%s@%lld%03ld.zip", dir, name, (long long)now.tv_sec,
                            now.tv_nsec / 1000000) < 0)
            path = NULL;
        FILE *f = NULL;
        if (path && (mkdir(dir, 0700) == 0 || errno == EEXIST))
            f = fopen(path, "wb");
        bool written = f != NULL;
        if (f) {
            /* Both always run: the file is closed whether the write went well. */
            bool short_write = fwrite(body, 1, len, f) != len;
            written = fclose(f) == 0 && !short_write;
        }
        if (!written) {
            svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "cannot write %s: %s",
                            path ? path : "the upload", strerror(errno));
            if (path)
                unlink(path);
            free(path);
            free(dir);
            return NULL;
        }
        free(dir);
        *upload = true;
        return path;
    }
    inferd_value *doc = svc_body_object(r);
    if (!doc)
        return NULL;
    const char *file = inferd_value_string_or(inferd_value_object_get(doc, "file"), NULL);
    char *path = NULL;
    if (!file)
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                        "the body needs a \"file\" string: {\"file\": \"file:///tmp/pyai.zip\"}"
                        ", or is the zip itself (Content-Type: application/zip)");
    else if (strncmp(file, "file://", 7) != 0 || file[7] != '/')
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                        "\"file\" must be a file:/// URL of a zip on this machine, not \"%s\" "
                        "(or upload the zip: Content-Type: application/zip)", file);
    else if (!(path = strdup(file + 7)))
        svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    inferd_value_free(doc);
    return path;
}

/* The name of a JSON install body, or of ?name= (an upload). */
static char *install_name(svc_request *r)
{
    const char *type = svc_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type && (strncasecmp(type, "application/zip", 15) == 0 ||
                 strncasecmp(type, "application/octet-stream", 24) == 0)) {
        const char *name = svc_query(r, "name");
        if (name && name[0])
            return strdup(name);
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                        "an uploaded package needs its name: POST "
                        "/plugins/portables?name=NAME with the zip as the body");
        return NULL;
    }
    inferd_value *doc = svc_body_object(r);
    if (!doc)
        return NULL;
    const inferd_value *name = inferd_value_object_get(doc, "name");
    bool both = inferd_value_is(name, INFERD_VALUE_STRING) &&
                inferd_value_is(inferd_value_object_get(doc, "file"), INFERD_VALUE_STRING);
    char *out = both ? strdup(inferd_value_string_or(name, "")) : NULL;
    if (!both)
        svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                        "the body needs \"name\" and \"file\" strings: {\"name\": \"pyai\", "
                        "\"file\": \"file:///tmp/pyai.zip\"}, or the zip itself "
                        "(Content-Type: application/zip, ?name=pyai)");
    inferd_value_free(doc);
    return out;
}

static void portables_install(svc_request *r)
{
    if (!have_portables(r))
        return;
    svc *s = svc_of(r);
    char *name = install_name(r);
    if (!name)
        return;
    inferd_error err = {0};
    bool upload = false;
    /* A name taken is said before anything is written. */
    inferd_status st = inferd_portables_check_name(s->portables, name, &err);
    if (st != INFERD_OK) {
        reply_changed(r, MHD_HTTP_CREATED, st, NULL, &err);
        free(name);
        return;
    }
    char *zip = package_of(r, name, &upload);
    if (zip) {
        inferd_value *desc = NULL;
        /* Its components go live with it (the hook): a change of the plugin set. */
        pthread_rwlock_wrlock(&s->plugins_rw);
        st = inferd_portables_install(s->portables, name, zip, &desc, &err);
        pthread_rwlock_unlock(&s->plugins_rw);
        if (st != INFERD_OK && upload)
            unlink(zip);
        reply_changed(r, MHD_HTTP_CREATED, st, desc, &err);
    }
    free(zip);
    free(name);
}

/* PUT /plugins/portables/{name}: an upgrade in place (inferd_portables_upgrade). */
static void portables_upgrade(svc_request *r)
{
    if (!have_portables(r))
        return;
    svc *s = svc_of(r);
    const char *name = svc_param(r, 0);
    bool upload = false;
    char *zip = package_of(r, name, &upload);
    if (!zip)
        return;
    inferd_value *desc = NULL;
    inferd_error err = {0};
    pthread_rwlock_wrlock(&s->plugins_rw);
    inferd_status st = inferd_portables_upgrade(s->portables, name, zip, &desc, &err);
    pthread_rwlock_unlock(&s->plugins_rw);
    if (st != INFERD_OK && upload)
        unlink(zip);
    if (st == INFERD_OK)
        svc_plugin_publish("plugin_upgraded", name,
                           inferd_value_string_or(inferd_value_object_get(desc, "version"), ""));
    reply_changed(r, MHD_HTTP_OK, st, desc, &err);
    free(zip);
}

static void portables_list(svc_request *r)
{
    if (!have_portables(r))
        return;
    bool ok = true;
    inferd_value *b = inferd_value_object();
    inferd__put(b, "portables", inferd_portables_list(svc_of(r)->portables), &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

static void portables_get(svc_request *r)
{
    if (!have_portables(r))
        return;
    inferd_value *d = inferd_portables_describe(svc_of(r)->portables, svc_param(r, 0));
    if (d)
        svc_reply_json(r, MHD_HTTP_OK, d);
    else
        svc_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found",
                        "no portable plugin named '%s' is installed (GET /plugins/portables "
                        "lists them)", svc_param(r, 0));
}

static void portables_delete(svc_request *r)
{
    if (!have_portables(r))
        return;
    inferd_error err = {0};
    svc *s = svc_of(r);
    /* The service lets go of it first (svc_plugin_detach, the hook): a
     * stream or rule that uses it refuses the removal. */
    pthread_rwlock_wrlock(&s->plugins_rw);
    inferd_status st = inferd_portables_remove(s->portables, svc_param(r, 0), &err);
    pthread_rwlock_unlock(&s->plugins_rw);
    if (st == INFERD_EBUSY) {
        svc_reply_error(r, MHD_HTTP_CONFLICT, "conflict", "%s", err.message);
        return;
    }
    if (st != INFERD_OK) {
        svc_reply_status(r, st, &err);
        return;
    }
    bool ok = true;
    inferd_value *b = inferd_value_object();
    inferd__put_str(b, "name", svc_param(r, 0), &ok);
    inferd__put(b, "removed", inferd_value_bool(true), &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

/* ---- functions ------------------------------------------------------------------ */

/* One instance per function, made at its first call and kept until the
 * service stops (svc_functions_free) or its plugin goes
 * (svc_functions_forget). Calls of one function take turns on its instance (a
 * component's instance is called from one thread at a time, as in rules);
 * refs counts the calls holding it, so a removal never frees it under one. */
typedef struct fn_inst {
    char *name, *plugin;       /* owned */
    inferd_instance *inst;     /* owned */
    pthread_mutex_t call;      /* one call at a time */
    unsigned refs;             /* under fn_mu */
    bool gone;                 /* unlinked: freed when refs drops to 0 */
    struct fn_inst *next;
} fn_inst;

static pthread_mutex_t fn_mu = PTHREAD_MUTEX_INITIALIZER;
static fn_inst *fns;

static void fn_free(fn_inst *f)
{
    inferd_instance_destroy(f->inst);
    pthread_mutex_destroy(&f->call);
    free(f->name);
    free(f->plugin);
    free(f);
}

void svc_functions_free(void)
{
    pthread_mutex_lock(&fn_mu);
    while (fns) {
        fn_inst *f = fns;
        fns = f->next;
        fn_free(f); /* the workers are done: nothing holds it */
    }
    pthread_mutex_unlock(&fn_mu);
}

void svc_functions_forget(const char *plugin)
{
    pthread_mutex_lock(&fn_mu);
    for (fn_inst **p = &fns; *p;) {
        fn_inst *f = *p;
        if (strcmp(f->plugin, plugin) != 0) {
            p = &f->next;
            continue;
        }
        *p = f->next;
        f->gone = true;
        if (f->refs == 0)
            fn_free(f);
    }
    pthread_mutex_unlock(&fn_mu);
}

static void function_release(fn_inst *f)
{
    pthread_mutex_lock(&fn_mu);
    bool free_it = --f->refs == 0 && f->gone;
    pthread_mutex_unlock(&fn_mu);
    if (free_it)
        fn_free(f);
}

static inferd_status function_acquire(svc *s, const char *name, fn_inst **out,
                                      inferd_error *err)
{
    pthread_mutex_lock(&fn_mu);
    for (fn_inst *f = fns; f; f = f->next)
        if (strcmp(f->name, name) == 0) {
            f->refs++;
            *out = f;
            pthread_mutex_unlock(&fn_mu);
            return INFERD_OK;
        }
    const inferd_plugin_info *plugin = NULL;
    const inferd_component *c = inferd_registry_find(s->reg, name, &plugin);
    inferd_status st = INFERD_OK;
    if (!c || c->kind != INFERD_KIND_FUNCTION)
        st = inferd_error_set(err, INFERD_ENOTFOUND, "no function named '%s' (GET /v1/plugins "
                              "lists the components)", name);
    fn_inst *f = st == INFERD_OK ? calloc(1, sizeof *f) : NULL;
    if (st == INFERD_OK && (!f || !(f->name = strdup(name)) ||
                            !(f->plugin = strdup(plugin ? plugin->name : ""))))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK)
        st = inferd_instance_create(s->reg, name, NULL, NULL, &f->inst, err);
    if (st != INFERD_OK) {
        if (f) {
            free(f->name);
            free(f->plugin);
            free(f);
        }
    } else {
        pthread_mutex_init(&f->call, NULL);
        f->refs = 1;
        f->next = fns;
        fns = f;
        *out = f;
    }
    pthread_mutex_unlock(&fn_mu);
    return st;
}

/* A JSON body {"args": [...]} gives the arguments; any other body is one
 * bytes argument (an image, for instance). */
static void function_exec(svc_request *r)
{
    svc *s = svc_of(r);
    const char *name = svc_param(r, 0);
    const char *type = svc_header(r, "Content-Type");
    inferd_value *args = NULL;
    if (type && strncmp(type, "application/json", 16) == 0) {
        inferd_value *doc = svc_body_object(r);
        if (!doc)
            return;
        const inferd_value *a = inferd_value_object_get(doc, "args");
        if (!inferd_value_is(a, INFERD_VALUE_ARRAY)) {
            inferd_value_free(doc);
            svc_reply_error(r, MHD_HTTP_BAD_REQUEST, "bad_request",
                            "a JSON body must be {\"args\": [...]}");
            return;
        }
        args = inferd_value_copy(a);
        inferd_value_free(doc);
    } else {
        size_t len;
        const void *body = svc_body(r, &len);
        bool ok = true;
        args = inferd_value_array();
        inferd__push(args, inferd_value_bytes(body, len), &ok);
        if (!ok) {
            inferd_value_free(args);
            svc_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
            return;
        }
    }
    fn_inst *f = NULL;
    inferd_error err = {0};
    inferd_status st = function_acquire(s, name, &f, &err);
    const inferd_component *c = f ? inferd_instance_component(f->inst) : NULL;
    size_t n = inferd_value_array_len(args);
    if (st == INFERD_OK &&
        ((int64_t)n < c->min_args || (c->max_args >= 0 && (int64_t)n > c->max_args)))
        st = inferd_error_set(&err, INFERD_EINVAL, "function %s takes %d to %d arguments, not %zu",
                              name, c->min_args, c->max_args, n);
    inferd_value *result = NULL;
    if (st == INFERD_OK) {
        const inferd_value **argv = calloc(n ? n : 1, sizeof *argv);
        for (size_t i = 0; argv && i < n; i++)
            argv[i] = inferd_value_array_get(args, i);
        pthread_mutex_lock(&f->call);
        st = argv ? inferd_instance_exec(f->inst, argv, n, &result, &err)
                  : inferd_error_set(&err, INFERD_ENOMEM, "out of memory");
        pthread_mutex_unlock(&f->call);
        free(argv);
    }
    if (f)
        function_release(f);
    inferd_value_free(args);
    if (st != INFERD_OK) {
        svc_reply_status(r, st, &err);
        return;
    }
    bool ok = true;
    inferd_value *b = inferd_value_object();
    inferd__put(b, "result", result ? result : inferd_value_null(), &ok);
    svc_reply_built(r, MHD_HTTP_OK, b, ok);
}

const svc_route svc_portable_routes[] = {
    {"POST", "/plugins/portables", portables_install, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    /* Seed 003 installs its function package here (the seeds' engine's
     * route for function plugins); in inferd it is a portable package. */
    {"POST", "/plugins/functions", portables_install, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"GET", "/plugins/portables", portables_list, SVC_ROUTE_MANAGEMENT},
    {"GET", "/plugins/portables/*", portables_get, SVC_ROUTE_MANAGEMENT},
    {"PUT", "/plugins/portables/*", portables_upgrade, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"DELETE", "/plugins/portables/*", portables_delete, SVC_ROUTE_MANAGEMENT | SVC_ROUTE_WORKER},
    {"POST", "/v1/functions/*/exec", function_exec, SVC_ROUTE_WORKER},
    {NULL, NULL, NULL, 0},
};
