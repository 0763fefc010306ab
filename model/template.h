/* `{{name}}` templates: kickstart templates of profiles.
 *
 * Syntax: a placeholder is "{{", optional blanks, a name of lower-case
 * letters, digits and '_' (starting with a letter), optional blanks, "}}",
 * all on one line. Everything else is copied verbatim; there is no escape
 * and no logic. A lone "}}" is text; a "{{" that does not open a well-formed
 * placeholder is an error (so a typo never renders silently).
 *
 * The names a template may use (template_names):
 *
 *   hostname      the host's name (the intent's, else its inventory name)
 *   address       its reserved IPv6 address, without prefix: 2001:db8::10
 *   prefix        the prefix length: 64
 *   gateway       the gateway (the intent's, else the rack's); empty if none
 *   dns           DNS servers, comma-separated: 2001:db8::53,2001:db8::54
 *                 (kickstart's `network --nameserver=` takes this form)
 *   search        search domains, comma-separated: rack1.example.com,example.com
 *   install_id    the install's id
 *   token         the install's token
 *   progress_url  the URL the installer POSTs phases to (context.h); it
 *                 contains '?', so quote it in shell code
 *   profile       the profile's name
 *   agent_url     the agent's HTTP base URL: http://[2001:db8::2]:8080
 *
 * Unknown names are an error when the template is checked — at profile load
 * (the standalone hosts file) and at `rackboot profiles import` — never a
 * blank at install time.
 *
 * Part of model/ (no I/O): the agent renders with it, the controller's
 * profile import and the CLI check templates with it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

extern const char *const template_names[];
extern const size_t template_n_names;

typedef struct template_error {
    unsigned line;   /* 1-based */
    unsigned column; /* 1-based byte column of the offending "{{" */
    char message[160];
} template_error;

/* Checks `tmpl` (`len` bytes; need not be NUL-terminated). 0 if every
 * placeholder is well-formed and known; -EBADMSG otherwise, with the first
 * problem described in *err if err is not NULL ("line 12: unknown
 * placeholder {{hostnme}}"). A NUL byte in the template is an error too. */
int template_check(const char *tmpl, size_t len, template_error *err);

typedef struct template_var {
    const char *name;
    const char *value;
} template_var;

/* Expands a template. Each placeholder is replaced by the value of the var
 * with its name. Every value is checked before use: a value containing a
 * quote, backslash, '$', '`', whitespace, a control character or a non-ASCII
 * byte is refused (-EINVAL), as is a NULL value; a placeholder without a var
 * is -ENOENT; a malformed template -EBADMSG. On success *ret is a new
 * NUL-terminated string (free() it) and *ret_len its length (if not NULL). */
int template_expand(const char *tmpl, size_t len, const template_var *vars, size_t n_vars,
                    char **ret, size_t *ret_len);

/* A value that may be substituted anywhere we render: non-empty is not
 * required, but no byte below 0x21 (so no space, tab, newline or other
 * control character), no DEL or non-ASCII byte, and none of " ' ` \ $ — the
 * characters that end or re-open quoting in a shell script, a kickstart
 * line, an iPXE line (`${`) or a kernel command line. NULL is not safe. */
bool template_value_safe(const char *s);
