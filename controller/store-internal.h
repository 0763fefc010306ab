/* store internals for white-box tests. */
#pragma once

/* The SQL that migrates the schema from version - 1 to `version`, or NULL:
 * tests build an old store with it and check the migration to the current
 * one. */
const char *store_migration_sql(int version);
