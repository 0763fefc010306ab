/* TFTP packets (RFC 1350 §5) and option negotiation (RFC 2347, 2348, 2349,
 * 7440): pure parse and build functions over bytes, no sockets.
 *
 *   RRQ/WRQ  | 00 01 / 00 02 | filename | 00 | mode | 00 | [opt | 00 | value | 00]...
 *   DATA     | 00 03 | block# | 0..blksize bytes
 *   ACK      | 00 04 | block#
 *   ERROR    | 00 05 | code | message | 00
 *   OACK     | 00 06 | [opt | 00 | value | 00]...
 *
 * Modes: only "octet" is served. "netascii" is answered with ERROR 4: its
 * LF -> CR LF expansion changes the size (tsize would lie) and no boot
 * firmware uses it; "mail" is obsolete and refused the same way. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    TFTP_RRQ = 1,
    TFTP_WRQ = 2,
    TFTP_DATA = 3,
    TFTP_ACK = 4,
    TFTP_ERROR = 5,
    TFTP_OACK = 6,
};

typedef enum tftp_error_code {
    TFTP_ERR_UNDEFINED = 0,
    TFTP_ERR_NOT_FOUND = 1,
    TFTP_ERR_ACCESS = 2,
    TFTP_ERR_DISK_FULL = 3,
    TFTP_ERR_ILLEGAL_OP = 4,
    TFTP_ERR_UNKNOWN_TID = 5,
    TFTP_ERR_EXISTS = 6,
    TFTP_ERR_NO_USER = 7,
    TFTP_ERR_OPTIONS = 8, /* RFC 2347 */
} tftp_error_code;

typedef enum tftp_mode {
    TFTP_MODE_OCTET,
    TFTP_MODE_NETASCII,
    TFTP_MODE_MAIL,
    TFTP_MODE_UNKNOWN,
} tftp_mode;

#define TFTP_HEADER_LEN      4
#define TFTP_DEFAULT_BLKSIZE 512u
#define TFTP_MIN_BLKSIZE     8u     /* RFC 2348 */
#define TFTP_MAX_BLKSIZE     65464u /* RFC 2348 */
#define TFTP_MIN_TIMEOUT     1u     /* RFC 2349, seconds */
#define TFTP_MAX_TIMEOUT     255u
#define TFTP_MAX_WINDOWSIZE  65535u /* RFC 7440 */
/* RFC 2347 §2: the whole request, options included, fits in 512 bytes. */
#define TFTP_MAX_REQUEST  512u
#define TFTP_MAX_FILENAME TFTP_MAX_REQUEST
/* Longest packet a transfer receives (ACK 4 bytes, ERROR with a message). */
#define TFTP_MAX_ERROR_PACKET 516u

/* A parsed RRQ or WRQ. Options the client asked for are marked has_*;
 * a recognised option with a value that is not a number, or one outside its
 * RFC range, is dropped (has_* false) and counted in n_rejected, so it is
 * left out of the OACK (RFC 2347: the OACK holds only accepted options).
 * Unknown options are ignored and counted in n_unknown. Of a repeated option
 * the first counts. */
typedef struct tftp_request {
    uint16_t opcode; /* TFTP_RRQ or TFTP_WRQ */
    char filename[TFTP_MAX_FILENAME + 1];
    size_t filename_len;
    tftp_mode mode;
    bool has_blksize, has_timeout, has_tsize, has_windowsize;
    uint32_t blksize;    /* 8..65464 */
    uint32_t timeout;    /* 1..255 seconds */
    uint64_t tsize;      /* as sent (0 in an RRQ) */
    uint32_t windowsize; /* 1..65535 */
    unsigned n_rejected, n_unknown;
} tftp_request;

/* Parses a request datagram. -EBADMSG when it is not an RRQ/WRQ, exceeds
 * TFTP_MAX_REQUEST, has an empty filename or mode, a field without its NUL,
 * or an option name without a value. The filename is NUL-terminated in
 * ret->filename; it cannot hold a NUL (NUL ends it on the wire). */
int tftp_request_parse(const uint8_t *buf, size_t len, tftp_request *ret);

/* The server's limits for negotiation. */
typedef struct tftp_limits {
    uint32_t max_blksize;    /* configured cap, 8..65464 */
    uint32_t path_blksize;   /* MTU-derived cap for this client, 0 = unknown */
    uint32_t max_windowsize; /* 1..65535 */
} tftp_limits;

/* What a transfer uses, and which options go back in the OACK. */
typedef struct tftp_params {
    uint32_t blksize;
    uint32_t windowsize;
    uint32_t timeout; /* seconds, 0 = the client asked for none */
    uint64_t tsize;
    bool oack_blksize, oack_timeout, oack_tsize, oack_windowsize;
} tftp_params;

/* Decides the transfer parameters for an RRQ of a file of `file_size`
 * bytes: blksize is min(requested, limits) (RFC 2348 lets the server answer
 * smaller), windowsize likewise (RFC 7440), timeout is echoed unchanged
 * (RFC 2349; tftp_transfer_new() leaves it out again when the server would
 * not honour it), tsize is answered with the file size. */
void tftp_negotiate(const tftp_request *req, const tftp_limits *lim, uint64_t file_size,
                    tftp_params *ret);

/* True when the OACK would carry any option (else DATA 1 answers the RRQ). */
bool tftp_params_has_oack(const tftp_params *p);

/* Builders. Each returns the packet length, or -ENOSPC when `cap` is too
 * small (our buffers are sized so that cannot happen). */
int tftp_build_oack(const tftp_params *p, uint8_t *buf, size_t cap);
/* ERROR; msg is cut to fit 512 bytes of message. */
int tftp_build_error(uint16_t code, const char *msg, uint8_t *buf, size_t cap);
int tftp_build_ack(uint16_t block, uint8_t *buf, size_t cap);
/* DATA header only: the caller places the payload at buf + TFTP_HEADER_LEN. */
int tftp_build_data_header(uint16_t block, uint8_t *buf, size_t cap);
/* An RRQ or WRQ (for tests and the benchmark client). options is a list of
 * n_options name/value pairs. */
int tftp_build_request(uint16_t opcode, const char *filename, const char *mode,
                       const char *const *options, size_t n_options, uint8_t *buf, size_t cap);

/* A packet a transfer receives from its client. */
typedef struct tftp_packet {
    uint16_t opcode;
    uint16_t block;        /* DATA, ACK */
    uint16_t error_code;   /* ERROR */
    const char *error_msg; /* ERROR: points into a copy in ret->msgbuf */
    char msgbuf[TFTP_MAX_ERROR_PACKET];
} tftp_packet;

/* Parses ACK and ERROR (and recognises other opcodes without reading their
 * bodies). An ERROR without a terminating NUL still counts, with the message
 * cut at the end of the datagram. -EBADMSG when shorter than its header or
 * of an unknown opcode. */
int tftp_packet_parse(const uint8_t *buf, size_t len, tftp_packet *ret);

const char *tftp_mode_to_string(tftp_mode m);
