#ifndef DEPLOXA_CSQLITE_SHIM_H
#define DEPLOXA_CSQLITE_SHIM_H
#include <sqlite3.h>

/* SQLITE_TRANSIENT is a macro Swift cannot import (a cast of -1 to a function pointer). */
static inline sqlite3_destructor_type deploxa_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}
#endif
