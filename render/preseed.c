#include "render/preseed.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "render/host-internal.h"
#include "util.h"

/* The helper the early_command writes to /tmp/rackboot-progress. d-i has
 * busybox: its wget cannot POST, so the request goes through `nc`; HTTP/1.0,
 * so the agent closes the connection after its answer. The agent answers 200
 * only once the event is durable (install/routes.c), so the status line is
 * what counts. Messages keep [A-Za-z0-9._-] and turn the rest into '+'
 * (a space in a form body). Three values follow the shebang line:
 * RB_ADDR, RB_PORT, RB_PATH (put_script_head). */
static const char progress_script_body[] =
    "post() {\n"
    "    body=\"phase=$1&message=$(printf '%s' \"${2:-}\" | sed 's/[^A-Za-z0-9._-]/+/g')\"\n"
    "    n=0\n"
    "    while [ \"$n\" -lt 6 ]; do\n"
    "        status=$(printf 'POST %s HTTP/1.0\\r\\nHost: [%s]:%s\\r\\n"
    "Content-Type: application/x-www-form-urlencoded\\r\\nContent-Length: %s\\r\\n\\r\\n%s' \\\n"
    "            \"$RB_PATH\" \"$RB_ADDR\" \"$RB_PORT\" \"${#body}\" \"$body\" |\n"
    "            nc -w 10 \"$RB_ADDR\" \"$RB_PORT\" 2>/dev/null | head -n 1)\n"
    "        case \"$status\" in \"HTTP/1.\"?\" 200 \"*) return 0 ;; esac\n"
    "        n=$((n + 1))\n"
    "        sleep 2\n"
    "    done\n"
    "    logger -t rackboot \"progress $1 ${2:-} not delivered\"\n"
    "}\n"
    "\n"
    "# main-menu logs each step it starts and each that fails.\n"
    "watch() {\n"
    "    tail -n 0 -f /var/log/syslog | while read -r line; do\n"
    "        case \"$line\" in\n"
    "        *main-menu*\"Menu item \"?*?\" selected\"*)\n"
    "            step=${line#*Menu item ?}\n"
    "            post installing \"${step%%? selected*}\"\n"
    "            ;;\n"
    "        *main-menu*\"Configuring \"?*?\" failed with error code\"*)\n"
    "            step=${line#*Configuring ?}\n"
    "            post failed \"${step%%? failed with*} failed\"\n"
    "            ;;\n"
    "        esac\n"
    "    done\n"
    "}\n"
    "\n"
    "case \"${1:-}\" in\n"
    "watch) watch ;;\n"
    "*) post \"$1\" \"${2:-}\" ;;\n"
    "esac\n";

#define PROGRESS_SCRIPT "/tmp/rackboot-progress"

/* `head` (the shebang line and comments), then the values the script's
 * body reads: RB_ADDR and RB_PORT, the agent's address and port from its
 * base URL ("http://[addr]" or "http://[addr]:port", render_context_init),
 * and RB_PATH, the install's `route` with its token. */
static void put_script_head(rbuf *b, const render_context *ctx, const intent *in, const char *head,
                            const char *route)
{
    const char *base = ctx->base_url;
    const char *open = strchr(base, '[');
    const char *close = open ? strchr(open, ']') : NULL;
    if (!close || (size_t)(close - open - 1) >= RENDER_ADDR_LEN) {
        rbuf_fail(b, -EINVAL);
        return;
    }
    unsigned port = close[1] == ':' ? (unsigned)strtoul(close + 2, NULL, 10) : 80u;
    rbuf_puts(b, head);
    rbuf_printf(b, "RB_ADDR=%.*s\nRB_PORT=%u\nRB_PATH=/%s/%s?token=%s\n", (int)(close - open - 1),
                open + 1, port, route, in->install_id, in->token);
}

static void put_progress_script(rbuf *b, const render_context *ctx, const intent *in)
{
    put_script_head(b, ctx, in,
                    "#!/bin/sh\n"
                    "# rackboot-progress PHASE [STEP]: tells the rack agent how the install goes\n"
                    "# (six tries; never fails the install). rackboot-progress watch: posts\n"
                    "# each installer step as it starts.\n",
                    "progress");
    rbuf_puts(b, "\n");
    rbuf_puts(b, progress_script_body);
}

#define USER_HOME            "/home/" RENDER_PRESEED_USER
#define PHONE_HOME_DIR       "/usr/local/lib/rackboot"
#define PHONE_HOME_SCRIPT    PHONE_HOME_DIR "/phone-home"
#define PHONE_HOME_UNIT      "rackboot-phone-home.service"
#define PHONE_HOME_UNIT_PATH "/etc/systemd/system/" PHONE_HOME_UNIT

/* The installed system's phone-home (first_boot, which ends the install:
 * install/routes.h), installed by the late_command as PHONE_HOME_SCRIPT and
 * run by PHONE_HOME_UNIT. The installed system has bash (Essential in
 * Debian) but not necessarily curl or wget, so the POST goes through bash's
 * /dev/tcp; HTTP/1.0, and the status line is what counts. It tries for ten
 * minutes (the address may still be in DAD, the agent restarting). With
 * --once (the unit's), once heard it disables its unit and deletes itself:
 * the install is over and the token in it means nothing any more. Four
 * values follow the shebang line: RB_ADDR, RB_PORT, RB_PATH (put_script_head),
 * RB_INSTALL. */
static const char phone_home_body[] =
    "host=$(hostname --fqdn 2>/dev/null || hostname)\n"
    "body=\"instance_id=$RB_INSTALL&hostname=${host//[^A-Za-z0-9.-]/}\"\n"
    "n=0\n"
    "while [ \"$n\" -lt 60 ]; do\n"
    "    status=$( {\n"
    "        printf 'POST %s HTTP/1.0\\r\\nHost: [%s]:%s\\r\\n"
    "Content-Type: application/x-www-form-urlencoded\\r\\nContent-Length: %s\\r\\n\\r\\n%s' \\\n"
    "            \"$RB_PATH\" \"$RB_ADDR\" \"$RB_PORT\" \"${#body}\" \"$body\" >&3\n"
    "        IFS= read -r -t 30 line <&3 && printf '%s' \"${line%$'\\r'}\"\n"
    "    } 3<>\"/dev/tcp/$RB_ADDR/$RB_PORT\" 2>/dev/null )\n"
    "    case \"$status\" in\n"
    "    \"HTTP/1.\"?\" 200 \"*)\n"
    "        echo \"rackboot: first boot reported to $RB_ADDR\"\n"
    "        if [ \"${1:-}\" = --once ]; then\n"
    "            systemctl disable " PHONE_HOME_UNIT " 2>/dev/null\n"
    "            rm -f -- \"$0\"\n"
    "        fi\n"
    "        exit 0\n"
    "        ;;\n"
    "    \"HTTP/1.\"?\" 4\"*)\n"
    "        echo \"rackboot: the agent refused the first boot report: $status\" >&2\n"
    "        exit 1\n"
    "        ;;\n"
    "    esac\n"
    "    n=$((n + 1))\n"
    "    sleep 10\n"
    "done\n"
    "echo \"rackboot: first boot not reported to $RB_ADDR: ${status:-no answer}\" >&2\n"
    "exit 1\n";

static const char phone_home_unit[] =
    "[Unit]\n"
    "Description=rackboot: report this system's first boot to its rack agent\n"
    "Wants=network-online.target\n"
    "After=network-online.target\n"
    "ConditionPathExists=" PHONE_HOME_SCRIPT "\n"
    "\n"
    "[Service]\n"
    "Type=exec\n"
    "ExecStart=" PHONE_HOME_SCRIPT " --once\n"
    "\n"
    "[Install]\n"
    "WantedBy=multi-user.target\n";

static void put_phone_home_script(rbuf *b, const render_context *ctx, const intent *in)
{
    put_script_head(b, ctx, in,
                    "#!/bin/bash\n"
                    "# " PHONE_HOME_SCRIPT " [--once]: tells the rack agent this system\n"
                    "# booted from its disk (first_boot), which ends its install.\n",
                    "phone-home");
    rbuf_printf(b, "RB_INSTALL=%s\n\n", in->install_id);
    rbuf_puts(b, phone_home_body);
}

/* `text` as one base64 line (OpenSSL's encoder: no line breaks). */
static void put_base64(rbuf *b, const char *text, size_t len)
{
    if (len > (size_t)(INT32_MAX / 4 * 3)) {
        rbuf_fail(b, -E2BIG);
        return;
    }
    _cleanup_free_ unsigned char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out) {
        rbuf_fail(b, -ENOMEM);
        return;
    }
    int n = EVP_EncodeBlock(out, (const unsigned char *)text, (int)len);
    rbuf_add(b, out, (size_t)n);
}

/* Every line of `text` as a preseed comment (d-i's parser drops lines that
 * start with '#'). */
static void put_commented(rbuf *b, const char *text)
{
    for (const char *l = text; *l;) {
        const char *nl = strchr(l, '\n');
        size_t n = nl ? (size_t)(nl - l) : strlen(l);
        rbuf_puts(b, n ? "#   " : "#");
        rbuf_add(b, l, n);
        rbuf_putc(b, '\n');
        l += n + (nl != NULL);
    }
}

static void put_defaults(rbuf *b, const render_host *h, const render_di_names *names)
{
    rbuf_puts(b, "### Network: netcfg's static configuration (also on the kernel command\n"
                 "### line: netcfg runs before this file is fetched)\n"
                 "d-i netcfg/choose_interface select auto\n"
                 "d-i netcfg/disable_autoconfig boolean true\n");
    rbuf_printf(b, "d-i netcfg/get_ipaddress string %s/%u\n", h->address, h->in->prefix_len);
    rbuf_printf(b, "d-i netcfg/get_gateway string %s\n", h->gateway);
    rbuf_puts(b, "d-i netcfg/get_nameservers string");
    for (size_t i = 0; i < h->n_dns; i++) {
        char a[RENDER_ADDR_LEN];
        render_format_addr(&h->dns[i], a);
        rbuf_printf(b, " %s", a);
    }
    rbuf_puts(b, "\nd-i netcfg/confirm_static boolean true\n");
    rbuf_printf(b, "d-i netcfg/get_hostname string %s\n", names->host);
    rbuf_printf(b, "d-i netcfg/get_domain string %s\n", names->domain);
    rbuf_printf(b, "d-i netcfg/hostname string %s\n", names->host);
    rbuf_puts(b, "\n### Locale, keyboard, clock\n"
                 "d-i debian-installer/locale string en_US.UTF-8\n"
                 "d-i keyboard-configuration/xkb-keymap select us\n"
                 "d-i clock-setup/utc boolean true\n"
                 "d-i time/zone string Etc/UTC\n"
                 "d-i clock-setup/ntp boolean false\n"
                 "\n### Mirror: d-i downloads its own components from it too\n"
                 "d-i mirror/country string manual\n"
                 "d-i mirror/http/hostname string deb.debian.org\n"
                 "d-i mirror/http/directory string /debian\n"
                 "d-i mirror/http/proxy string\n"
                 "\n### Partitioning\n");
    const char *disk = h->profile->root_device;
    bool named = disk && strncmp(disk, "/dev/", 5) == 0;
    if (named) {
        rbuf_printf(b, "d-i partman-auto/disk string %s\n", disk);
    }
    rbuf_puts(b, "d-i partman-auto/method string regular\n"
                 "d-i partman-auto/choose_recipe select atomic\n"
                 "d-i partman-lvm/device_remove_lvm boolean true\n"
                 "d-i partman-md/device_remove_md boolean true\n"
                 "d-i partman-partitioning/confirm_write_new_label boolean true\n"
                 "d-i partman/choose_partition select finish\n"
                 "d-i partman/confirm boolean true\n"
                 "d-i partman/confirm_nooverwrite boolean true\n"
                 "\n### Accounts: no root login; one user, SSH keys only (late_command)\n"
                 "d-i passwd/root-login boolean false\n"
                 "d-i passwd/make-user boolean true\n"
                 "d-i passwd/user-fullname string Debian\n"
                 "d-i passwd/username string " RENDER_PRESEED_USER "\n"
                 "d-i passwd/user-password-crypted password !\n"
                 "\n### Packages\n"
                 "tasksel tasksel/first multiselect standard, ssh-server\n"
                 "d-i pkgsel/include string openssh-server\n"
                 "d-i pkgsel/upgrade select none\n"
                 "popularity-contest popularity-contest/participate boolean false\n"
                 "\n### Boot loader\n"
                 "d-i grub-installer/only_debian boolean true\n");
    rbuf_printf(b, "d-i grub-installer/bootdev string %s\n", named ? disk : "default");
}

/* `part`'s text (free() it), *len its length; NULL with `b` failed. */
static char *part_finish(rbuf *part, rbuf *b, size_t *len)
{
    char *text = NULL;
    int r = rbuf_finish(part, &text, len);
    if (r < 0) {
        rbuf_fail(b, r);
        return NULL;
    }
    return text;
}

/* A late_command line writing `text` to /target`path` with `mode`. */
static void put_target_file(rbuf *b, const char *path, const char *mode, const char *text,
                            size_t len)
{
    rbuf_puts(b, "    echo ");
    put_base64(b, text, len);
    rbuf_printf(b, " | base64 -d >/target%s; chmod %s /target%s; \\\n", path, mode, path);
}

static void put_early_command(rbuf *b, const render_context *ctx, const render_host *h)
{
    rbuf part = { 0 };
    put_progress_script(&part, ctx, h->in);
    size_t len = 0;
    _cleanup_free_ char *text = part_finish(&part, b, &len);
    if (!text) {
        return;
    }
    rbuf_puts(b, "### The early_command writes " PROGRESS_SCRIPT " (below, in base64):\n");
    put_commented(b, text);
    rbuf_puts(b, "d-i preseed/early_command string \\\n    echo ");
    put_base64(b, text, len);
    rbuf_puts(b, " | base64 -d >" PROGRESS_SCRIPT "; \\\n"
                 "    chmod 0755 " PROGRESS_SCRIPT "; \\\n"
                 "    " PROGRESS_SCRIPT " installing early_command; \\\n"
                 "    " PROGRESS_SCRIPT " watch </dev/null >/dev/null 2>&1 &\n");
}

static void put_late_command(rbuf *b, const render_context *ctx, const render_host *h)
{
    rbuf part = { 0 };
    put_phone_home_script(&part, ctx, h->in);
    size_t script_len = 0;
    _cleanup_free_ char *script = part_finish(&part, b, &script_len);
    if (!script) {
        return;
    }
    rbuf_puts(b, "### The late_command installs " PHONE_HOME_SCRIPT " (below, in base64):\n");
    put_commented(b, script);
    rbuf_puts(b, "### and its unit, " PHONE_HOME_UNIT_PATH ":\n");
    put_commented(b, phone_home_unit);

    rbuf_puts(b, "d-i preseed/late_command string \\\n"
                 "    " PROGRESS_SCRIPT " installing late_command; \\\n");
    if (h->profile->n_ssh_keys > 0) {
        rbuf keys = { 0 };
        for (size_t i = 0; i < h->profile->n_ssh_keys; i++) {
            rbuf_printf(&keys, "%s\n", h->profile->ssh_keys[i]);
        }
        size_t keys_len = 0;
        _cleanup_free_ char *lines = part_finish(&keys, b, &keys_len);
        if (!lines) {
            return;
        }
        rbuf_puts(b, "    mkdir -p /target" USER_HOME "/.ssh; chmod 0700 /target" USER_HOME
                     "/.ssh; \\\n");
        put_target_file(b, USER_HOME "/.ssh/authorized_keys", "0600", lines, keys_len);
        rbuf_puts(b, "    in-target chown -R " RENDER_PRESEED_USER ":" RENDER_PRESEED_USER
                     " " USER_HOME "/.ssh; \\\n");
    }
    rbuf_puts(b, "    echo '" RENDER_PRESEED_USER " ALL=(ALL) NOPASSWD:ALL' "
                 ">/target/etc/sudoers.d/90-rackboot; \\\n"
                 "    chmod 0440 /target/etc/sudoers.d/90-rackboot; \\\n"
                 "    mkdir -p /target" PHONE_HOME_DIR "; \\\n");
    put_target_file(b, PHONE_HOME_SCRIPT, "0700", script, script_len);
    put_target_file(b, PHONE_HOME_UNIT_PATH, "0644", phone_home_unit, strlen(phone_home_unit));
    rbuf_puts(b, "    in-target systemctl enable " PHONE_HOME_UNIT "; \\\n"
                 "    " PROGRESS_SCRIPT " installed\n"
                 "d-i finish-install/reboot_in_progress note\n");
}

int render_preseed(const render_context *ctx, const intent *in, char **ret, size_t *ret_len)
{
    render_host h;
    int r = render_host_resolve(ctx, in, &h);
    if (r < 0) {
        return r;
    }
    if (h.profile->kind != PROFILE_DEBIAN_INSTALLER || !h.gateway[0]) {
        return -EINVAL;
    }
    render_di_names names;
    render_host_di_names(&h, &names);
    _cleanup_free_ char *body = NULL;
    size_t body_len = 0;
    r = render_host_expand(ctx, &h, h.profile->kickstart, &body, &body_len);
    if (r < 0) {
        return r;
    }

    rbuf b = { 0 };
    rbuf_printf(&b,
                "# rackboot: preseed for %s (install %s, profile %s).\n"
                "# rackboot's defaults, then the profile's template, then rackboot's\n"
                "# commands: for one question the last line wins.\n\n",
                h.hostname, in->install_id, h.profile->name);
    put_defaults(&b, &h, &names);
    rbuf_printf(&b, "\n### The profile's template (%s)\n", h.profile->name);
    rbuf_add(&b, body, body_len);
    if (body_len > 0 && body[body_len - 1] != '\n') {
        rbuf_putc(&b, '\n');
    }
    rbuf_printf(&b, "\n### Added by rackboot for install %s: progress, keys, reboot\n",
                in->install_id);
    put_early_command(&b, ctx, &h);
    put_late_command(&b, ctx, &h);
    return rbuf_finish(&b, ret, ret_len);
}

void render_host_di_names(const render_host *h, render_di_names *ret)
{
    const char *dot = strchr(h->hostname, '.');
    size_t n = dot ? (size_t)(dot - h->hostname) : strlen(h->hostname);
    if (n >= sizeof(ret->host)) {
        n = sizeof(ret->host) - 1; /* dns_name_valid: never more than 253 */
    }
    memcpy(ret->host, h->hostname, n);
    ret->host[n] = '\0';
    ret->domain = dot ? dot + 1 : h->n_search > 0 ? h->search[0] : "";
}
