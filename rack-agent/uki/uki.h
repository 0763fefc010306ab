/* uki: Unified Kernel Images, so UEFI hosts boot a host's install without
 * iPXE (profile setting uefi_boot = uki).
 *
 * A UKI is systemd's EFI stub (linuxx64.efi.stub, package systemd-boot-efi)
 * with the kernel, the initrd and the command line added as PE sections:
 * .osrel, .cmdline, .linux, .initrd. The firmware loads it like any EFI
 * program (HTTP boot or PXE); the stub hands the kernel its initrd and
 * command line. The sections are added by binutils' objcopy, the way
 * systemd 252's documentation assembles one; this module only decides where
 * each section goes (uki_layout_plan()) and checks the result's sections.
 *
 * Synchronous and file-based (objdump, objcopy, temporary files): the agent
 * runs uki_build() from a worker thread. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "sha256.h"

/* Each initrd in .initrd starts at a multiple of this (zeros between). */
#define UKI_INITRD_ALIGN 4

/* Where Debian's systemd-boot-efi installs the x86-64 stub. */
#define UKI_STUB_DEFAULT "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

/* The stub as objdump -p describes it: what the layout starts from. */
typedef struct uki_stub_info {
    uint64_t image_base;
    uint64_t section_alignment;
    uint64_t size_of_image; /* the end of the stub's own sections, from image_base */
} uki_stub_info;

/* Reads ImageBase, SectionAlignment and SizeOfImage from `objdump -p`'s
 * text (the "Windows specific" header block). -EINVAL when one is missing,
 * zero, or SectionAlignment is not a power of two. */
int uki_stub_info_parse(const char *objdump_p, uki_stub_info *ret);

enum { UKI_OSREL, UKI_CMDLINE, UKI_LINUX, UKI_INITRD, UKI_N_SECTIONS };
extern const char *const uki_section_names[UKI_N_SECTIONS]; /* ".osrel", ... */

/* Each added section's virtual address (absolute, image base included). */
typedef struct uki_layout {
    uint64_t vma[UKI_N_SECTIONS];
} uki_layout;

/* Places the sections one after the other behind the stub's image, each
 * at a page boundary (4 KiB, or the stub's SectionAlignment when larger),
 * in the order of the enum. -EOVERFLOW when they do not fit in 32-bit
 * relative addresses (PE's limit). */
int uki_layout_plan(const uki_stub_info *stub, const uint64_t sizes[UKI_N_SECTIONS],
                    uki_layout *ret);

typedef struct uki_parts {
    const char *stub;   /* the stub's path (UKI_STUB_DEFAULT) */
    const char *kernel; /* the kernel image (bzImage) */
    /* initrds, concatenated in order into .initrd, each from a multiple of
     * UKI_INITRD_ALIGN bytes (the kernel unpacks concatenated cpio
     * archives, compressed or not, one after another) */
    const char *const *initrds;
    size_t n_initrds;
    const char *cmdline; /* the kernel command line, one line */
    const char *osrel;   /* os-release text for .osrel (boot menus show it) */
} uki_parts;

/* Builds the UKI of `p` at `out` (written under a temporary name in out's
 * directory, then renamed: never half a file at `out`). Temporary files
 * (the concatenated initrd) go to `tmpdir` (NULL: $TMPDIR or /tmp).
 * `*ret_error` says what failed: a missing stub ("install
 * systemd-boot-efi"), objcopy's own message, a file that cannot be read. */
int uki_build(const uki_parts *p, const char *tmpdir, const char *out, char **ret_error);

/* The content key of a UKI: a SHA-256 over validators of the stub, the
 * kernel and each initrd, and the command line and osrel, so that a
 * rack-wide reinstall builds each distinct image once. A validator names
 * one file's content: its SHA-256 (the image cache's objects) or a strong
 * validator that changes whenever the file does (files.h's ETag of a local
 * file: inode, size, mtime to the nanosecond). */
typedef struct uki_key_input {
    const char *stub;
    const char *kernel;
    const char *const *initrds;
    size_t n_initrds;
    const char *cmdline;
    const char *osrel; /* may be NULL */
} uki_key_input;

int uki_key(const uki_key_input *in, char ret_hex[SHA256_HEX_LEN + 1]);
