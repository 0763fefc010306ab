/* A profile: what to install (kernel, initrd, stage2 and extra files, each a
 * URL with its sha256), how (extra kernel arguments, the kickstart template,
 * the route-wait overlay, static or DHCPv6 addressing) — or, for an image
 * profile, which disk image to write and what the installed system's
 * cloud-init gets (SSH keys, a user-data template) — the one form every
 * part of rackboot holds a profile in: the hosts file parser fills it, the
 * controller's store reads and writes it, proto/model_pb.h turns it into the
 * wire's rackboot.v1.Profile and back, the agent renders from it.
 *
 * Adding a profile setting is a field here, its parse in hostsfile.c, its
 * wire field in proto/, its store column, and the one place that uses it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum image_kind {
    IMAGE_KERNEL = 0,
    IMAGE_INITRD,
    IMAGE_STAGE2,
    IMAGE_OTHER,
    IMAGE_DISK, /* an image profile's disk image: raw, zstd or xz */
} image_kind;

/* What a profile installs with.
 *   PROFILE_INSTALL  the profile's kernel and initrd boot an installer
 *                    (Anaconda, dracut) that reads the rendered kickstart.
 *   PROFILE_IMAGE    the agent boots its deploy ramdisk instead, which writes
 *                    the profile's IMAGE_DISK to root_device with a cloud-init
 *                    NoCloud seed (render/nocloud.h); the installed
 *                    system confirms its first boot. */
/*   PROFILE_DEBIAN_INSTALLER
 *                    the profile's kernel and initrd are Debian's netboot
 *                    installer (d-i), which reads a rendered preseed
 *                    (render/preseed.h) instead of a kickstart:
 *                    the template is a preseed template, the network is
 *                    netcfg's static configuration on the kernel command
 *                    line, the SSH keys go to the installed system's user;
 *                    the installed system confirms its first boot. */
typedef enum profile_kind {
    PROFILE_INSTALL = 0,
    PROFILE_IMAGE,
    PROFILE_DEBIAN_INSTALLER,
} profile_kind;

typedef enum ip_mode {
    IP_MODE_STATIC = 0,
    IP_MODE_DHCP6,
} ip_mode;

/* How UEFI hosts boot: iPXE (ipxe.efi, then the rendered script; the
 * default), or straight into a Unified Kernel Image the agent builds for
 * the host (rack-agent/uki/): no iPXE, no second DHCP round. BIOS hosts
 * boot iPXE either way. */
typedef enum uefi_boot {
    UEFI_BOOT_IPXE = 0,
    UEFI_BOOT_UKI,
} uefi_boot;

typedef struct model_image {
    char *name; /* image_kind_file() of its kind, or an extra file's name */
    image_kind kind;
    char *url;
    uint8_t sha256[32];
    uint64_t size; /* 0 when unknown */
} model_image;

typedef struct model_profile {
    char *name;
    profile_kind kind;
    model_image *images;
    size_t n_images;
    char *cmdline;   /* extra kernel arguments, may be NULL */
    char *kickstart; /* the answer file's template (kickstart, or preseed for
                      * debian-installer), may be NULL */
    uint8_t kickstart_sha256[32];
    bool overlay;
    ip_mode ip;
    uefi_boot uefi;
    bool keep_ra;
    /* Serve the script and kickstart to any address, not only the host's
     * own (hosts file `source_check = no`; e.g. behind a proxy). */
    bool any_source;
    /* The disk the system goes on (image deploy, and kickstarts through
     * the kernel command line): "auto" (the deploy picks one) or a path
     * under /dev/ (/dev/vda, /dev/disk/by-path/...); NULL when not set. */
    char *root_device;
    /* Image and debian-installer profiles: authorized_keys lines for the
     * installed system's default user (model_ssh_key_valid); image profiles:
     * the operator's cloud-init
     * user-data template ({{name}} placeholders as in kickstarts), NULL when
     * none. */
    char **ssh_keys;
    size_t n_ssh_keys;
    char *user_data;
} model_profile;

/* ---- Rules --------------------------------------------------------------

 * The limits a profile is held to everywhere (proto/rbproto.h's wire limits
 * are these). */
#define MODEL_NAME_MAX      63u  /* a profile's name: common/parse.h fleet_name_valid() */
#define MODEL_FILE_NAME_MAX 128u /* an image's name: [A-Za-z0-9._+-], not starting with '.' */
#define MODEL_URL_MAX       2048u
#define MODEL_CMDLINE_MAX   4096u        /* Linux COMMAND_LINE_SIZE on arm64 */
#define MODEL_TEMPLATE_MAX  (256u << 10) /* a kickstart template */
#define MODEL_IMAGES_MAX    64u
#define MODEL_SSH_KEYS_MAX  64u   /* ssh_authorized_keys lines of a profile */
#define MODEL_SSH_KEY_MAX   8192u /* one line: an RSA-16384 key with options fits */

/* An image's file name: what the agent serves it under. */
bool model_file_name_valid(const char *name);

/* 0 when `p` is a profile the fleet can hold: its name, kind, sizes, ip
 * mode, image names, kinds and http:// or https:// URLs, root_device, and
 * what its kind needs:
 *   install  exactly one kernel and one initrd, at most one stage2, no disk
 *            image, SSH keys or user-data;
 *   debian-installer
 *            exactly one kernel and one initrd, no stage2 or disk image, no
 *            overlay (d-i runs no dracut hooks), no user-data, ip = static
 *            (netcfg's static configuration; no autoconfiguration), SSH keys
 *            that pass model_ssh_key_valid();
 *   image    exactly one disk image, no kernel, initrd or stage2 (the agent
 *            serves its deploy ramdisk), no kickstart, no overlay; SSH keys
 *            that pass model_ssh_key_valid(), a user-data template of at most
 *            MODEL_TEMPLATE_MAX bytes that is not a MIME multipart itself
 *            (the seed wraps it in one).
 * -EINVAL otherwise, with one line for the operator in why (why_len bytes,
 * if not NULL). Templates' placeholders are checked by template_check(). */
int model_profile_check(const model_profile *p, char *why, size_t why_len);

/* "install", "image", "debian-installer"; "unknown" out of range. The reverse is exact (lower
 * case, as the hosts file writes it); -EINVAL. */
const char *profile_kind_to_string(profile_kind k);
int profile_kind_from_string(const char *s, profile_kind *ret);

/* Whether an install of this kind ends only on the installed system's first
 * boot, its phone-home (image deploys, the Debian installer), rather than
 * on the installer's `installed` (PROFILE_INSTALL). Before that, `written`
 * or `installed` says the system is on its disk: the agent stops answering
 * the host's netboot so it boots that disk, and keeps the intent for the
 * phone-home. */
bool profile_kind_ends_on_first_boot(profile_kind k);

/* One authorized_keys line: 1..MODEL_SSH_KEY_MAX bytes of printable ASCII
 * (0x20-0x7e: no newline, no control byte, so it can never end or add a
 * line of what it is written into), not starting or ending with a space,
 * with at least two words (a key type and the key; options and a comment
 * may come around them, as sshd(8) AUTHORIZED_KEYS FILE FORMAT allows). */
bool model_ssh_key_valid(const char *s);

/* A user-data template that is a MIME document itself ("Content-Type:" or
 * "MIME-Version:" first): the seed cannot nest it. */
bool model_user_data_is_mime(const char *s);

/* A valid root_device: "auto", or an absolute path under /dev/ of at most
 * MODEL_ROOT_DEVICE_MAX bytes made of letters, digits and "/._:+-" (what
 * /dev/disk/by-* names hold), without "." or ".." components; it goes on
 * a kernel command line unquoted. */
#define MODEL_ROOT_DEVICE_MAX 255u
bool model_root_device_valid(const char *s);

/* Frees the strings and images a profile owns and zeroes it. */
void model_profile_clear(model_profile *p);
/* A deep copy of `src` into *dst. -ENOMEM (nothing left allocated). */
int model_profile_copy(const model_profile *src, model_profile *dst);
/* The profile's first image of `kind`, NULL if none. */
const model_image *model_profile_image(const model_profile *p, image_kind kind);

/* ---- The one image-kind table ------------------------------------------

 *   kind          hosts file key   image name      served as images/<profile>/...
 *   IMAGE_KERNEL  kernel           vmlinuz         vmlinuz
 *   IMAGE_INITRD  initrd           initrd.img      initrd.img
 *   IMAGE_STAGE2  stage2           squashfs.img    LiveOS/squashfs.img
 *   IMAGE_OTHER   file.NAME        NAME            NAME
 *   IMAGE_DISK    image            disk.img        disk.img
 *
 * A disk image keeps its compression (the deploy ramdisk tells raw, zstd
 * and xz apart by their magic numbers), so one name serves all three.
 *
 * The boot script, the image cache, the install routes and the hosts file
 * all ask here, so a served path is written once. */

/* "kernel", "initrd", "stage2", "other", "disk"; "unknown" for a value out
 * of range. */
const char *image_kind_to_string(image_kind k);
/* The reverse, case-insensitive. -EINVAL. */
int image_kind_from_string(const char *s, image_kind *ret);
/* The image's name in a profile: "vmlinuz", ...; NULL for IMAGE_OTHER
 * (named by its file.NAME key). */
const char *image_kind_file(image_kind k);
/* Where the agent serves an image of that kind, relative to
 * images/<profile>/: "LiveOS/squashfs.img" for the stage2 (Anaconda's
 * inst.stage2 looks for it there); NULL for IMAGE_OTHER (served as its
 * name). */
const char *image_kind_path(image_kind k);
/* The kind served at `path` (relative to images/<profile>/); IMAGE_OTHER for
 * anything else, an extra file's name. */
image_kind image_kind_of_path(const char *path);
/* The path `img` is served at under images/<profile>/. */
const char *model_image_path(const model_image *img);
