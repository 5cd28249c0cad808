/* plugin/folders.c: where plugins live, and loading them as a config says.
 *
 * The folders are found next to libinferd itself (dladdr), so the same
 * binary finds its plugins in a build tree (build/lib/inferd/...) and when
 * installed (<prefix>/lib/inferd/...), with nothing configured.
 */
#include "plugin/internal.h"
#include "estimators/estimators.h"

#include <dirent.h>
#include <dlfcn.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char builtin_dir[4096 + 32], plugin_dir[4096 + 32], models_dir[4096 + 32],
    python_dir[4096 + 32]; /* + suffix */
static pthread_once_t folders_once = PTHREAD_ONCE_INIT;

static void find_folders(void)
{
    Dl_info info;
    char lib[4096] = ".";
    if (dladdr((void *)inferd_builtin_dir, &info) && info.dli_fname) {
        snprintf(lib, sizeof lib, "%s", info.dli_fname);
        char *dir = dirname(lib);
        memmove(lib, dir, strlen(dir) + 1);
    }
    snprintf(builtin_dir, sizeof builtin_dir, "%s/inferd/builtin", lib);
    snprintf(plugin_dir, sizeof plugin_dir, "%s/inferd/plugins", lib);
    snprintf(models_dir, sizeof models_dir, "%s/../share/inferd/models", lib);
    snprintf(python_dir, sizeof python_dir, "%s/../share/inferd/python", lib);
}

const char *inferd_default_python_dir(void)
{
    pthread_once(&folders_once, find_folders);
    return python_dir;
}

const char *inferd_default_models_dir(void)
{
    pthread_once(&folders_once, find_folders);
    return models_dir;
}

const char *inferd_builtin_dir(void)
{
    pthread_once(&folders_once, find_folders);
    return builtin_dir;
}

bool inferd_plugin_is_builtin(const inferd_plugin_info *p)
{
    const char *dir = inferd_builtin_dir();
    size_t len = strlen(dir);
    return p->path && strncmp(p->path, dir, len) == 0 && p->path[len] == '/';
}

const char *inferd_default_plugin_dir(void)
{
    pthread_once(&folders_once, find_folders);
    return plugin_dir;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_plugin_file(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 3 && strcmp(e->d_name + n - 3, ".so") == 0;
}

inferd_status inferd_registry_load_builtins(inferd_registry *reg, inferd_error *err)
{
    /* Every file, in name order, so their order never varies. */
    struct dirent **files = NULL;
    int n = scandir(inferd_builtin_dir(), &files, is_plugin_file, by_name);
    inferd_status st = INFERD_OK;
    for (int i = 0; i < n; i++) {
        if (st == INFERD_OK) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", inferd_builtin_dir(), files[i]->d_name);
            st = inferd_registry_load_file(reg, path, err);
        }
        free(files[i]);
    }
    free(files);
    /* The host's own families (the pipeline estimator: it needs the host's
     * pipeline engine), registered as built in. */
    if (st == INFERD_OK) {
        char origin[8192];
        snprintf(origin, sizeof origin, "%s/(libinferd)", inferd_builtin_dir());
        st = inferd_registry_add(reg, inferd__pipeline_family(), origin, err);
    }
    if (st != INFERD_OK)
        inferd_error_prefix(err, "built-in plugins");
    return st;
}

inferd_status inferd_registry_load_config(inferd_registry *reg, const inferd_config *cfg,
                                          inferd_error *err)
{
    inferd_status st = inferd_registry_load_builtins(reg, err);
    if (st != INFERD_OK)
        return st;

    const inferd_props *props = inferd_config_props(cfg);
    size_t n_active = inferd_props_list_len(props, "active_plugins");
    if (n_active == 0)
        return INFERD_OK;
    const char **active = calloc(n_active, sizeof *active);
    if (!active)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    /* One named in plugins.isolated too runs in its worker instead
     * (portable/portables.c), not in this process. */
    size_t n = 0;
    for (size_t i = 0; i < n_active; i++) {
        const char *name = inferd_props_list_at(props, "active_plugins", i);
        bool isolated = false;
        for (size_t k = 0; k < inferd_props_list_len(props, "plugins.isolated") && !isolated; k++)
            isolated = strcmp(inferd_props_list_at(props, "plugins.isolated", k), name) == 0;
        if (!isolated)
            active[n++] = name;
    }
    n_active = n;
    const char *dir = inferd_config_string(cfg, "plugins.dir");
    st = inferd_registry_activate(reg, *dir ? dir : inferd_default_plugin_dir(), active, n_active,
                                  err);
    free(active);
    return st;
}
