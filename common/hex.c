#include "hex.h"

#include <errno.h>
#include <string.h>

int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

void hex_encode(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

int hex_decode(const char *hex, uint8_t *out, size_t n)
{
    /* strnlen: a longer string is wrong too, and need not be read to its end. */
    if (n > (SIZE_MAX - 1) / 2 || strnlen(hex, 2 * n + 1) != 2 * n) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (hex_digit(hex[2 * i]) < 0 || hex_digit(hex[2 * i + 1]) < 0) {
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = (uint8_t)(hex_digit(hex[2 * i]) << 4 | hex_digit(hex[2 * i + 1]));
    }
    return 0;
}
