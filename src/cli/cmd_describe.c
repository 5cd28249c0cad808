/* cli/cmd_describe.c: `inferd describe SURFACE`: the declarations of what a
 * user writes (a rule, an action of each kind, a stream's WITH options, a
 * package manifest, the configuration), printed from the same specs the one
 * validator checks documents against. */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inferd/props.h"
#include "inferd/registry.h"
#include "portable/package.h"
#include "rules/rules.h"

void cli_print_specs(const inferd_prop_spec *specs, int indent)
{
    int width = 0; /* one column for a list's names, however long the longest */
    for (size_t i = 0; specs && specs[i].name; i++)
        if ((int)strlen(specs[i].name) > width)
            width = (int)strlen(specs[i].name);
    for (size_t i = 0; specs && specs[i].name; i++) {
        const inferd_prop_spec *s = &specs[i];
        char allowed[256];
        const char *need = s->default_value                  ? "default"
                           : s->flags & INFERD_PROP_OPTIONAL ? "optional"
                           : s->fields                        ? "optional"
                                                              : "required";
        printf("%*s%-*s  %s; %s%s%s\n", indent, "", width, s->name,
               inferd_prop_spec_allowed(s, allowed, sizeof allowed), need,
               s->default_value ? " " : "", s->default_value ? s->default_value : "");
        if (s->description && *s->description)
            printf("%*s%-*s  %s\n", indent, "", width, "", s->description);
        if (s->fields) {
            printf("%*s%-*s  %s:\n", indent, "", width, "",
                   s->type == INFERD_PROP_TYPE_MAP     ? "each entry"
                   : s->type == INFERD_PROP_TYPE_ARRAY ? "each item"
                                                       : "its keys");
            cli_print_specs(s->fields, indent + 4);
        }
    }
}

static const char *const surfaces =
    "rule, stream, mqtt, http (rest), log, file, sink (the settings every sink has), "
    "manifest, config";

int cmd_describe(int argc, char **argv)
{
    bool json = false;
    const char *what = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: inferd describe SURFACE [--json]\n\n"
                   "The declaration of what you write for SURFACE: every key, its type and\n"
                   "range or values, its default or whether it is required, nested keys\n"
                   "below their parent. SURFACE is one of %s.\n",
                   surfaces);
            return 0;
        } else if (!what)
            what = argv[i];
        else
            return cli_usage_error("unexpected argument '%s'", argv[i]);
    }
    if (!what)
        return cli_usage_error("%s", "describe needs a SURFACE (inferd describe --help)");
    const inferd_prop_spec *specs = strcmp(what, "manifest") == 0 ? portable_manifest_specs()
                                    : strcmp(what, "config") == 0 ? inferd_config_keys()
                                                                  : rules_declaration(what);
    if (!specs) {
        fprintf(stderr, "inferd: no surface '%s' (there are: %s)\n", what, surfaces);
        return EXIT_USAGE;
    }
    if (json) {
        inferd_value *v = inferd_describe_props(specs);
        char *text = NULL;
        inferd_value_to_json(v, INFERD_JSON_PRETTY, &text, NULL, NULL);
        puts(text ? text : "[]");
        free(text);
        inferd_value_free(v);
        return 0;
    }
    printf("%s:\n", what);
    cli_print_specs(specs, 2);
    return 0;
}
