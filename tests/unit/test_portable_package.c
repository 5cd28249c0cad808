/* Unit tests: portable plugin packages (src/portable/manifest.c, extract.c, install.c): the
 * manifest, safe zip extraction, install.sh, and removing a tree. The test
 * zips are built here with libzip, bad ones included (a duplicate name, a
 * lying size are made by patching a written zip's bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zip.h>

#include "inferd/log.h"
#include "portable/package.h"
#include "support.h"

static char dir[64]; /* a fresh folder per test */

static int make_dir(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/inferd-pkg-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int remove_dir(void **state)
{
    assert_int_equal(portable_remove_tree(dir), 0);
    return 0;
}

/* dir/rel (a static buffer per call slot: two at a time). */
static const char *at(const char *rel)
{
    static char bufs[2][PATH_MAX];
    static int slot;
    slot ^= 1;
    snprintf(bufs[slot], sizeof bufs[slot], "%s/%s", dir, rel);
    return bufs[slot];
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

/* --- building zips ---------------------------------------------------------------- */

typedef struct zentry {
    const char *name;
    const char *data; /* NULL: no data (a folder, or an empty file) */
    uint32_t mode;    /* st_mode recorded with opsys UNIX; 0: libzip's default */
} zentry;

static void write_zip(const char *path, const zentry *entries, size_t n)
{
    int zerr = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    assert_non_null(za);
    for (size_t i = 0; i < n; i++) {
        const char *data = entries[i].data ? entries[i].data : "";
        zip_source_t *src = zip_source_buffer(za, data, strlen(data), 0);
        assert_non_null(src);
        zip_int64_t idx = zip_file_add(za, entries[i].name, src, ZIP_FL_ENC_UTF_8);
        if (idx < 0)
            fail_msg("zip_file_add %s: %s", entries[i].name, zip_strerror(za));
        if (entries[i].mode)
            assert_int_equal(zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0,
                                                              ZIP_OPSYS_UNIX,
                                                              (zip_uint32_t)entries[i].mode << 16),
                             0);
    }
    if (zip_close(za) != 0)
        fail_msg("zip_close: %s", zip_strerror(za));
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(*len);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void spit(const char *path, const unsigned char *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Replaces every occurrence of from by to (same length) in the file. */
static void patch_bytes(const char *path, const char *from, const char *to)
{
    size_t len, n = strlen(from), count = 0;
    assert_int_equal(strlen(to), n);
    unsigned char *buf = slurp(path, &len);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(buf + i, from, n) == 0) {
            memcpy(buf + i, to, n);
            count++;
        }
    assert_true(count >= 2); /* the local header and the central directory */
    spit(path, buf, len);
    free(buf);
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Sets the declared uncompressed size of every entry (the zip must hold
 * one entry) in both its local header and the central directory. */
static void patch_declared_size(const char *path, uint32_t size)
{
    size_t len;
    unsigned char *buf = slurp(path, &len);
    int patched = 0;
    for (size_t i = 0; i + 46 <= len; i++) {
        if (memcmp(buf + i, "PK\x03\x04", 4) == 0 && i == 0) {
            put_le32(buf + i + 22, size);
            patched++;
        } else if (memcmp(buf + i, "PK\x01\x02", 4) == 0) {
            put_le32(buf + i + 24, size);
            patched++;
        }
    }
    assert_int_equal(patched, 2);
    spit(path, buf, len);
    free(buf);
}

/* Whether the folder holds nothing but the named file. */
static bool only_file_left(const char *folder, const char *name)
{
    DIR *d = opendir(folder);
    assert_non_null(d);
    bool only = true;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, name))
            only = false;
    closedir(d);
    return only;
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    assert_int_equal(lstat(path, &sb), 0);
    return sb.st_mode;
}

/* --- extraction ---------------------------------------------------------------------- */

static void good_package_extracts_with_modes(void **state)
{
    const zentry entries[] = {
        {"pyai.json", "{\"version\":\"v1\",\"language\":\"python\",\"executable\":\"main.py\","
                      "\"functions\":[\"labelImage\"]}", 0100644},
        {"main.py", "print('hi')\n", 0100644},
        {"bin/tool", "#!/bin/sh\necho tool\n", 0100755},
        {"models/", NULL, 040755},
        {"models/sub/m.onnx", "not really a model", 0100600},
        {"noattr.txt", "default attributes", 0},
    };
    write_zip(at("pyai.zip"), entries, sizeof entries / sizeof entries[0]);
    umask(077); /* the modes must not depend on the umask */
    inferd_error err = {0};
    inferd_status st = portable_package_extract(at("pyai.zip"), at("pkg"), &err);
    umask(022);
    if (st != INFERD_OK)
        fail_msg("extract: %s", err.message);

    assert_string_equal(read_text(at("pkg/main.py")), "print('hi')\n");
    assert_string_equal(read_text(at("pkg/bin/tool")), "#!/bin/sh\necho tool\n");
    assert_string_equal(read_text(at("pkg/models/sub/m.onnx")), "not really a model");
    assert_string_equal(read_text(at("pkg/noattr.txt")), "default attributes");
    assert_int_equal(mode_of(at("pkg/main.py")), S_IFREG | 0644);
    assert_int_equal(mode_of(at("pkg/bin/tool")), S_IFREG | 0755);
    assert_int_equal(mode_of(at("pkg/models/sub/m.onnx")), S_IFREG | 0644);
    assert_int_equal(mode_of(at("pkg/noattr.txt")), S_IFREG | 0644);
    assert_int_equal(mode_of(at("pkg")), S_IFDIR | 0755);
    assert_int_equal(mode_of(at("pkg/models")), S_IFDIR | 0755);
    assert_int_equal(mode_of(at("pkg/models/sub")), S_IFDIR | 0755);
    assert_int_equal(mode_of(at("pkg/bin")), S_IFDIR | 0755);

    /* And what came out loads as a package. */
    portable_manifest *m = NULL;
    assert_int_equal(portable_manifest_load(at("pkg"), "pyai", &m, &err), INFERD_OK);
    assert_string_equal(m->executable, "main.py");
    assert_int_equal(m->n_decls, 1);
    portable_manifest_free(m);
}

typedef struct bad_entry {
    zentry entry;
    const char *shown;   /* how the message names the entry */
    const char *problem; /* a substring of the message */
} bad_entry;

static void bad_entries_are_refused(void **state)
{
    static char long_name[1100];
    memset(long_name, 'a', 1025);
    long_name[1025] = '\0';
    const bad_entry cases[] = {
        {{"../x", "escape", 0100644}, "entry ../x:", "may not leave the package folder"},
        {{"/abs", "absolute", 0100644}, "entry /abs:", "must be relative"},
        {{"a/../../b", "escape", 0100644}, "entry a/../../b:", "may not leave the package folder"},
        {{"a\\b", "backslash", 0100644}, "entry a\\b:", "backslash"},
        {{"a//b", "empty", 0100644}, "entry a//b:", "empty segment"},
        {{"./a", "dot", 0100644}, "entry ./a:", ". segment"},
        {{"link", "/etc/passwd", 0120777}, "entry link:", "a symbolic link is not allowed"},
        {{"fifo", NULL, 0010644}, "entry fifo:", "a named pipe is not allowed"},
        {{"ok.txt/inner", "under a file", 0100644}, "entry ok.txt/inner:", "which is a file"},
        {{long_name, "long", 0100644}, "entry aaaaaaaaaa", "more than the 1024 allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* A good entry first, so a bad one later is not the only thing. */
        const zentry entries[] = {{"ok.txt", "fine", 0100644}, cases[i].entry};
        write_zip(at("bad.zip"), entries, 2);
        inferd_error err = {0};
        inferd_status st = portable_package_extract(at("bad.zip"), at("dest"), &err);
        if (st == INFERD_OK)
            fail_msg("case %zu (%s): extracted", i, cases[i].shown);
        assert_contains(err.message, "package bad.zip: ");
        assert_contains(err.message, cases[i].shown);
        assert_contains(err.message, cases[i].problem);
        assert_false(exists(at("dest")));
        assert_true(only_file_left(dir, "bad.zip"));
    }
}

static void duplicate_names_are_refused(void **state)
{
    const zentry entries[] = {{"dup_a.txt", "first", 0100644}, {"dup_b.txt", "second", 0100644}};
    write_zip(at("dup.zip"), entries, 2);
    patch_bytes(at("dup.zip"), "dup_b.txt", "dup_a.txt");
    inferd_error err = {0};
    assert_int_equal(portable_package_extract(at("dup.zip"), at("dest"), &err), INFERD_EINVAL);
    assert_contains(err.message, "package dup.zip: entry dup_a.txt: appears twice");
    assert_false(exists(at("dest")));

    /* A folder and a file of the same name are the same path too. */
    const zentry clash[] = {{"same/", NULL, 040755}, {"same", "file", 0100644}};
    write_zip(at("dup.zip"), clash, 2);
    assert_int_equal(portable_package_extract(at("dup.zip"), at("dest"), &err), INFERD_EINVAL);
    assert_contains(err.message, "entry same: appears twice");
    assert_false(exists(at("dest")));
}

static void sizes_are_guarded(void **state)
{
    /* An entry that decompresses to more than it declares: the write stops
     * there, and what was written before (a.txt) goes too. */
    size_t big = 1 << 20;
    char *zeros = calloc(1, big + 1);
    assert_non_null(zeros);
    memset(zeros, '0', big);
    const zentry bomb[] = {{"big.bin", zeros, 0100644}};
    write_zip(at("bomb.zip"), bomb, 1);
    patch_declared_size(at("bomb.zip"), 1000);
    inferd_error err = {0};
    assert_int_not_equal(portable_package_extract(at("bomb.zip"), at("dest"), &err), INFERD_OK);
    assert_contains(err.message, "package bomb.zip: entry big.bin: holds more data than the 1000 "
                                 "bytes it declares");
    assert_false(exists(at("dest")));

    /* A declared total over 2 GiB is refused before anything is written. */
    write_zip(at("huge.zip"), bomb, 1);
    patch_declared_size(at("huge.zip"), 3u << 30);
    assert_int_equal(portable_package_extract(at("huge.zip"), at("dest"), &err), INFERD_ERANGE);
    assert_contains(err.message, "entry big.bin: the package would hold more than 2 GiB");
    assert_false(exists(at("dest")));
    free(zeros);

    /* 10001 entries are too many. */
    int zerr = 0;
    zip_t *za = zip_open(at("many.zip"), ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    assert_non_null(za);
    for (int i = 0; i < 10001; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%05d", i);
        zip_source_t *src = zip_source_buffer(za, "", 0, 0);
        assert_true(zip_file_add(za, name, src, 0) >= 0);
    }
    assert_int_equal(zip_close(za), 0);
    assert_int_equal(portable_package_extract(at("many.zip"), at("dest"), &err), INFERD_ERANGE);
    assert_contains(err.message, "10001 entries, more than the 10000 allowed");
    assert_false(exists(at("dest")));
}

static void bad_archives_and_destinations(void **state)
{
    inferd_error err = {0};
    write_text(at("text.zip"), "this is not a zip file\n", 0644);
    assert_int_equal(portable_package_extract(at("text.zip"), at("dest"), &err), INFERD_EINVAL);
    assert_contains(err.message, "package text.zip: not a readable zip file");
    assert_false(exists(at("dest")));

    assert_int_equal(portable_package_extract(at("missing.zip"), at("dest"), &err),
                     INFERD_ENOTFOUND);
    assert_contains(err.message, "package missing.zip: ");
    assert_contains(err.message, "No such file");
    assert_false(exists(at("dest")));

    const zentry entries[] = {{"ok.txt", "fine", 0100644}};
    write_zip(at("ok.zip"), entries, 1);
    /* An existing destination is refused and left alone. */
    assert_int_equal(mkdir(at("dest"), 0700), 0);
    write_text(at("dest/keep"), "mine", 0644);
    assert_int_equal(portable_package_extract(at("ok.zip"), at("dest"), &err), INFERD_EEXIST);
    assert_contains(err.message, "exists already");
    assert_string_equal(read_text(at("dest/keep")), "mine");
    assert_false(exists(at("dest/ok.txt")));

    /* A missing parent is not made. */
    assert_int_equal(portable_package_extract(at("ok.zip"), at("nope/dest"), &err),
                     INFERD_ENOTFOUND);
    assert_false(exists(at("nope")));
}

/* --- manifests ----------------------------------------------------------------------- */

static const char *full_manifest =
    "{\"version\": \"v1.0.0\", \"language\": \"python\", \"executable\": \"src/main.py\","
    " \"description\": \"all kinds\", \"x-build\": {\"any\": 1},"
    " \"functions\": [\"labelImage\", {\"name\": \"f2\", \"description\": \"two\", \"minArgs\": 1,"
    "   \"maxArgs\": 2, \"aggregate\": true}],"
    " \"sources\": [\"src1\", {\"name\": \"src2\", \"description\": \"d\"}],"
    " \"sinks\": [\"sink1\"],"
    " \"events\": [{\"name\": \"monitor\", \"event\": \"monitoring_event\"}],"
    " \"backgrounds\": [{\"name\": \"teapot\", \"routes\": [{\"method\": \"GET\", \"path\": "
    "   \"/teapot\"}, {\"method\": \"*\", \"path\": \"/teapot/any\"}], \"description\": \"tea\"}],"
    " \"estimators\": [{\"name\": \"numpyPeopleCount\", \"broker\": \"peopleCountEstimator\"}]}";

static void full_manifest_parses(void **state)
{
    portable_manifest *m = NULL;
    inferd_error err = {0};
    assert_int_equal(portable_manifest_parse("pyai", full_manifest, strlen(full_manifest), &m, &err),
                     INFERD_OK);
    assert_string_equal(m->name, "pyai");
    assert_string_equal(m->version, "v1.0.0");
    assert_string_equal(m->language, "python");
    assert_string_equal(m->executable, "src/main.py");
    assert_string_equal(m->description, "all kinds");
    assert_int_equal(m->n_decls, 8);

    const portable_decl *d = m->decls;
    assert_int_equal(d[0].kind, INFERD_KIND_FUNCTION);
    assert_string_equal(d[0].name, "labelImage");
    assert_string_equal(d[0].description, "");
    assert_int_equal(d[0].min_args, 0);
    assert_int_equal(d[0].max_args, -1);
    assert_false(d[0].aggregate);
    assert_string_equal(d[1].name, "f2");
    assert_string_equal(d[1].description, "two");
    assert_int_equal(d[1].min_args, 1);
    assert_int_equal(d[1].max_args, 2);
    assert_true(d[1].aggregate);
    assert_int_equal(d[2].kind, INFERD_KIND_SOURCE);
    assert_string_equal(d[3].name, "src2");
    assert_string_equal(d[3].description, "d");
    assert_int_equal(d[4].kind, INFERD_KIND_SINK);
    assert_int_equal(d[5].kind, INFERD_KIND_EVENT);
    assert_string_equal(d[5].event, "monitoring_event");
    assert_int_equal(d[6].kind, INFERD_KIND_BACKGROUND);
    assert_int_equal(d[6].n_routes, 2);
    assert_string_equal(d[6].routes[0].method, "GET");
    assert_string_equal(d[6].routes[0].path, "/teapot");
    assert_string_equal(d[6].routes[1].method, "*");
    assert_string_equal(d[7].kind == INFERD_KIND_ESTIMATOR ? d[7].broker : "?",
                        "peopleCountEstimator");

    /* describe: every component in full form, under its array. */
    inferd_value *v = portable_manifest_describe(m);
    assert_non_null(v);
    char *json = NULL;
    assert_int_equal(inferd_value_to_json(v, INFERD_JSON_COMPACT, &json, NULL, &err), INFERD_OK);
    assert_contains(json, "\"name\":\"pyai\"");
    assert_contains(json, "\"functions\":[{\"name\":\"labelImage\",\"description\":\"\","
                          "\"minArgs\":0,\"maxArgs\":-1,\"aggregate\":false}");
    assert_contains(json, "\"sinks\":[{\"name\":\"sink1\",\"description\":\"\"}]");
    assert_contains(json, "\"events\":[{\"name\":\"monitor\",\"description\":\"\","
                          "\"event\":\"monitoring_event\"}]");
    assert_contains(json, "\"routes\":[{\"method\":\"GET\",\"path\":\"/teapot\"},"
                          "{\"method\":\"*\",\"path\":\"/teapot/any\"}]");
    assert_contains(json, "\"broker\":\"peopleCountEstimator\"");
    free(json);
    inferd_value_free(v);
    portable_manifest_free(m);
}

typedef struct bad_manifest {
    const char *text;
    const char *expect;
} bad_manifest;

#define HEAD "\"version\": \"v1\", \"language\": \"python\", \"executable\": \"main.py\""

static void bad_manifests_are_refused(void **state)
{
    const bad_manifest cases[] = {
        {"{", "manifest pyai.json: invalid JSON at line"},
        {"[1]", "manifest pyai.json: the manifest must be a JSON object, not array"},
        {"{\"language\": \"python\", \"executable\": \"m.py\", \"functions\": [\"f\"]}",
         "manifest pyai.json: missing required property 'version'"},
        {"{\"version\": 1, \"language\": \"python\", \"executable\": \"m.py\", \"functions\": "
         "[\"f\"]}",
         "manifest pyai.json: property 'version': wrong type (got 1"},
        {"{\"version\": \"\", \"language\": \"python\", \"executable\": \"m.py\", \"functions\": "
         "[\"f\"]}",
         "version may not be empty"},
        {"{\"version\": \"v1\", \"language\": \"perl\", \"executable\": \"m.py\", \"functions\": "
         "[\"f\"]}",
         "manifest pyai.json: property 'language': unknown value (got \"perl\"; allowed: one of python, native)"},
        {"{\"version\": \"v1\", \"language\": \"python\", \"executable\": \"../x\", \"functions\": "
         "[\"f\"]}",
         "manifest pyai.json: executable '../x': a path may not leave the package folder"},
        {"{\"version\": \"v1\", \"language\": \"python\", \"executable\": \"/bin/sh\", "
         "\"functions\": [\"f\"]}",
         "executable '/bin/sh': a path must be relative"},
        {"{" HEAD ", \"function\": [\"f\"]}", "manifest pyai.json: unknown property 'function' (did you mean 'functions'?"},
        {"{" HEAD ", \"functions\": [\"ok\", {\"name\": \"bad name\"}]}",
         "manifest pyai.json: functions[1]: name 'bad name' must be 1-64 characters"},
        {"{" HEAD ", \"functions\": [\"1st\"]}", "functions[0]: name '1st' must be"},
        {"{" HEAD ", \"functions\": [\"f\"], \"sinks\": [\"f\"]}",
         "sinks[0]: name 'f' is declared twice in the package (also as a function)"},
        {"{" HEAD ", \"events\": [{\"name\": \"monitor\"}]}", "missing required property 'events[0].event'"},
        {"{" HEAD ", \"events\": [\"monitor\"]}", "property 'events[0]': not a JSON object (got \"monitor\""},
        {"{" HEAD ", \"backgrounds\": [{\"name\": \"b\", \"routes\": [{\"method\": \"GET\", "
         "\"path\": \"teapot\"}]}]}",
         "backgrounds[0]: routes[0]: path 'teapot' must start with /"},
        {"{" HEAD ", \"backgrounds\": [{\"name\": \"b\", \"routes\": [{\"method\": \"GET\", "
         "\"path\": \"/a b\"}]}]}",
         "routes[0]: path '/a b' must start with / and hold no spaces"},
        {"{" HEAD ", \"backgrounds\": [{\"name\": \"b\", \"routes\": [{\"method\": \"FETCH\", "
         "\"path\": \"/a\"}]}]}",
         "property 'backgrounds[0].routes[0].method': unknown value (got \"FETCH\"; allowed: one of GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS, *)"},
        {"{" HEAD ", \"functions\": [{\"name\": \"f\", \"minArgs\": 2, \"maxArgs\": 1}]}",
         "functions[0]: maxArgs (1) must be -1 (any number) or >= minArgs (2)"},
        {"{" HEAD ", \"functions\": [{\"name\": \"f\", \"minArgs\": \"two\"}]}",
         "property 'functions[0].minArgs': not an integer (got \"two\""},
        {"{" HEAD ", \"functions\": [{\"name\": \"f\", \"minargs\": 2}]}",
         "unknown property 'functions[0].minargs' (did you mean 'minArgs'?"},
        {"{" HEAD ", \"functions\": {\"name\": \"f\"}}", "property 'functions': not a JSON array"},
        {"{" HEAD ", \"estimators\": [{\"name\": \"e\"}]}", "missing required property 'estimators[0].broker'"},
        /* every fault of the declaration at once */
        {"{" HEAD ", \"functions\": [{\"name\": \"f\", \"minargs\": 2}], \"events\": "
         "[{\"name\": \"e\"}]}",
         "(did you mean 'minArgs'? known: name, description, props, minArgs, maxArgs, "
         "aggregate); missing required property 'events[0].event'"},
        {"{" HEAD "}", "manifest pyai.json: the package declares no component"},
        {"{" HEAD ", \"functions\": []}", "the package declares no component"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        portable_manifest *m = (portable_manifest *)1;
        inferd_error err = {0};
        inferd_status st =
            portable_manifest_parse("pyai", cases[i].text, strlen(cases[i].text), &m, &err);
        if (st == INFERD_OK)
            fail_msg("case %zu parsed: %s", i, cases[i].text);
        assert_null(m);
        if (!strstr(err.message, cases[i].expect))
            fail_msg("case %zu: '%s' does not contain '%s'", i, err.message, cases[i].expect);
    }

    /* The plugin name itself. */
    portable_manifest *m = NULL;
    inferd_error err = {0};
    assert_int_equal(portable_manifest_parse("../evil", full_manifest, strlen(full_manifest), &m,
                                             &err),
                     INFERD_EINVAL);
    assert_contains(err.message, "plugin name '../evil' is not valid");
    assert_true(portable_name_valid("pyai"));
    assert_true(portable_name_valid("9lives_x-1"));
    assert_false(portable_name_valid("-x"));
    assert_false(portable_name_valid(""));
    assert_false(portable_name_valid("a.b"));
    char longest[66];
    memset(longest, 'a', 65);
    longest[65] = '\0';
    assert_false(portable_name_valid(longest));
    longest[64] = '\0';
    assert_true(portable_name_valid(longest));
}

static void manifest_load_checks_the_executable(void **state)
{
    inferd_error err = {0};
    portable_manifest *m = NULL;
    write_text(at("pyai.json"),
               "{\"version\": \"v1\", \"language\": \"python\", \"executable\": \"main.py\", "
               "\"functions\": [\"f\"]}",
               0644);
    assert_int_equal(portable_manifest_load(dir, "pyai", &m, &err), INFERD_ENOTFOUND);
    assert_contains(err.message, "manifest pyai.json: executable main.py: main.py: not found");
    assert_null(m);

    assert_int_equal(symlink("/bin/sh", at("main.py")), 0);
    assert_int_equal(portable_manifest_load(dir, "pyai", &m, &err), INFERD_EINVAL);
    assert_contains(err.message, "executable main.py: main.py is a symbolic link");

    /* A link on the way counts too: sub -> / makes sub/bin/sh a system file. */
    write_text(at("pyai.json"),
               "{\"version\": \"v1\", \"language\": \"native\", \"executable\": \"sub/bin/sh\", "
               "\"functions\": [\"f\"]}",
               0644);
    assert_int_equal(symlink("/", at("sub")), 0);
    assert_int_equal(portable_manifest_load(dir, "pyai", &m, &err), INFERD_EINVAL);
    assert_contains(err.message, "executable sub/bin/sh: sub is a symbolic link");

    /* native needs the x bit; python does not. */
    write_text(at("pyai.json"),
               "{\"version\": \"v1\", \"language\": \"native\", \"executable\": \"tool\", "
               "\"functions\": [\"f\"]}",
               0644);
    write_text(at("tool"), "#!/bin/sh\n", 0644);
    assert_int_equal(portable_manifest_load(dir, "pyai", &m, &err), INFERD_EINVAL);
    assert_contains(err.message, "executable tool: not executable");
    assert_int_equal(chmod(at("tool"), 0755), 0);
    assert_int_equal(portable_manifest_load(dir, "pyai", &m, &err), INFERD_OK);
    assert_string_equal(m->language, "native");
    portable_manifest_free(m);

    /* No manifest at all. */
    assert_int_equal(portable_manifest_load(dir, "other", &m, &err), INFERD_ENOTFOUND);
    assert_contains(err.message, "manifest other.json: not found");
}

/* --- install.sh --------------------------------------------------------------------- */

typedef struct capture {
    pthread_mutex_t lock;
    char text[1 << 16];
    size_t len;
} capture;

static capture cap = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void capture_sink(void *ctx, inferd_log_level level, const char *line, size_t len)
{
    capture *c = ctx;
    pthread_mutex_lock(&c->lock);
    if (c->len + len < sizeof c->text) {
        memcpy(c->text + c->len, line, len);
        c->len += len;
        c->text[c->len] = '\0';
    }
    pthread_mutex_unlock(&c->lock);
}

static void start_capture(void)
{
    cap.len = 0;
    cap.text[0] = '\0';
    inferd_log_set_sink(capture_sink, &cap);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Whether a live (not zombie) process is in process group pgid. */
static bool group_alive(pid_t pgid)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    bool alive = false;
    for (struct dirent *e; (e = readdir(d)) && !alive;) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        char line[1024];
        size_t n = fread(line, 1, sizeof line - 1, f);
        fclose(f);
        line[n] = '\0';
        char *paren = strrchr(line, ')'); /* comm may hold spaces */
        char state;
        int ppid, pgrp;
        if (paren && sscanf(paren + 1, " %c %d %d", &state, &ppid, &pgrp) == 3)
            alive = pgrp == pgid && state != 'Z' && state != 'X';
    }
    closedir(d);
    return alive;
}

static void install_success_logs_its_output(void **state)
{
    write_text(at("install.sh"),
               "echo \"hello from $HOME\"\n"
               "echo \"path=$PATH lang=$LANG secret=${INFERD_TEST_SECRET:-unset}\"\n"
               "echo to-stderr >&2\n"
               "pwd > where\n"
               "read line && echo \"stdin gave: $line\" || echo stdin-empty\n",
               0644); /* no x bit needed: it runs as sh install.sh */
    setenv("INFERD_TEST_SECRET", "leaked", 1);
    start_capture();
    inferd_error err = {0};
    inferd_status st = portable_package_run_install(dir, "pyai", 10000, &err);
    inferd_log_set_sink(NULL, NULL);
    unsetenv("INFERD_TEST_SECRET");
    assert_int_equal(st, INFERD_OK);

    char expect[256];
    snprintf(expect, sizeof expect, "[portable] [install pyai] hello from %s\n", dir);
    assert_contains(cap.text, expect);
    assert_contains(cap.text,
                    "[install pyai] path=/usr/local/bin:/usr/bin:/bin lang=C.UTF-8 secret=unset\n");
    assert_contains(cap.text, "[install pyai] to-stderr\n");
    assert_contains(cap.text, "[install pyai] stdin-empty\n");
    snprintf(expect, sizeof expect, "%s\n", dir);
    assert_string_equal(read_text(at("where")), expect);
}

static void install_failure_names_status_and_output(void **state)
{
    write_text(at("install.sh"),
               "echo checking imports\n"
               "echo 'numpy is missing: install python3-numpy' >&2\n"
               "exit 3\n",
               0644);
    inferd_error err = {0};
    assert_int_equal(portable_package_run_install(dir, "pyai", 10000, &err), INFERD_EPLUGIN);
    assert_contains(err.message, "install pyai: install.sh exited with status 3");
    assert_contains(err.message, "checking imports | numpy is missing: install python3-numpy");

    /* Much output: the message keeps the end, which says what went wrong. */
    write_text(at("install.sh"),
               "i=0; while [ $i -lt 200 ]; do echo \"noise line $i\"; i=$((i+1)); done\n"
               "echo 'the real reason'\nexit 7\n",
               0644);
    assert_int_equal(portable_package_run_install(dir, "pyai", 10000, &err), INFERD_EPLUGIN);
    assert_contains(err.message, "exited with status 7");
    assert_contains(err.message, "noise line 199 | the real reason");
    assert_true(strlen(err.message) < INFERD_ERROR_MESSAGE_MAX);
    assert_true(strlen(err.message) > INFERD_ERROR_MESSAGE_MAX / 2);
}

static void install_timeout_kills_the_group(void **state)
{
    /* $$ is the shell's pid, which is its process group's id. A child in
     * the background holds the output pipe as well. */
    write_text(at("install.sh"),
               "echo $$ > pgid\necho starting\nsleep 30 &\nsleep 30\n", 0644);
    inferd_error err = {0};
    double t0 = now_s();
    assert_int_equal(portable_package_run_install(dir, "pyai", 500, &err), INFERD_ETIMEOUT);
    double took = now_s() - t0;
    assert_true(took >= 0.45);
    assert_true(took < 5.0);
    assert_contains(err.message, "install pyai: install.sh did not finish within 500 ms");
    assert_contains(err.message, "last output: starting");

    const char *text = read_text(at("pgid"));
    assert_non_null(text);
    pid_t pgid = (pid_t)atoi(text);
    assert_true(pgid > 1);
    /* The killed grandchildren are reaped by init: give it a moment. */
    for (int i = 0; i < 100 && group_alive(pgid); i++)
        usleep(20000);
    assert_false(group_alive(pgid));
}

static void install_leftovers_are_killed(void **state)
{
    /* A script that exits at once but leaves a child holding the output:
     * the install ends when the script does, not at the timeout. */
    write_text(at("install.sh"), "echo $$ > pgid\nsleep 30 &\necho done\n", 0644);
    inferd_error err = {0};
    double t0 = now_s();
    assert_int_equal(portable_package_run_install(dir, "pyai", 20000, &err), INFERD_OK);
    assert_true(now_s() - t0 < 5.0);
    pid_t pgid = (pid_t)atoi(read_text(at("pgid")));
    for (int i = 0; i < 100 && group_alive(pgid); i++)
        usleep(20000);
    assert_false(group_alive(pgid));
}

static void no_install_script_is_fine(void **state)
{
    inferd_error err = {0};
    assert_int_equal(portable_package_run_install(dir, "pyai", 1000, &err), INFERD_OK);
    assert_int_equal(portable_package_run_install(at("missing"), "pyai", 1000, &err),
                     INFERD_ENOTFOUND);
    assert_int_equal(mkdir(at("install.sh"), 0755), 0);
    assert_int_equal(portable_package_run_install(dir, "pyai", 1000, &err), INFERD_EINVAL);
    assert_contains(err.message, "install.sh is not a regular file");
}

/* --- remove_tree ---------------------------------------------------------------------- */

static void remove_tree_does_not_follow_links(void **state)
{
    assert_int_equal(mkdir(at("outside"), 0755), 0);
    write_text(at("outside/precious"), "keep me", 0644);
    assert_int_equal(mkdir(at("tree"), 0755), 0);
    assert_int_equal(mkdir(at("tree/a"), 0755), 0);
    assert_int_equal(mkdir(at("tree/a/b"), 0700), 0);
    write_text(at("tree/a/b/file"), "x", 0400);
    assert_int_equal(symlink(at("outside"), at("tree/a/dirlink")), 0);
    assert_int_equal(symlink(at("outside/precious"), at("tree/filelink")), 0);
    assert_int_equal(symlink("nowhere", at("tree/dangling")), 0);

    assert_int_equal(portable_remove_tree(at("tree")), 0);
    assert_false(exists(at("tree")));
    assert_string_equal(read_text(at("outside/precious")), "keep me");
    assert_int_equal(mode_of(at("outside")), S_IFDIR | 0755);

    /* A link given as the path itself is removed, not its target. */
    assert_int_equal(symlink(at("outside"), at("toplink")), 0);
    assert_int_equal(portable_remove_tree(at("toplink")), 0);
    assert_false(exists(at("toplink")));
    assert_string_equal(read_text(at("outside/precious")), "keep me");

    /* Nothing there: nothing to do. */
    assert_int_equal(portable_remove_tree(at("never")), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(good_package_extracts_with_modes, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(bad_entries_are_refused, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(duplicate_names_are_refused, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(sizes_are_guarded, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(bad_archives_and_destinations, make_dir, remove_dir),
        cmocka_unit_test(full_manifest_parses),
        cmocka_unit_test(bad_manifests_are_refused),
        cmocka_unit_test_setup_teardown(manifest_load_checks_the_executable, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(install_success_logs_its_output, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(install_failure_names_status_and_output, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(install_timeout_kills_the_group, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(install_leftovers_are_killed, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(no_install_script_is_fine, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(remove_tree_does_not_follow_links, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
