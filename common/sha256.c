#include "sha256.h"

#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <unistd.h>

#include "hex.h"
#include "util.h"

struct sha256_ctx {
    EVP_MD_CTX *evp;
};

sha256_ctx *sha256_new(void)
{
    sha256_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        return NULL;
    }
    ctx->evp = EVP_MD_CTX_new();
    if (!ctx->evp || EVP_DigestInit_ex(ctx->evp, EVP_sha256(), NULL) != 1) {
        return sha256_free(ctx);
    }
    return ctx;
}

sha256_ctx *sha256_free(sha256_ctx *ctx)
{
    if (!ctx) {
        return NULL;
    }
    EVP_MD_CTX_free(ctx->evp);
    free(ctx);
    return NULL;
}

int sha256_update(sha256_ctx *ctx, const void *data, size_t len)
{
    if (len == 0) {
        return 0;
    }
    if (EVP_DigestUpdate(ctx->evp, data, len) != 1) {
        return -EIO;
    }
    return 0;
}

int sha256_final(sha256_ctx *ctx, uint8_t ret[SHA256_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;

    if (EVP_DigestFinal_ex(ctx->evp, md, &md_len) != 1 || md_len != SHA256_LEN) {
        return -EIO;
    }
    /* Ready for the next message, so one ctx can hash many files. */
    if (EVP_DigestInit_ex(ctx->evp, EVP_sha256(), NULL) != 1) {
        return -EIO;
    }
    memcpy(ret, md, SHA256_LEN);
    return 0;
}

int sha256_buffer(const void *data, size_t len, uint8_t ret[SHA256_LEN])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;

    if (EVP_Digest(data, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != SHA256_LEN) {
        return -EIO;
    }
    memcpy(ret, md, SHA256_LEN);
    return 0;
}

int sha256_fd(int fd, uint8_t ret[SHA256_LEN])
{
    /* Heap, not stack: 64 KiB reads keep syscalls few on multi-GB images
     * without a large frame on small thread-pool stacks. */
    enum { CHUNK = 64 * 1024 };
    uint8_t *buf = malloc(CHUNK);
    sha256_ctx *ctx = sha256_new();
    int r = 0;

    if (!buf || !ctx) {
        r = -ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            r = negative_errno();
            goto out;
        }
        if (n == 0) {
            break;
        }
        r = sha256_update(ctx, buf, (size_t)n);
        if (r < 0) {
            goto out;
        }
    }
    r = sha256_final(ctx, ret);
out:
    sha256_free(ctx);
    free(buf);
    return r;
}

void sha256_to_hex(const uint8_t digest[SHA256_LEN], char ret[SHA256_HEX_LEN + 1])
{
    hex_encode(digest, SHA256_LEN, ret);
}

int sha256_from_hex(const char *hex, uint8_t ret[SHA256_LEN])
{
    return hex_decode(hex, ret, SHA256_LEN);
}
