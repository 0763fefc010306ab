/* Hexadecimal text for bytes: DUIDs in logs and state files, sha256 digests,
 * tokens. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Value of one hex digit of either case, or -1. */
int hex_digit(char c);

/* Lower-case hex of `len` bytes into out, which holds 2 * len + 1 bytes. */
void hex_encode(const uint8_t *data, size_t len, char *out);

/* Exactly 2 * n hex digits of either case and nothing else: writes n bytes to
 * out (only on success). -EINVAL otherwise. */
int hex_decode(const char *hex, uint8_t *out, size_t n);
