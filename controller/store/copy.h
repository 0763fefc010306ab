/* store/copy: moves a fleet from a SQLite store into a PostgreSQL one
 * (issue 17: a deployment that outgrows one controller).
 *
 * Both backends make the same schema by the same numbered migrations,
 * with the same table and column names, so the copy is generic: every
 * table of the source, every column, ids kept, values converted by the
 * target column's declared type (a type it does not know is an error, not
 * a guess). It is one PostgreSQL transaction: a failure leaves the target
 * as it was.
 *
 * The source must be a stopped controller's store (its lock is taken for
 * the copy) at the target's schema version; the target must have its
 * schema (store_open_url() made it) and no rows. This module does not log;
 * the daemon's --import-store prints what it did. */
#pragma once

#include <stdint.h>

/* What was copied, table by table after the commit. */
typedef int (*store_copy_cb)(const char *table, uint64_t rows, void *userdata);

/* Copies the store at `from_url` (sqlite:///PATH) into the one at `to_url`
 * (postgresql://...) and sets the target's identity sequences past the
 * copied ids. Then `cb` (may be NULL) once per table, in copy order.
 * Errors, with *ret_errmsg (if not NULL) a malloc()ed line saying why:
 *   -EPROTONOSUPPORT  not sqlite:// into postgresql://
 *   -EBUSY            a controller holds the source
 *   -EPROTO           the versions differ, or the schemas do (tables,
 *                     columns, a column type this copy does not know)
 *   -EEXIST           the target has rows
 *   -EIO              either database failed (the reason is theirs) */
int store_copy(const char *from_url, const char *to_url, store_copy_cb cb, void *userdata,
               char **ret_errmsg);
