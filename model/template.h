/* `{{name}}` templates: kickstart templates of profiles.
 *
 * Syntax: a placeholder is "{{", optional blanks, a name of lower-case
 * letters, digits and '_' (starting with a letter), optional blanks, "}}",
 * all on one line. Everything else is copied verbatim; there is no escape
 * and no logic. A lone "}}" is text; a "{{" that does not open a well-formed
 * placeholder is an error (so a typo never renders silently).
 *
 * The names a template may use are template_placeholders[] (template.c:
 * hostname, address, prefix, gateway, dns, search, install_id, token,
 * progress_url, profile, agent_url), each with what it stands for; the CLI's
 * `profiles import --help` and the "unknown placeholder" error list them.
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

typedef struct template_placeholder {
    const char *name;
    const char *meaning; /* one line, for help texts */
} template_placeholder;

extern const template_placeholder template_placeholders[];
extern const size_t template_n_placeholders;

typedef struct template_error {
    unsigned line;   /* 1-based */
    unsigned column; /* 1-based byte column of the offending "{{" */
    char message[320];
} template_error;

/* Checks `tmpl` (`len` bytes; need not be NUL-terminated). 0 if every
 * placeholder is well-formed and known; -EBADMSG otherwise, with the first
 * problem described in *err if err is not NULL ("line 12: unknown
 * placeholder {{hostnme}} (known: hostname, address, ...)"). A NUL byte in
 * the template is an error too. */
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
