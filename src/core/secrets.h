/* core/secrets.h: what is never printed or returned (internal,
 * header-only). A definition or a configuration may hold passwords and
 * tokens (an MQTT profile's password, an HTTP action's Authorization
 * header, http.token); what shows them to a person or a client shows
 * "***" in their place. */
#ifndef INFERD_CORE_SECRETS_H
#define INFERD_CORE_SECRETS_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "inferd/value.h"

/* Whether a key names a secret: password, token, authorization, or a key
 * that ends with one of them (clientPassword, http.token), any case. */
static inline bool inferd__secret_key(const char *key)
{
    static const char *const names[] = {"password", "token", "authorization", NULL};
    size_t len = strlen(key);
    for (size_t i = 0; names[i]; i++) {
        size_t n = strlen(names[i]);
        if (len >= n && strcasecmp(key + len - n, names[i]) == 0)
            return true;
    }
    return false;
}

/* Replaces, in place, every non-empty string under a secret key (at any
 * depth of objects and arrays) with "***". */
static inline void inferd__mask_secrets(inferd_value *v)
{
    const char *key;
    inferd_value *child;
    if (inferd_value_is(v, INFERD_VALUE_ARRAY)) {
        for (size_t i = 0; (child = inferd_value_array_get(v, i)); i++)
            inferd__mask_secrets(child);
        return;
    }
    for (size_t i = 0; inferd_value_object_entry(v, i, &key, &child); i++) {
        const char *text = NULL;
        size_t len = 0;
        if (inferd__secret_key(key) &&
            inferd_value_get_string(child, &text, &len, NULL) == INFERD_OK && len > 0) {
            char *k = strdup(key); /* key belongs to the entry being replaced */
            if (k)
                inferd_value_object_set(v, k, inferd_value_string("***"), NULL);
            free(k);
        } else {
            inferd__mask_secrets(child);
        }
    }
}

#endif
