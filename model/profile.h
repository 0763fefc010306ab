/* A profile: what to install (kernel, initrd, stage2 and extra files, each a
 * URL with its sha256), how (extra kernel arguments, the kickstart template,
 * the route-wait overlay, static or DHCPv6 addressing) — the one form every
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
} image_kind;

typedef enum ip_mode {
    IP_MODE_STATIC = 0,
    IP_MODE_DHCP6,
} ip_mode;

typedef struct model_image {
    char *name; /* image_kind_file() of its kind, or an extra file's name */
    image_kind kind;
    char *url;
    uint8_t sha256[32];
    uint64_t size; /* 0 when unknown */
} model_image;

typedef struct model_profile {
    char *name;
    model_image *images;
    size_t n_images;
    char *cmdline;   /* extra kernel arguments, may be NULL */
    char *kickstart; /* template content, may be NULL */
    uint8_t kickstart_sha256[32];
    bool overlay;
    ip_mode ip;
    bool keep_ra;
    /* Serve the script and kickstart to any address, not only the host's
     * own (hosts file `source_check = no`; e.g. behind a proxy). */
    bool any_source;
    /* The disk the system goes on (image deploy, and kickstarts through
     * the kernel command line): "auto" (the deploy picks one) or a path
     * under /dev/ (/dev/vda, /dev/disk/by-path/...); NULL when not set. */
    char *root_device;
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

/* An image's file name: what the agent serves it under. */
bool model_file_name_valid(const char *name);

/* 0 when `p` is a profile the fleet can hold: its name, sizes, ip mode,
 * image names, kinds and http:// or https:// URLs, exactly one kernel and
 * one initrd, root_device. -EINVAL otherwise, with one line for the
 * operator in why (why_len bytes, if not NULL). */
int model_profile_check(const model_profile *p, char *why, size_t why_len);

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
 *
 * The boot script, the image cache, the install routes and the hosts file
 * all ask here, so a served path is written once. */

/* "kernel", "initrd", "stage2", "other"; "unknown" for a value out of range. */
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
