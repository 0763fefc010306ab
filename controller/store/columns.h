/* store/columns: how the fleet store's schema holds model values, shared
 * by every backend (store/sqlite.c, store/postgresql.c) so that a value
 * means the same in either database. Pure: no SQL, no engine. */
#pragma once

#include <stdbool.h>

#include "install_fsm.h"
#include "model/profile.h"
#include "store.h"

/* An image's kind as a number: 1 kernel, 2 initrd, 3 stage2, 4 other,
 * 5 disk (the wire's numbers when the schema was written; explicit, so a
 * stored value never follows an enum's order). */
int store_col_image_kind(image_kind k);
image_kind store_col_image_kind_from(int v);
/* A profile's kind: 0 install, 1 image, 2 debian-installer. */
int store_col_profile_kind(profile_kind k);
profile_kind store_col_profile_kind_from(int v);
/* A profile's ip mode: 0 static, 1 DHCPv6. */
int store_col_ip_mode(ip_mode m);
ip_mode store_col_ip_mode_from(int v);

/* A profile's SSH keys in their column: one line each, joined by '\n' (a
 * key has no newline: model_ssh_key_valid); "" for none. malloc()ed. */
int store_col_keys_join(const model_profile *p, char **ret);
/* Splits such a column into p's keys; on -ENOMEM the loaded profile's
 * owner frees what was split. */
int store_col_keys_split(const char *col, model_profile *p);

/* An install state by name, as the schema keeps it (install_fsm's). */
const char *store_col_state(install_state st);

/* The racks of a page as a JSON array of strings (malloc()ed): names hold
 * no quote, backslash or control character (the rules checked them; a
 * name that does is refused, -EINVAL with *ret_bad, rather than quoted). */
int store_col_racks_json(const store_page *pg, char **ret, const char **ret_bad);
