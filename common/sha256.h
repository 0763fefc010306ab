/* SHA-256 (FIPS 180-4) over OpenSSL's EVP interface: one-shot, streaming,
 * from a file descriptor, and to/from lower-case hex as it appears in
 * `URL sha256=HEX` lines.
 *
 * Errors: -ENOMEM, -EIO when OpenSSL fails, -EINVAL for malformed hex,
 * read(2) errors from sha256_fd(). ret_* are written only on success. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN     32
#define SHA256_HEX_LEN 64

typedef struct sha256_ctx sha256_ctx;

int sha256_buffer(const void *data, size_t len, uint8_t ret[SHA256_LEN]);

/* NULL when out of memory or OpenSSL has no SHA-256. */
sha256_ctx *sha256_new(void);
int sha256_update(sha256_ctx *ctx, const void *data, size_t len);
/* Writes the digest and resets ctx to hash a new message. */
int sha256_final(sha256_ctx *ctx, uint8_t ret[SHA256_LEN]);
/* Accepts NULL, returns NULL. */
sha256_ctx *sha256_free(sha256_ctx *ctx);

/* Hashes everything from fd's current offset to end of file. Does not close
 * fd. Retries on EINTR. */
int sha256_fd(int fd, uint8_t ret[SHA256_LEN]);

/* 64 lower-case hex digits and a NUL. */
void sha256_to_hex(const uint8_t digest[SHA256_LEN], char ret[SHA256_HEX_LEN + 1]);
/* Exactly 64 hex digits, either case, nothing before or after. */
int sha256_from_hex(const char *hex, uint8_t ret[SHA256_LEN]);
