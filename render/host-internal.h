/* An intent's values as the renderers of script, command line and kickstart
 * use them (context.c). Internal to render/. */
#pragma once

#include "model/intent.h"
#include "render/context.h"
#include "render/render-internal.h"

/* An intent's values as every renderer uses them, rack defaults applied and
 * everything checked once. */
typedef struct render_host {
    const intent *in;
    const model_profile *profile;
    const char *hostname; /* the intent's, else its inventory name */
    char address[RENDER_ADDR_LEN];
    char gateway[RENDER_ADDR_LEN]; /* "" without one */
    const struct in6_addr *dns;
    size_t n_dns;
    const char *const *search;
    size_t n_search;
} render_host;

/* -EINVAL unless: the intent has a profile; its install id, token and
 * profile name pass render_id_valid(); its hostname is a DNS name
 * (dns_name_valid) and template_value_safe(); every search domain is a DNS
 * name; the prefix length is 1-128; the profile's cmdline passes
 * render_cmdline_extra_valid(). */
int render_host_resolve(const render_context *ctx, const intent *in, render_host *ret);

/* "a,b,c" */
void render_put_dns_list(rbuf *b, const render_host *h);
void render_put_search_list(rbuf *b, const render_host *h);

/* Expands a profile template (kickstart, cloud-init user-data; NULL is "")
 * with the names of model/template.h filled from `h`. As template_expand(). */
int render_host_expand(const render_context *ctx, const render_host *h, const char *tmpl,
                       char **ret, size_t *ret_len);

/* The names d-i's netcfg takes (preseed.h): the host name without its
 * domain, and the domain: the rest of a dotted hostname, else the first
 * search domain, else "". */
typedef struct render_di_names {
    char host[254];
    const char *domain; /* points into host's source or a search domain */
} render_di_names;
void render_host_di_names(const render_host *h, render_di_names *ret);
