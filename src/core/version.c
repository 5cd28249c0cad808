/* version.c: the version of the library actually loaded. */
#include "inferd/version.h"

const char *inferd_version(void) { return INFERD_VERSION_STRING; }
