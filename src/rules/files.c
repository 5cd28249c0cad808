/* rules/files.c: where file streams may read and file actions may write.
 *
 * Only inside the folders of rules.file_dirs (default <state.dir>/files),
 * resolved once when the engine opens: a rule's definition comes over HTTP,
 * and the daemon must not become a way to read or append to any file its
 * user can. A path is allowed when it is absolute and, with its symbolic
 * links resolved (for a file that does not exist yet: its nearest existing
 * folder's, the rest free of ".."), it lies inside one of them.
 */
#include "rules/internal.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void free_dirs(rules_engine *e)
{
    for (size_t i = 0; i < e->n_file_dirs; i++)
        free(e->file_dirs[i]);
    free(e->file_dirs);
    e->file_dirs = NULL;
    e->n_file_dirs = 0;
}

void rules_files_free(rules_engine *e) { free_dirs(e); }

static inferd_status add_dir(rules_engine *e, const char *dir, inferd_error *err)
{
    char real[PATH_MAX];
    if (!realpath(dir, real))
        return inferd_error_set(err, INFERD_EINVAL, "rules.file_dirs: %s: %s", dir,
                                strerror(errno));
    char **grown = realloc(e->file_dirs, (e->n_file_dirs + 1) * sizeof *grown);
    if (!grown)
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    e->file_dirs = grown;
    if (!(e->file_dirs[e->n_file_dirs] = strdup(real)))
        return inferd_error_set(err, INFERD_ENOMEM, "out of memory");
    e->n_file_dirs++;
    return INFERD_OK;
}

inferd_status rules_files_open(rules_engine *e, const char *state_dir, inferd_error *err)
{
    const inferd_props *p = inferd_config_props(e->cfg);
    size_t n = inferd_props_list_len(p, "rules.file_dirs");
    inferd_status st = INFERD_OK;
    for (size_t i = 0; i < n && st == INFERD_OK; i++)
        st = add_dir(e, inferd_props_list_at(p, "rules.file_dirs", i), err);
    if (st == INFERD_OK && n == 0 && state_dir) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s/files", state_dir);
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            st = inferd_error_set(err, INFERD_EIO, "cannot create %s: %s", dir, strerror(errno));
        else
            st = add_dir(e, dir, err);
    }
    if (st != INFERD_OK)
        free_dirs(e);
    return st;
}

/* Whether a path's components include "..". */
static bool climbs(const char *path)
{
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return true;
        p += n;
    }
    return false;
}

/* path with its links resolved, into out; a path that does not exist yet
 * keeps its missing tail as written (refused if it climbs with ".."). */
static bool resolve(const char *path, char *out)
{
    if (realpath(path, out))
        return true;
    char head[PATH_MAX];
    if (strlen(path) >= sizeof head)
        return false;
    strcpy(head, path);
    for (;;) {
        char *slash = strrchr(head, '/');
        if (!slash)
            return false;
        const char *tail = path + (slash - head); /* "/rest/of/it" */
        *slash = '\0';
        if (realpath(head[0] ? head : "/", out)) {
            if (climbs(tail))
                return false;
            if (strlen(out) + strlen(tail) >= PATH_MAX)
                return false;
            strcat(out, strcmp(out, "/") == 0 ? tail + 1 : tail);
            return true;
        }
    }
}

inferd_status rules_file_allowed(const rules_engine *e, const char *what, const char *path,
                                 inferd_error *err)
{
    char real[PATH_MAX];
    if (path[0] != '/')
        return inferd_error_set(err, INFERD_EINVAL, "%s: \"%s\" is not an absolute path", what,
                                path);
    if (resolve(path, real))
        for (size_t i = 0; i < e->n_file_dirs; i++) {
            size_t len = strlen(e->file_dirs[i]);
            if (strncmp(real, e->file_dirs[i], len) == 0 &&
                (real[len] == '/' || (len == 1 && e->file_dirs[i][0] == '/')))
                return INFERD_OK;
        }
    char dirs[512] = "";
    for (size_t i = 0, pos = 0; i < e->n_file_dirs && pos < sizeof dirs; i++)
        pos += (size_t)snprintf(dirs + pos, sizeof dirs - pos, "%s%s", i ? ", " : "",
                                e->file_dirs[i]);
    return inferd_error_set(err, INFERD_EINVAL, "%s: %s is outside the folders files may be "
                            "read and written in (rules.file_dirs: %s)", what, path,
                            e->n_file_dirs ? dirs : "none");
}
