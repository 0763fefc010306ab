/* store internals for white-box tests. */
#pragma once

/* The SQL that migrates the schema from version - 1 to `version`, or NULL:
 * tests build an old store with it and check the migration to the current
 * one. */
const char *store_migration_sql(int version);

/* The SQL of the listings' pages, i from 0 until NULL: hosts and status
 * (of every rack, of one, of a set) and events (every host's, one
 * host's). Tests check that each is an index range, not a scan. */
const char *store_page_sql(unsigned i);
