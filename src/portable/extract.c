/* portable/extract.c: a package's zip, extracted safely, and removing an
 * installed folder.
 *
 * A package comes from outside (an upload), so everything in it is checked
 * before it touches the disk: the whole zip's table of entries is read and
 * checked first, and only then is anything written; a failure half-way
 * removes what was written. */
#include "portable/package.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zip.h>

#include "inferd/log.h"
#include "portable/paths.h"

/* --- removing a tree ------------------------------------------------------------- */

static int remove_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    /* FTW_PHYS: a link is reported as FTW_SL and removed itself, never followed. */
    int r = type == FTW_DP || type == FTW_DNR ? rmdir(path) : unlink(path);
    return r != 0 && errno != ENOENT ? -1 : 0;
}

int portable_remove_tree(const char *path)
{
    struct stat sb;
    if (!path || !path[0]) {
        errno = EINVAL;
        return -1;
    }
    if (lstat(path, &sb) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISDIR(sb.st_mode))
        return unlink(path) != 0 && errno != ENOENT ? -1 : 0;
    /* nftw keeps errno from the callback's failing call when it stops. */
    return nftw(path, remove_one, 32, FTW_PHYS | FTW_DEPTH) == 0 ? 0 : -1;
}

/* --- extracting a zip ---------------------------------------------------------- */

typedef struct pkg_entry {
    zip_uint64_t index;
    char *name;        /* owned: the zip name without a folder's trailing '/' */
    bool dir;
    bool exec;         /* the zip records the owner-execute bit */
    zip_uint64_t size; /* declared uncompressed size */
} pkg_entry;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const pkg_entry *)a)->name, ((const pkg_entry *)b)->name);
}

static const char *file_kind(mode_t type)
{
    switch (type) {
    case S_IFLNK: return "a symbolic link";
    case S_IFIFO: return "a named pipe";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    default: return "not a regular file or folder";
    }
}

/* Reads and checks entry i into *e (e->name owned by e once set). */
static inferd_status check_entry(zip_t *za, zip_uint64_t i, pkg_entry *e, uint64_t *total,
                                 inferd_error *err)
{
    char shown[100];
    const char *raw = zip_get_name(za, i, ZIP_FL_ENC_GUESS);
    if (!raw)
        return inferd_error_set(err, INFERD_EINVAL, "entry %llu: no readable name: %s",
                                (unsigned long long)i, zip_strerror(za));
    pkg_show_name(raw, shown, sizeof shown);
    size_t len = strlen(raw);
    bool slash = len > 0 && raw[len - 1] == '/';
    if (len > PKG_MAX_PATH)
        return inferd_error_set(err, INFERD_EINVAL,
                                "entry %s: the name is %zu bytes long, more than the %d allowed",
                                shown, len, PKG_MAX_PATH);
    const char *problem = pkg_path_problem(raw, slash ? len - 1 : len);
    if (problem)
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown, problem);

    zip_stat_t zs;
    zip_stat_init(&zs);
    if (zip_stat_index(za, i, 0, &zs) != 0)
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown, zip_strerror(za));
    if ((zs.valid & ZIP_STAT_ENCRYPTION_METHOD) && zs.encryption_method != ZIP_EM_NONE)
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "entry %s: encrypted entries are not supported", shown);
    if ((zs.valid & ZIP_STAT_COMP_METHOD) && !zip_compression_method_supported(zs.comp_method, 0))
        return inferd_error_set(err, INFERD_EUNSUPPORTED,
                                "entry %s: compression method %d is not supported", shown,
                                (int)zs.comp_method);
    if (!(zs.valid & ZIP_STAT_SIZE))
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: no size recorded", shown);

    zip_uint8_t opsys = 0;
    zip_uint32_t attr = 0;
    if (zip_file_get_external_attributes(za, i, 0, &opsys, &attr) != 0)
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown, zip_strerror(za));
    bool dir = slash;
    bool exec = false;
    if (opsys == ZIP_OPSYS_UNIX) {
        mode_t mode = (mode_t)(attr >> 16);
        mode_t type = mode & S_IFMT;
        if (type == S_IFDIR)
            dir = true;
        else if (type == S_IFREG && slash)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "entry %s: a regular file whose name ends with /", shown);
        else if (type != 0 && type != S_IFREG)
            return inferd_error_set(err, INFERD_EINVAL,
                                    "entry %s: %s is not allowed in a package (only regular "
                                    "files and folders)",
                                    shown, file_kind(type));
        exec = (mode & S_IXUSR) != 0;
    }
    if (dir && zs.size > 0)
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: a folder entry that holds data",
                                shown);
    if (zs.size > PKG_MAX_TOTAL - *total)
        return inferd_error_set(err, INFERD_ERANGE,
                                "entry %s: the package would hold more than 2 GiB uncompressed",
                                shown);
    *total += zs.size;
    if (!(e->name = strndup(raw, slash ? len - 1 : len)))
        return pkg_no_memory(err);
    e->index = i;
    e->dir = dir;
    e->exec = exec;
    e->size = zs.size;
    return INFERD_OK;
}

/* Checks the set of entries (sorted by name): no name twice, and no entry
 * under a name that another entry makes a file. */
static inferd_status check_entry_set(pkg_entry *entries, size_t n, inferd_error *err)
{
    char shown[100];
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(entries[i].name, entries[i + 1].name) == 0)
            return inferd_error_set(err, INFERD_EINVAL, "entry %s: appears twice in the package",
                                    pkg_show_name(entries[i].name, shown, sizeof shown));
    char prefix[PKG_MAX_PATH + 1]; /* names passed path_problem: never longer */
    for (size_t i = 0; i < n; i++) {
        const char *name = entries[i].name;
        for (const char *p = strchr(name, '/'); p; p = strchr(p + 1, '/')) {
            memcpy(prefix, name, (size_t)(p - name));
            prefix[p - name] = '\0';
            pkg_entry key = {.name = prefix};
            const pkg_entry *parent = bsearch(&key, entries, n, sizeof *entries, entry_cmp);
            if (parent && !parent->dir)
                return inferd_error_set(err, INFERD_EINVAL,
                                        "entry %s: lies under %s, which is a file in the package",
                                        pkg_show_name(name, shown, sizeof shown), parent->name);
        }
    }
    return INFERD_OK;
}

/* mkdir -p of dest/rel's folders (rel's last segment excluded unless
 * whole). Every folder made is 0755 whatever the umask. */
static inferd_status make_folders(const char *dest, const char *rel, bool whole,
                                  inferd_error *err)
{
    char path[PATH_MAX];
    int base = snprintf(path, sizeof path, "%s/", dest);
    if (base < 0 || (size_t)base + strlen(rel) >= sizeof path)
        return inferd_error_set(err, INFERD_ERANGE, "entry %s: the path is too long", rel);
    strcpy(path + base, rel);
    for (char *p = path + base;; p++) {
        bool end = *p == '\0';
        if (*p != '/' && !(end && whole)) {
            if (end)
                break;
            continue;
        }
        *p = '\0';
        if (mkdir(path, 0755) == 0) {
            chmod(path, 0755);
        } else {
            int e = errno;
            struct stat sb;
            if (e != EEXIST || lstat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
                return inferd_error_set(err, INFERD_EIO, "entry %s: making folder %s: %s", rel,
                                        path + base, strerror(e == EEXIST ? ENOTDIR : e));
        }
        if (end)
            break;
        *p = '/';
    }
    return INFERD_OK;
}

static inferd_status write_all(int fd, const char *data, size_t len, const char *shown,
                               inferd_error *err)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return inferd_error_set(err, INFERD_EIO, "entry %s: writing: %s", shown,
                                    strerror(errno));
        data += w;
        len -= (size_t)w;
    }
    return INFERD_OK;
}

/* Writes one regular file entry; never writes more than it declared. */
static inferd_status extract_file(zip_t *za, const pkg_entry *e, const char *dest, char *buf,
                                  size_t buf_size, inferd_error *err)
{
    char shown[100];
    pkg_show_name(e->name, shown, sizeof shown);
    inferd_status st = make_folders(dest, e->name, false, err);
    if (st != INFERD_OK)
        return st;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dest, e->name); /* length checked by make_folders */
    /* O_EXCL | O_NOFOLLOW: never write through anything already there. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return inferd_error_set(err, INFERD_EIO, "entry %s: creating: %s", shown,
                                strerror(errno));
    zip_file_t *zf = zip_fopen_index(za, e->index, 0);
    if (!zf) {
        close(fd);
        return inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown, zip_strerror(za));
    }
    zip_uint64_t got = 0;
    for (;;) {
        zip_int64_t n = zip_fread(zf, buf, buf_size);
        if (n < 0) {
            st = inferd_error_set(err, INFERD_EINVAL, "entry %s: %s", shown,
                                  zip_file_strerror(zf));
            break;
        }
        if (n == 0)
            break;
        got += (zip_uint64_t)n;
        if (got > e->size) {
            st = inferd_error_set(err, INFERD_EINVAL,
                                  "entry %s: holds more data than the %llu bytes it declares",
                                  shown, (unsigned long long)e->size);
            break;
        }
        if ((st = write_all(fd, buf, (size_t)n, shown, err)) != INFERD_OK)
            break;
    }
    zip_fclose(zf);
    if (st == INFERD_OK && got != e->size)
        st = inferd_error_set(err, INFERD_EINVAL, "entry %s: holds %llu bytes, not the %llu it "
                              "declares", shown, (unsigned long long)got,
                              (unsigned long long)e->size);
    if (st == INFERD_OK && fchmod(fd, e->exec ? 0755 : 0644) != 0)
        st = inferd_error_set(err, INFERD_EIO, "entry %s: chmod: %s", shown, strerror(errno));
    if (close(fd) != 0 && st == INFERD_OK)
        st = inferd_error_set(err, INFERD_EIO, "entry %s: writing: %s", shown, strerror(errno));
    return st;
}

static inferd_status extract_checked(const char *zip_path, const char *dest, inferd_error *err)
{
    struct stat sb;
    if (lstat(dest, &sb) == 0)
        return inferd_error_set(err, INFERD_EEXIST, "destination %s exists already", dest);
    if (stat(zip_path, &sb) != 0)
        return inferd_error_set(err, errno == ENOENT ? INFERD_ENOTFOUND : INFERD_EIO, "%s: %s",
                                zip_path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return inferd_error_set(err, INFERD_EINVAL, "%s is not a regular file", zip_path);

    int zerr = 0;
    zip_t *za = zip_open(zip_path, ZIP_RDONLY, &zerr);
    if (!za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        inferd_status st = inferd_error_set(err, zerr == ZIP_ER_NOZIP ? INFERD_EINVAL : INFERD_EIO,
                                            "not a readable zip file: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }
    inferd_status st = INFERD_OK;
    pkg_entry *entries = NULL;
    size_t n = 0;
    char *buf = NULL;
    zip_int64_t count = zip_get_num_entries(za, 0);
    if (count < 0 || count > PKG_MAX_ENTRIES) {
        st = inferd_error_set(err, INFERD_ERANGE, "%lld entries, more than the %d allowed",
                              (long long)count, PKG_MAX_ENTRIES);
        goto done;
    }
    if (count > 0 && !(entries = calloc((size_t)count, sizeof *entries))) {
        st = pkg_no_memory(err);
        goto done;
    }
    uint64_t total = 0;
    for (; n < (size_t)count; n++)
        if ((st = check_entry(za, n, &entries[n], &total, err)) != INFERD_OK)
            goto done;
    qsort(entries, n, sizeof *entries, entry_cmp);
    if ((st = check_entry_set(entries, n, err)) != INFERD_OK)
        goto done;

    /* Everything checked: now write. The parent must exist (no mkdir -p of
     * a destination someone mistyped). */
    if (mkdir(dest, 0755) != 0) {
        int e = errno;
        st = inferd_error_set(err,
                              e == EEXIST   ? INFERD_EEXIST
                              : e == ENOENT ? INFERD_ENOTFOUND
                                            : INFERD_EIO,
                              "creating %s: %s", dest, strerror(e));
        goto done;
    }
    chmod(dest, 0755);
    size_t buf_size = 64 << 10;
    if (!(buf = malloc(buf_size))) {
        st = pkg_no_memory(err);
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        st = entries[i].dir ? make_folders(dest, entries[i].name, true, err)
                            : extract_file(za, &entries[i], dest, buf, buf_size, err);
        if (st != INFERD_OK)
            goto cleanup;
    }
    goto done;
cleanup:
    if (portable_remove_tree(dest) != 0)
        inferd_log_error(LOG_COMPONENT, "removing %s after a failed extraction: %s", dest,
                         strerror(errno));
done:
    for (size_t i = 0; i < n && entries; i++)
        free(entries[i].name);
    /* check_entry may have set a name before failing on entry n. */
    if (entries && n < (size_t)count)
        free(entries[n].name);
    free(entries);
    free(buf);
    zip_discard(za);
    return st;
}

inferd_status portable_package_extract(const char *zip_path, const char *dest, inferd_error *err)
{
    if (!zip_path || !dest || !dest[0])
        return inferd_error_set(err, INFERD_EINVAL, "package: NULL argument");
    inferd_status st = extract_checked(zip_path, dest, err);
    if (st != INFERD_OK)
        inferd_error_prefix(err, "package %s", pkg_base_name(zip_path));
    return st;
}
