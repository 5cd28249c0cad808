/* service/kserve_repo.c: the KServe model repository: the models of
 * models.dir, their loaded versions and their statistics (kserve_repo.h
 * says the layout and who owns what).
 *
 * Locks: `change` makes loads and unloads one at a time (a load opens
 * sessions for seconds, unlocked); `lock` guards the table, each entry,
 * the references and the statistics, and is held only for bookkeeping.
 */
#include "service/kserve_repo.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/build_value.h"
#include "core/json_file.h"
#include "inferd/log.h"
#include "inferd/plugin.h"
#include "inferd/props.h"

#define LOG "kserve"
#define KS_MODEL_FILE "model.onnx" /* Triton's default_model_filename */
#define KS_CONFIG_FILE "config.json"
/* A config.json is a few keys: anything larger is a mistake. */
#define KS_MAX_CONFIG_BYTES (1 << 20)

/* NAME/config.json. backendOptions is checked against the backend's own
 * options, which only the registry knows: ks_repo_open copies this and
 * sets its fields. */
/* versionPolicy: one of latest, all, specific, as Triton's version_policy. */
static const inferd_prop_spec latest_fields[] = {
    INFERD_PROP_UINT("numVersions", "how many of the highest versions serve", 1, 1, 1000000),
    INFERD_PROP_END,
};
static const inferd_prop_spec specific_fields[] = {
    {.name = "versions", .type = INFERD_PROP_TYPE_NUMLIST, .default_value = "",
     .description = "the version numbers that serve (each must have its folder)"},
    INFERD_PROP_END,
};
static const inferd_prop_spec policy_fields[] = {
    {.name = "latest", .type = INFERD_PROP_TYPE_OBJECT, .fields = latest_fields,
     .flags = INFERD_PROP_OPTIONAL, .description = "the highest numVersions versions serve"},
    {.name = "all", .type = INFERD_PROP_TYPE_OBJECT, .flags = INFERD_PROP_OPTIONAL,
     .description = "every version serves ({})"},
    {.name = "specific", .type = INFERD_PROP_TYPE_OBJECT, .fields = specific_fields,
     .flags = INFERD_PROP_OPTIONAL, .description = "the versions listed serve"},
    INFERD_PROP_END,
};

static const inferd_prop_spec config_specs[] = {
    INFERD_PROP_UINT("maxBatchSize", "the most items a request may carry in the first dimension "
                     "of its inputs (the batch), reported as max_batch_size by /config; every "
                     "input and output must then have a variable first dimension. 0: no batch "
                     "dimension", 0, 0, 1073741824),
    INFERD_PROP_OBJECT("backendOptions", "the onnxruntime backend's options for this model "
                       "(intra_op_threads, provider cpu or cuda, device_id, ...: "
                       "docs/backends.md), laid over models.backend_options key by key", "{}"),
    {.name = "versionPolicy", .type = INFERD_PROP_TYPE_OBJECT, .fields = policy_fields,
     .flags = INFERD_PROP_OPTIONAL,
     .description = "which versions serve: {\"all\": {}} (the default), {\"latest\": "
                    "{\"numVersions\": N}}, or {\"specific\": {\"versions\": [1, 3]}}"},
    INFERD_PROP_END,
};
#define N_CONFIG_SPECS (sizeof config_specs / sizeof config_specs[0])

/* The durations of Triton's inference_stats, in its order. */
enum { D_SUCCESS, D_FAIL, D_QUEUE, D_INPUT, D_INFER, D_OUTPUT, N_DURATIONS };
static const char *const duration_names[N_DURATIONS] = {
    "success", "fail", "queue", "compute_input", "compute_infer", "compute_output"};

typedef struct ks_duration {
    uint64_t count, ns;
} ks_duration;

struct ks_stats {
    int64_t version;
    uint64_t last_inference_ms; /* since the epoch; 0: none yet */
    uint64_t inference_count, execution_count;
    ks_duration d[N_DURATIONS];
    ks_stats *next; /* ascending versions */
};

struct ks_entry {
    char *name;           /* owned */
    ks_version **served;  /* owned array, ascending; each holds the table's reference */
    size_t n_served;
    ks_version *live;     /* every version not closed yet: served, or still in use */
    int64_t *found;       /* owned: the versions its files had at the last load */
    size_t n_found;
    char *reason;         /* owned: why its last load failed while nothing served */
    bool unloaded;        /* by request */
    ks_stats *stats;      /* owned list, one per version it ever served */
};

struct ks_repo {
    inferd_registry *reg;  /* borrowed */
    char *dir;             /* owned */
    inferd_value *options; /* owned: models.backend_options (NULL: none) */
    inferd_prop_spec config_specs[N_CONFIG_SPECS]; /* with the backend's options */
    pthread_mutex_t lock, change;
    ks_entry **entries;    /* owned, sorted by name */
    size_t n, cap;
};

/* ---- small helpers ---------------------------------------------------------------- */

/* Room for one more item in *arr (n used of *cap); false when out of memory. */
static bool grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return true;
    size_t ncap = *cap ? *cap * 2 : 8;
    void *a = realloc(*arr, ncap * size);
    if (!a)
        return false;
    *arr = a;
    *cap = ncap;
    return true;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_version(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static const char *name_at(const void *items, size_t i) { return ((char *const *)items)[i]; }

static bool is_kind(const char *path, mode_t kind)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == kind;
}

/* A name a request may use to reach into models.dir: no hidden file, no
 * "..", no path. */
static bool plain_name(const char *name)
{
    return name && name[0] && name[0] != '.' && !strchr(name, '/');
}

/* A version folder's name: a number from 1, written without leading zeros. */
static bool version_number(const char *s, int64_t *out)
{
    if (s[0] < '1' || s[0] > '9' || strlen(s) > 15 || s[strspn(s, "0123456789")])
        return false;
    *out = strtoll(s, NULL, 10);
    return true;
}

/* ---- what models.dir holds -------------------------------------------------------- */

/* The version folders of folder, ascending (owned). */
static inferd_status list_versions(const char *folder, int64_t **out, size_t *n_out,
                                   inferd_error *err)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(folder);
    if (!d)
        return inferd_error_set(err, INFERD_EIO, "cannot open the folder '%s': %s", folder,
                                strerror(errno));
    int64_t *v = NULL, number;
    size_t n = 0, cap = 0;
    char path[8192];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        snprintf(path, sizeof path, "%s/%s", folder, e->d_name);
        if (!version_number(e->d_name, &number) || !is_kind(path, S_IFDIR))
            continue;
        if (!grow((void **)&v, &cap, n, sizeof *v)) {
            closedir(d);
            free(v);
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        v[n++] = number;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, cmp_version);
    *out = v;
    *n_out = n;
    return INFERD_OK;
}

/* What models.dir has for name: bits of HAS_FILE (NAME.onnx) and
 * HAS_FOLDER (NAME/ with a config.json or a version folder; another folder
 * is not a model). */
enum { HAS_FILE = 1, HAS_FOLDER = 2 };
static unsigned model_kind(const char *dir, const char *name)
{
    if (!plain_name(name))
        return 0;
    char path[8192];
    unsigned kind = 0;
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    if (is_kind(path, S_IFREG))
        kind |= HAS_FILE;
    snprintf(path, sizeof path, "%s/%s/" KS_CONFIG_FILE, dir, name);
    int64_t *versions = NULL;
    size_t n = 0;
    if (is_kind(path, S_IFREG)) {
        kind |= HAS_FOLDER;
    } else {
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (is_kind(path, S_IFDIR) && list_versions(path, &versions, &n, NULL) == INFERD_OK && n)
            kind |= HAS_FOLDER;
        free(versions);
    }
    return kind;
}

/* The model names of dir, sorted, each once (owned: each and the array). */
static inferd_status disk_names(const char *dir, char ***out, size_t *n_out, inferd_error *err)
{
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d)
        return inferd_error_set(err, INFERD_EIO, "cannot open the folder '%s': %s", dir,
                                strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    inferd_status st = INFERD_OK;
    for (struct dirent *e; st == INFERD_OK && (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        bool file = len > 5 && strcmp(e->d_name + len - 5, ".onnx") == 0;
        char *name = strndup(e->d_name, file ? len - 5 : len);
        bool model = name && (model_kind(dir, name) & (file ? HAS_FILE : HAS_FOLDER));
        if (model && grow((void **)&names, &cap, n, sizeof *names)) {
            names[n++] = name;
            continue;
        }
        if (!name || model)
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        free(name);
    }
    closedir(d);
    if (st != INFERD_OK) {
        free_names(names, n);
        return st;
    }
    if (n)
        qsort(names, n, sizeof *names, cmp_name);
    /* NAME.onnx beside NAME/: one name (the load says it is ambiguous). */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (kept && strcmp(names[kept - 1], names[i]) == 0)
            free(names[i]);
        else
            names[kept++] = names[i];
    }
    *out = names;
    *n_out = kept;
    return INFERD_OK;
}

/* ---- the table (under lock) --------------------------------------------------------- */

static ks_entry *find_entry(ks_repo *r, const char *name)
{
    for (size_t i = 0; name && i < r->n; i++)
        if (strcmp(r->entries[i]->name, name) == 0)
            return r->entries[i];
    return NULL;
}

/* The entry of name, made (in name order) when it is new; NULL: no memory. */
static ks_entry *entry_for(ks_repo *r, const char *name)
{
    ks_entry *e = find_entry(r, name);
    if (e)
        return e;
    if (!grow((void **)&r->entries, &r->cap, r->n, sizeof *r->entries) ||
        !(e = calloc(1, sizeof *e)) || !(e->name = strdup(name))) {
        free(e);
        return NULL;
    }
    size_t at = r->n;
    while (at > 0 && strcmp(r->entries[at - 1]->name, name) > 0)
        at--;
    memmove(r->entries + at + 1, r->entries + at, (r->n - at) * sizeof *r->entries);
    r->entries[at] = e;
    r->n++;
    return e;
}

/* The statistics of version number of e, made (in order) when new. */
static ks_stats *stats_for(ks_entry *e, int64_t number)
{
    ks_stats **pp = &e->stats;
    while (*pp && (*pp)->version < number)
        pp = &(*pp)->next;
    if (*pp && (*pp)->version == number)
        return *pp;
    ks_stats *s = calloc(1, sizeof *s);
    if (s) {
        s->version = number;
        s->next = *pp;
        *pp = s;
    }
    return s;
}

static const char *entry_state(const ks_entry *e, const char **reason)
{
    *reason = NULL;
    if (e->n_served)
        return "READY";
    *reason = e->reason ? e->reason : "unloaded";
    return e->live ? "UNLOADING" : "UNAVAILABLE";
}

/* ---- messages ------------------------------------------------------------------------ */

/* The names of the table and of models.dir, sorted, each once (owned). */
static void known_names(ks_repo *r, char ***out, size_t *n_out)
{
    char **names = NULL;
    size_t n = 0;
    disk_names(r->dir, &names, &n, NULL); /* a folder that went away: the table's only */
    size_t cap = n;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->n; i++) {
        const char *name = r->entries[i]->name;
        if (bsearch(&name, names, n, sizeof *names, cmp_name))
            continue;
        char *copy = strdup(name);
        if (copy && grow((void **)&names, &cap, n, sizeof *names))
            names[n++] = copy;
        else
            free(copy);
    }
    pthread_mutex_unlock(&r->lock);
    if (n)
        qsort(names, n, sizeof *names, cmp_name);
    *out = names;
    *n_out = n;
}

/* ENOTFOUND for a name the table does not have: loadable, or unknown. */
static inferd_status unknown_model(ks_repo *r, const char *name, inferd_error *err)
{
    char **names = NULL, list[320];
    size_t n = 0;
    known_names(r, &names, &n);
    const char *key = name ? name : "";
    /* Not in the table, so what names has of it is models.dir's. */
    if (bsearch(&key, names, n, sizeof *names, cmp_name))
        inferd_error_set(err, INFERD_ENOTFOUND, "model '%s' is in models.dir but not loaded: "
                         "POST /v2/repository/models/%s/load loads it", key, key);
    else
        inferd_error_set(err, INFERD_ENOTFOUND, "no model '%s'; the models are: %s", key,
                         ks_name_list(names, n, name_at, list, sizeof list));
    free_names(names, n);
    return INFERD_ENOTFOUND;
}

/* "1, 2" of numbers into buf. */
static const char *version_list(const int64_t *v, size_t n, char *buf, size_t size)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && pos < size; i++)
        pos += (size_t)snprintf(buf + pos, size - pos, "%s%" PRId64, i ? ", " : "", v[i]);
    return buf;
}

static inferd_status no_version(const ks_entry *e, const char *version, inferd_error *err)
{
    int64_t numbers[64];
    size_t n = 0;
    for (size_t i = 0; i < e->n_served && n < 64; i++)
        numbers[n++] = e->served[i]->number;
    for (size_t i = 0; !e->n_served && i < e->n_found && n < 64; i++)
        numbers[n++] = e->found[i];
    char list[320];
    version_list(numbers, n, list, sizeof list);
    return inferd_error_set(err, INFERD_ENOTFOUND, "model '%s' has no version '%s'; %s %s",
                            e->name, version, n == 1 ? "its only version is" : "its versions are:",
                            n ? list : "(none)");
}

/* ---- versions: open, reference, close ------------------------------------------------- */

static void version_free(ks_version *v)
{
    if (!v)
        return;
    if (v->m.model)
        inferd_model_close(v->m.model);
    free(v->m.in);
    free(v->m.out);
    free(v->m.name);
    free(v->m.path);
    inferd_value_free(v->options);
    inferd_value_free(v->policy);
    free(v);
}

static inferd_status read_io(ks_model *m, inferd_error *err)
{
    m->n_in = inferd_model_io_count(m->model, 0);
    m->n_out = inferd_model_io_count(m->model, 1);
    m->in = calloc(m->n_in + 1, sizeof *m->in);
    m->out = calloc(m->n_out + 1, sizeof *m->out);
    if (!m->in || !m->out)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < m->n_in && st == INFERD_OK; i++)
        st = inferd_model_io(m->model, 0, i, &m->in[i], err);
    for (size_t i = 0; i < m->n_out && st == INFERD_OK; i++)
        st = inferd_model_io(m->model, 1, i, &m->out[i], err);
    return st;
}

/* maxBatchSize > 0 makes the first dimension of every input and output the
 * batch (as Triton): it must be variable. */
static inferd_status check_batch(const ks_model *m, int64_t max_batch, inferd_error *err)
{
    for (int out = 0; max_batch > 0 && out < 2; out++) {
        const inferd_tensor_info *io = out ? m->out : m->in;
        for (size_t i = 0; i < (out ? m->n_out : m->n_in); i++) {
            if (io[i].ndim > 0 && io[i].shape[0] < 0)
                continue;
            char shape[160];
            return inferd_error_set(err, INFERD_EINVAL, "maxBatchSize %" PRId64 " makes the "
                                    "first dimension of every input and output the batch, "
                                    "which must be variable (-1); %s '%s' is %s", max_batch,
                                    out ? "output" : "input", io[i].name,
                                    inferd_shape_format(io[i].ndim, io[i].shape, shape,
                                                        sizeof shape));
        }
    }
    return INFERD_OK;
}

void ks_version_release(ks_version *v)
{
    if (!v)
        return;
    ks_repo *r = v->repo;
    pthread_mutex_lock(&r->lock);
    bool last = --v->refs == 0;
    if (last)
        for (ks_version **pp = &v->entry->live; *pp; pp = &(*pp)->next_live)
            if (*pp == v) {
                *pp = v->next_live;
                break;
            }
    pthread_mutex_unlock(&r->lock);
    if (last) {
        inferd_log_debug(LOG, "model %s: version %s closed", v->m.name, v->label);
        version_free(v); /* its session closes outside the lock */
    }
}

/* ---- loading ------------------------------------------------------------------------ */

/* What one load reads from models.dir before it replaces what serves. */
typedef struct ks_plan {
    const char *name;      /* borrowed */
    unsigned kind;         /* HAS_FILE, HAS_FOLDER */
    char *where;           /* owned: the file or the folder */
    int64_t *versions;     /* owned, ascending */
    size_t n_versions;
    int64_t max_batch;
    inferd_value *options; /* owned: the backend options as given (NULL: none) */
    inferd_value *policy;  /* owned: versionPolicy checked, as Triton writes it (NULL: all) */
    ks_version **opened;   /* owned: n_versions, until they serve */
} ks_plan;

static void plan_free(ks_plan *p)
{
    for (size_t i = 0; p->opened && i < p->n_versions; i++)
        version_free(p->opened[i]);
    free(p->opened);
    free(p->where);
    free(p->versions);
    inferd_value_free(p->options);
    inferd_value_free(p->policy);
}

/* base with over's keys laid over it, key by key (a new object). */
static inferd_value *merge_options(const inferd_value *base, const inferd_value *over)
{
    inferd_value *m = base ? inferd_value_copy(base) : inferd_value_object();
    const char *key;
    inferd_value *item;
    for (size_t i = 0; m && inferd_value_object_entry(over, i, &key, &item); i++)
        if (inferd_value_object_set(m, key, inferd_value_copy(item), NULL) != INFERD_OK) {
            inferd_value_free(m);
            return NULL;
        }
    return m;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Keeps the versions of p that versionPolicy names: given, what config.json
 * says (which of the three it is); policy, the same checked by its fields
 * (their values, defaults in). p->policy gets it as Triton writes it. */
static inferd_status apply_policy(ks_plan *p, const inferd_value *given,
                                  const inferd_value *policy, const char *path, inferd_error *err)
{
    const inferd_value *latest = inferd_value_object_get(given, "latest")
                                     ? inferd_value_object_get(policy, "latest") : NULL;
    const inferd_value *all = inferd_value_object_get(given, "all");
    const inferd_value *specific = inferd_value_object_get(given, "specific")
                                       ? inferd_value_object_get(policy, "specific") : NULL;
    if (!!latest + !!all + !!specific != 1)
        return inferd_error_set(err, INFERD_EINVAL, "%s: versionPolicy takes one of latest, all "
                                "and specific, not %zu of them", path,
                                (size_t)(!!latest + !!all + !!specific));
    bool ok = true;
    inferd_value *out = inferd_value_object(), *inner = inferd_value_object();
    if (latest) {
        int64_t n = inferd_value_int_or(inferd_value_object_get(latest, "numVersions"), 1);
        if ((size_t)n < p->n_versions) {
            memmove(p->versions, p->versions + (p->n_versions - (size_t)n),
                    (size_t)n * sizeof *p->versions);
            p->n_versions = (size_t)n;
        }
        inferd__put(inner, "num_versions", inferd_value_int(n), &ok);
        inferd__put(out, "latest", inner, &ok);
    } else if (specific) {
        const inferd_value *list = inferd_value_object_get(specific, "versions");
        size_t n = inferd_value_array_len(list);
        if (n == 0) {
            inferd_value_free(out);
            inferd_value_free(inner);
            return inferd_error_set(err, INFERD_EINVAL, "%s: versionPolicy.specific.versions "
                                    "names no version", path);
        }
        int64_t *keep = calloc(n ? n : 1, sizeof *keep);
        inferd_value *arr = inferd_value_array();
        if (!keep || !arr) {
            free(keep);
            inferd_value_free(arr);
            inferd_value_free(out);
            inferd_value_free(inner);
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n; i++) {
            double d = inferd_value_double_or(inferd_value_array_get(list, i), 0);
            bool have = false;
            for (size_t k = 0; k < p->n_versions && !have; k++)
                have = (double)p->versions[k] == d;
            if (d < 1 || d != (double)(int64_t)d || !have) {
                free(keep);
                inferd_value_free(arr);
                inferd_value_free(out);
                inferd_value_free(inner);
                if (d < 1 || d != (double)(int64_t)d)
                    return inferd_error_set(err, INFERD_EINVAL, "%s: versionPolicy.specific."
                                            "versions: %g is not a version number (1, 2, ...)",
                                            path, d);
                return inferd_error_set(err, INFERD_EINVAL, "%s: versionPolicy.specific names "
                                        "version %g, which has no folder (%s/%g/" KS_MODEL_FILE
                                        ")", path, d, p->where, d);
            }
            keep[i] = (int64_t)d;
        }
        qsort(keep, n, sizeof *keep, cmp_i64);
        size_t u = 0;
        for (size_t i = 0; i < n; i++)
            if (u == 0 || keep[u - 1] != keep[i])
                keep[u++] = keep[i];
        for (size_t i = 0; i < u; i++)
            inferd__push(arr, inferd_value_int(keep[i]), &ok);
        free(p->versions);
        p->versions = keep;
        p->n_versions = u;
        inferd__put(inner, "versions", arr, &ok);
        inferd__put(out, "specific", inner, &ok);
    } else {
        inferd__put(out, "all", inner, &ok);
    }
    if (!ok) {
        inferd_value_free(out);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    p->policy = out;
    return INFERD_OK;
}

/* The folder's config.json, checked: max_batch, the options, the versions. */
static inferd_status read_config(ks_repo *r, ks_plan *p, inferd_error *err)
{
    char *path = NULL;
    inferd_value *given = NULL;
    inferd_props *props = NULL;
    if (asprintf(&path, "%s/" KS_CONFIG_FILE, p->where) < 0)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    inferd_status st = inferd__json_file_read(path, KS_MAX_CONFIG_BYTES, &given, err);
    if (st == INFERD_OK)
        st = inferd_props_validate(r->config_specs, path, given, &props, err);
    if (st == INFERD_OK) {
        p->max_batch = inferd_props_int(props, "maxBatchSize");
        p->options = merge_options(r->options, inferd_value_object_get(given, "backendOptions"));
        if (!p->options)
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    const inferd_value *policy = inferd_value_object_get(given, "versionPolicy");
    if (st == INFERD_OK && policy)
        st = apply_policy(p, policy, inferd_props_get(props, "versionPolicy"), path, err);
    inferd_props_free(props);
    inferd_value_free(given);
    free(path);
    return st;
}

/* Which files make model p->name, and its settings. ENOTFOUND: models.dir
 * has no such model (p->kind 0). */
static inferd_status plan_read(ks_repo *r, ks_plan *p, inferd_error *err)
{
    p->kind = model_kind(r->dir, p->name);
    if (!p->kind) {
        char **names = NULL, list[320];
        size_t n = 0;
        known_names(r, &names, &n);
        inferd_error_set(err, INFERD_ENOTFOUND, "no model '%s' in models.dir (%s); the models "
                         "are: %s", p->name, r->dir,
                         ks_name_list(names, n, name_at, list, sizeof list));
        free_names(names, n);
        return INFERD_ENOTFOUND;
    }
    bool file = p->kind == HAS_FILE;
    if (asprintf(&p->where, file ? "%s/%s.onnx" : "%s/%s", r->dir, p->name) < 0) {
        p->where = NULL;
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    if (p->kind == (HAS_FILE | HAS_FOLDER))
        return inferd_error_set(err, INFERD_EINVAL, "models.dir has both %s.onnx and the folder "
                                "%s/: keep one", p->name, p->name);
    inferd_status st = INFERD_OK;
    if (file) {
        if (!(p->versions = malloc(sizeof *p->versions)) ||
            (r->options && !(p->options = inferd_value_copy(r->options))))
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
        p->versions[0] = 1;
        p->n_versions = 1;
    } else if ((st = list_versions(p->where, &p->versions, &p->n_versions, err)) == INFERD_OK &&
               p->n_versions == 0) {
        st = inferd_error_set(err, INFERD_EINVAL, "%s has no version folder (such as "
                              "%s/1/" KS_MODEL_FILE ")", p->where, p->where);
    }
    if (st == INFERD_OK && !file)
        st = read_config(r, p, err);
    if (st == INFERD_OK && !(p->opened = calloc(p->n_versions, sizeof *p->opened)))
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    return st;
}

/* Opens version i of the plan. */
static inferd_status plan_open(ks_repo *r, ks_plan *p, size_t i, inferd_error *err)
{
    ks_version *v = calloc(1, sizeof *v);
    if (!v)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    bool made = (v->m.name = strdup(p->name)) != NULL;
    if (made && p->kind == HAS_FILE)
        made = (v->m.path = strdup(p->where)) != NULL;
    else if (made && asprintf(&v->m.path, "%s/%" PRId64 "/" KS_MODEL_FILE, p->where,
                              p->versions[i]) < 0) {
        v->m.path = NULL;
        made = false;
    }
    if (made && p->options)
        made = (v->options = inferd_value_copy(p->options)) != NULL;
    if (made && p->policy)
        made = (v->policy = inferd_value_copy(p->policy)) != NULL;
    /* Its own session, read from the file as it is now: a reload's old
     * version finishes its requests on the old one. */
    inferd_status st = made ? INFERD_OK : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (st == INFERD_OK)
        st = inferd_registry_model_load(r->reg, KS_BACKEND, v->m.path, p->options, &v->m.model,
                                        err);
    if (st == INFERD_OK)
        st = read_io(&v->m, err);
    if (st == INFERD_OK)
        st = check_batch(&v->m, p->max_batch, err);
    if (st != INFERD_OK) {
        version_free(v);
        if (p->kind != HAS_FILE)
            inferd_error_prefix(err, "version %" PRId64, p->versions[i]);
        return st;
    }
    v->number = p->versions[i];
    snprintf(v->label, sizeof v->label, "%" PRId64, v->number);
    v->max_batch = p->max_batch;
    v->repo = r;
    p->opened[i] = v;
    return INFERD_OK;
}

/* Under lock: the plan's versions serve e; *old gets what served before
 * (the caller releases it after the lock). */
static inferd_status commit(ks_entry *e, ks_plan *p, ks_version ***old, size_t *n_old,
                            inferd_error *err)
{
    for (size_t i = 0; i < p->n_versions; i++)
        if (!(p->opened[i]->stats = stats_for(e, p->versions[i])))
            return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    *old = e->served;
    *n_old = e->n_served;
    e->served = p->opened;
    e->n_served = p->n_versions;
    p->opened = NULL;
    for (size_t i = 0; i < e->n_served; i++) {
        ks_version *v = e->served[i];
        v->entry = e;
        v->refs = 1; /* the table's */
        v->next_live = e->live;
        e->live = v;
    }
    free(e->reason);
    e->reason = NULL;
    e->unloaded = false;
    return INFERD_OK;
}

static void release_all(ks_version **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ks_version_release(v[i]);
    free(v);
}

/* Reads model name from its files and serves what it read. When it fails,
 * what served before goes on; when nothing did, the entry keeps why.
 * Under r->change. EINVAL for every failure of the model's files. */
static inferd_status load_model(ks_repo *r, const char *name, inferd_error *err)
{
    ks_plan p = {.name = name};
    inferd_status st = plan_read(r, &p, err);
    for (size_t i = 0; st == INFERD_OK && i < p.n_versions; i++)
        st = plan_open(r, &p, i, err);
    ks_version **old = NULL;
    size_t n_old = 0;
    pthread_mutex_lock(&r->lock);
    ks_entry *e = p.kind ? entry_for(r, name) : find_entry(r, name);
    if (st == INFERD_OK)
        st = e ? commit(e, &p, &old, &n_old, err)
               : inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    if (e && p.kind) { /* the versions its files have now */
        free(e->found);
        e->found = p.versions;
        e->n_found = p.n_versions;
        p.versions = NULL;
    }
    bool serving = e && e->n_served > 0;
    if (st != INFERD_OK && p.kind && e && !serving) {
        free(e->reason);
        e->reason = strdup(err->message);
    }
    pthread_mutex_unlock(&r->lock);
    release_all(old, n_old);
    if (st == INFERD_OK) {
        inferd_log_debug(LOG, "model %s: serving %zu version(s) from %s", name, p.n_versions,
                         p.where);
    } else if (p.kind && serving) {
        inferd_log_warn(LOG, "model %s: the load failed; what served before still does: %s",
                        name, err->message);
    } else if (p.kind) {
        inferd_log_warn(LOG, "model %s (%s) is not served: %s", name, p.where, err->message);
    }
    if (st != INFERD_OK && st != INFERD_ENOMEM && p.kind)
        st = inferd_error_recode(err, INFERD_EINVAL);
    plan_free(&p);
    return st;
}

/* ---- the API ---------------------------------------------------------------------- */

inferd_status ks_repo_open(inferd_registry *reg, const char *dir, bool required,
                           const inferd_value *backend_options, ks_repo **out,
                           inferd_error *err)
{
    *out = NULL;
    ks_repo *r = calloc(1, sizeof *r);
    if (!r || !(r->dir = strdup(dir))) {
        free(r);
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    r->reg = reg;
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->change, NULL);
    memcpy(r->config_specs, config_specs, sizeof config_specs);
    const inferd_component *backend = inferd_registry_find(reg, KS_BACKEND, NULL);
    for (size_t i = 0; backend && i < N_CONFIG_SPECS; i++)
        if (r->config_specs[i].name && strcmp(r->config_specs[i].name, "backendOptions") == 0)
            r->config_specs[i].fields = backend->props;
    /* Checked here, once: a mistake stops the start rather than leaving
     * every model unready. */
    inferd_props *props = NULL;
    inferd_status st = INFERD_OK;
    if (backend && inferd_value_object_len(backend_options) > 0) {
        st = inferd_props_validate(backend->props, "config models.backend_options",
                                   backend_options, &props, err);
        if (st == INFERD_OK && !(r->options = inferd_value_copy(backend_options)))
            st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    inferd_props_free(props);
    char **names = NULL;
    size_t n = 0;
    inferd_error listed = {0};
    if (st == INFERD_OK && disk_names(dir, &names, &n, &listed) != INFERD_OK) {
        /* A folder the user named must exist; the default one may be
         * missing (a build without its models): then there are none. */
        if (required || listed.code == INFERD_ENOMEM)
            st = inferd_error_set(err, listed.code == INFERD_ENOMEM ? INFERD_ENOMEM
                                                                     : INFERD_EINVAL,
                                  "models.dir: %s", listed.message);
        else
            inferd_log_warn(LOG, "no models to serve: %s", listed.message);
    }
    for (size_t i = 0; i < n && st == INFERD_OK; i++) {
        inferd_error one = {0};
        pthread_mutex_lock(&r->change);
        /* A model that fails is kept, with why; only memory stops the start. */
        if (load_model(r, names[i], &one) == INFERD_ENOMEM)
            st = inferd_error_set(err, INFERD_ENOMEM, "%s", one.message);
        pthread_mutex_unlock(&r->change);
    }
    free_names(names, n);
    if (st != INFERD_OK) {
        ks_repo_free(r);
        return st;
    }
    *out = r;
    return INFERD_OK;
}

void ks_repo_free(ks_repo *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        ks_entry *e = r->entries[i];
        release_all(e->served, e->n_served);
        for (ks_stats *s = e->stats, *next; s; s = next) {
            next = s->next;
            free(s);
        }
        free(e->found);
        free(e->reason);
        free(e->name);
        free(e);
    }
    free(r->entries);
    inferd_value_free(r->options);
    pthread_mutex_destroy(&r->lock);
    pthread_mutex_destroy(&r->change);
    free(r->dir);
    free(r);
}

void ks_repo_counts(ks_repo *r, size_t *models, size_t *ready)
{
    pthread_mutex_lock(&r->lock);
    *models = r->n;
    *ready = 0;
    for (size_t i = 0; i < r->n; i++)
        *ready += r->entries[i]->n_served > 0;
    pthread_mutex_unlock(&r->lock);
}

/* Under lock: the version of e a request gets, referenced. */
static inferd_status pick_version(ks_entry *e, const char *version, ks_version **out,
                                  inferd_error *err)
{
    ks_version *v = e->n_served && !version ? e->served[e->n_served - 1] : NULL;
    for (size_t i = 0; version && i < e->n_served && !v; i++)
        if (strcmp(e->served[i]->label, version) == 0)
            v = e->served[i];
    bool found = false;
    int64_t number;
    for (size_t i = 0; version && !e->n_served && version_number(version, &number) &&
                       i < e->n_found; i++)
        found |= e->found[i] == number;
    if (!v && version && (e->n_served || !found))
        return no_version(e, version, err);
    if (!v && e->reason)
        return inferd_error_set(err, INFERD_ESTATE, "model '%s' is not ready: it failed to "
                                "load: %s", e->name, e->reason);
    if (!v)
        return inferd_error_set(err, INFERD_ENOTFOUND, "model '%s' is not loaded (it was "
                                "unloaded): POST /v2/repository/models/%s/load loads it",
                                e->name, e->name);
    v->refs++;
    *out = v;
    return INFERD_OK;
}

inferd_status ks_repo_acquire(ks_repo *r, const char *name, const char *version,
                              ks_version **out, inferd_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&r->lock);
    ks_entry *e = find_entry(r, name);
    inferd_status st = e ? pick_version(e, version, out, err) : INFERD_ENOTFOUND;
    pthread_mutex_unlock(&r->lock);
    return e ? st : unknown_model(r, name, err);
}

void ks_version_record(ks_version *v, bool ok, uint64_t batch, const ks_timing *t)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&v->repo->lock);
    ks_stats *s = v->stats;
    const uint64_t ns[N_DURATIONS] = {ok ? t->total : 0, ok ? 0 : t->total, t->queue, t->input,
                                      t->infer, t->output};
    for (int d = 0; d < N_DURATIONS; d++)
        if (d == (ok ? D_SUCCESS : D_FAIL) || (ok && d >= D_QUEUE)) {
            s->d[d].count++;
            s->d[d].ns += ns[d];
        }
    if (ok) {
        s->inference_count += batch;
        s->execution_count++;
    }
    s->last_inference_ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    pthread_mutex_unlock(&v->repo->lock);
}

/* Under lock: the labels of e's served versions. */
static inferd_value *served_labels(const ks_entry *e, bool *ok)
{
    inferd_value *a = inferd_value_array();
    for (size_t i = 0; i < e->n_served; i++)
        inferd__push(a, inferd_value_string(e->served[i]->label), ok);
    if (!a)
        *ok = false;
    return a;
}

inferd_value *ks_repo_versions(ks_repo *r, const ks_version *v, bool *ok)
{
    pthread_mutex_lock(&r->lock);
    inferd_value *a = served_labels(v->entry, ok);
    pthread_mutex_unlock(&r->lock);
    return a;
}

inferd_status ks_repo_health(ks_repo *r, const char *name,
                             void (*down)(void *ctx, const char *reason), void *ctx)
{
    pthread_mutex_lock(&r->lock);
    bool found = false;
    for (size_t i = 0; i < r->n; i++) {
        const ks_entry *e = r->entries[i];
        if (name && strcmp(e->name, name) != 0)
            continue;
        found = true;
        if (e->n_served || !e->reason)
            continue; /* serving, or unloaded on purpose */
        char msg[INFERD_ERROR_MESSAGE_MAX + 128];
        snprintf(msg, sizeof msg, "model '%s' is not ready: it failed to load: %s", e->name,
                 e->reason);
        down(ctx, msg);
    }
    pthread_mutex_unlock(&r->lock);
    return found || !name ? INFERD_OK : INFERD_ENOTFOUND;
}

/* A model's life on the event bus (made whole, or not at all). */
static void publish(const char *event, const char *name, inferd_value *versions)
{
    bool ok = true;
    inferd_value *ev = inferd_value_object();
    inferd__put_str(ev, "model", name, &ok);
    if (versions)
        inferd__put(ev, "versions", versions, &ok);
    inferd_error e = {0};
    if (!ok)
        inferd_value_free(ev);
    else if (inferd_event_publish(event, ev, &e) != INFERD_OK)
        inferd_log_warn(LOG, "event %s: %s", event, e.message);
}

/* Under lock: {"name", "state", "versions", "reason"?}. */
static inferd_value *describe(const ks_entry *e, bool *ok)
{
    const char *reason;
    inferd_value *v = inferd_value_object();
    inferd__put(v, "name", inferd_value_string(e->name), ok);
    inferd__put(v, "state", inferd_value_string(entry_state(e, &reason)), ok);
    inferd__put(v, "versions", served_labels(e, ok), ok);
    inferd__put_str(v, "reason", reason, ok);
    return v;
}

/* The reply of a load or an unload: what name is now. */
static inferd_status describe_name(ks_repo *r, const char *name, inferd_value **out,
                                   inferd_error *err)
{
    bool ok = true;
    pthread_mutex_lock(&r->lock);
    const ks_entry *e = find_entry(r, name);
    *out = e ? describe(e, &ok) : NULL;
    pthread_mutex_unlock(&r->lock);
    if (ok && *out)
        return INFERD_OK;
    inferd_value_free(*out);
    *out = NULL;
    return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
}

inferd_status ks_repo_load(ks_repo *r, const char *name, inferd_value **out, inferd_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&r->change);
    inferd_status st = load_model(r, name, err);
    if (st == INFERD_OK)
        st = describe_name(r, name, out, err);
    if (st == INFERD_OK)
        publish("model_loaded", name,
                inferd_value_copy(inferd_value_object_get(*out, "versions")));
    pthread_mutex_unlock(&r->change);
    return st;
}

inferd_status ks_repo_unload(ks_repo *r, const char *name, inferd_value **out,
                             inferd_error *err)
{
    *out = NULL;
    pthread_mutex_lock(&r->change);
    ks_version **old = NULL;
    size_t n_old = 0;
    pthread_mutex_lock(&r->lock);
    ks_entry *e = find_entry(r, name);
    if (e) {
        old = e->served;
        n_old = e->n_served;
        e->served = NULL;
        e->n_served = 0;
        e->unloaded = true;
        free(e->reason);
        e->reason = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    /* The requests in flight hold their own references: the last one
     * closes the session. */
    release_all(old, n_old);
    inferd_status st = e ? describe_name(r, name, out, err) : unknown_model(r, name, err);
    if (e && st == INFERD_OK) {
        inferd_log_info(LOG, "model %s: unloaded", name);
        publish("model_unloaded", name, NULL);
    }
    pthread_mutex_unlock(&r->change);
    return st;
}

/* ---- the index, the statistics, the metrics ------------------------------------------- */

static void index_push(inferd_value *list, const char *name, const char *version,
                       const char *state, const char *reason, bool *ok)
{
    inferd_value *o = inferd_value_object();
    inferd__put(o, "name", inferd_value_string(name), ok);
    inferd__put_str(o, "version", version, ok);
    inferd__put(o, "state", inferd_value_string(state), ok);
    inferd__put_str(o, "reason", reason, ok);
    inferd__push(list, o, ok);
}

/* Under lock: one item per version of e (one without a version when it
 * has none). */
static void index_entry(inferd_value *list, const ks_entry *e, bool only_ready, bool *ok)
{
    const char *reason, *state = entry_state(e, &reason);
    char label[24];
    for (size_t i = 0; i < e->n_served; i++)
        index_push(list, e->name, e->served[i]->label, state, NULL, ok);
    if (e->n_served || only_ready)
        return;
    for (size_t i = 0; i < e->n_found; i++) {
        snprintf(label, sizeof label, "%" PRId64, e->found[i]);
        index_push(list, e->name, label, state, reason, ok);
    }
    if (!e->n_found)
        index_push(list, e->name, NULL, state, reason, ok);
}

inferd_value *ks_repo_index(ks_repo *r, bool only_ready, bool *ok)
{
    /* models.dir as it is now: models added since the last load are listed
     * too, not loaded. */
    char **names = NULL;
    size_t n = 0;
    disk_names(r->dir, &names, &n, NULL);
    inferd_value *list = inferd_value_array();
    if (!list)
        *ok = false;
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0, j = 0; i < r->n || j < n;) {
        int c = i == r->n ? 1 : j == n ? -1 : strcmp(r->entries[i]->name, names[j]);
        if (c <= 0)
            index_entry(list, r->entries[i++], only_ready, ok);
        else if (!only_ready)
            index_push(list, names[j], NULL, "UNAVAILABLE", "not loaded", ok);
        j += c >= 0 && j < n;
    }
    pthread_mutex_unlock(&r->lock);
    free_names(names, n);
    return list;
}

static inferd_value *stats_value(const ks_entry *e, const ks_stats *s, bool *ok)
{
    char label[24];
    snprintf(label, sizeof label, "%" PRId64, s->version);
    inferd_value *v = inferd_value_object(), *is = inferd_value_object();
    inferd__put(v, "name", inferd_value_string(e->name), ok);
    inferd__put(v, "version", inferd_value_string(label), ok);
    inferd__put(v, "last_inference", inferd_value_int((int64_t)s->last_inference_ms), ok);
    inferd__put(v, "inference_count", inferd_value_int((int64_t)s->inference_count), ok);
    inferd__put(v, "execution_count", inferd_value_int((int64_t)s->execution_count), ok);
    /* cache_hit: inferd has no response cache. */
    for (int d = 0; d <= N_DURATIONS; d++) {
        inferd_value *o = inferd_value_object();
        inferd__put(o, "count", inferd_value_int(d < N_DURATIONS ? (int64_t)s->d[d].count : 0),
                    ok);
        inferd__put(o, "ns", inferd_value_int(d < N_DURATIONS ? (int64_t)s->d[d].ns : 0), ok);
        inferd__put(is, d < N_DURATIONS ? duration_names[d] : "cache_hit", o, ok);
    }
    inferd__put(v, "inference_stats", is, ok);
    inferd__put(v, "batch_stats", inferd_value_array(), ok);
    return v;
}

inferd_status ks_repo_stats(ks_repo *r, const char *name, const char *version,
                            inferd_value **out, inferd_error *err)
{
    *out = NULL;
    bool ok = true, found = false;
    inferd_value *list = inferd_value_array();
    inferd_status st = INFERD_OK;
    pthread_mutex_lock(&r->lock);
    ks_entry *one = find_entry(r, name);
    for (size_t i = 0; i < r->n; i++) {
        const ks_entry *e = r->entries[i];
        if (name && e != one)
            continue;
        for (const ks_stats *s = e->stats; s; s = s->next) {
            char label[24];
            snprintf(label, sizeof label, "%" PRId64, s->version);
            if (version && strcmp(label, version) != 0)
                continue;
            found = true;
            inferd__push(list, stats_value(e, s, &ok), &ok);
        }
    }
    if (one && version && !found)
        st = no_version(one, version, err);
    pthread_mutex_unlock(&r->lock);
    if (name && !one)
        st = unknown_model(r, name, err);
    if (st == INFERD_OK && ok) {
        *out = inferd_value_object();
        inferd__put(*out, "model_stats", list, &ok);
        list = NULL;
    }
    inferd_value_free(list);
    if (st == INFERD_OK && !ok) {
        inferd_value_free(*out);
        *out = NULL;
        st = inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    }
    return st;
}

/* A label value with '\\', '"' and newlines escaped, as the format asks. */
static void put_label(FILE *to, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            fputc('\\', to);
        fputs(*s == '\n' ? "\\n" : (char[2]){*s, 0}, to);
    }
}

/* One series: for every version ever served, the durations from..to
 * (their counts, or their seconds) labelled by `label`. Under lock. */
static void put_series(FILE *to, ks_repo *r, const char *metric, const char *help,
                       const char *label, int from, int upto, bool seconds)
{
    fprintf(to, "# HELP %s %s\n# TYPE %s counter\n", metric, help, metric);
    for (size_t i = 0; i < r->n; i++)
        for (const ks_stats *s = r->entries[i]->stats; s; s = s->next)
            for (int d = from; d <= upto; d++) {
                fprintf(to, "%s{model=\"", metric);
                put_label(to, r->entries[i]->name);
                fprintf(to, "\",version=\"%" PRId64 "\",%s=\"%s\"} ", s->version, label,
                        d == D_FAIL ? "failure" : duration_names[d]);
                if (seconds)
                    fprintf(to, "%.9f\n", (double)s->d[d].ns / 1e9);
                else
                    fprintf(to, "%" PRIu64 "\n", s->d[d].count);
            }
}

void ks_repo_metrics(ks_repo *r, FILE *to)
{
    pthread_mutex_lock(&r->lock);
    put_series(to, r, "inferd_kserve_requests_total", "KServe inference requests by model, "
               "version and result (failure: refused or failed once it reached the version)",
               "result", D_SUCCESS, D_FAIL, false);
    put_series(to, r, "inferd_kserve_request_seconds_total", "time from a KServe inference "
               "request's headers to its reply, by model, version and result", "result",
               D_SUCCESS, D_FAIL, true);
    put_series(to, r, "inferd_kserve_phase_seconds_total", "time successful KServe inference "
               "requests spent waiting for a worker (queue), parsing (compute_input), running "
               "the model (compute_infer) and building the reply (compute_output)", "phase",
               D_QUEUE, D_OUTPUT, true);
    pthread_mutex_unlock(&r->lock);
}
