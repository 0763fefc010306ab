/* The journal's on-disk framing (journal.h describes the format), exported
 * for the unit tests and the fuzzer. Pure functions over bytes. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define JOURNAL_SEGMENT_MAGIC  "RBJRNL1\n"
#define JOURNAL_SEGMENT_HEADER 16u
#define JOURNAL_RECORD_HEADER  16u
/* Smallest record: a header and a non-empty payload. Bounds how many records
 * a damaged tail of N bytes could have held. */
#define JOURNAL_MIN_RECORD (JOURNAL_RECORD_HEADER + 1u)

/* CRC32C (Castagnoli, reflected 0x82F63B78), as in iSCSI, ext4 and LevelDB
 * logs. Start with crc = 0; feed pieces by passing the previous result. */
uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t len);

/* Writes a segment header for first_seq into buf[JOURNAL_SEGMENT_HEADER]. */
void journal_segment_header_build(uint64_t first_seq, uint8_t *buf);
/* 0 and *ret_first_seq, or -EBADMSG (short, wrong magic, seq 0). */
int journal_segment_header_parse(const uint8_t *buf, size_t len, uint64_t *ret_first_seq);

/* Writes the record header for (seq, payload) into hdr[JOURNAL_RECORD_HEADER];
 * the payload follows it. */
void journal_record_header_build(uint64_t seq, const uint8_t *payload, size_t payload_len,
                                 uint8_t *hdr);
/* Reads the record at *offset of buf[0..len): 1 with its seq and payload
 * (pointing into buf) and *offset moved past it; 0 when *offset == len (a
 * clean end); -EBADMSG for a short, oversized, empty or CRC-failing record,
 * *offset unchanged. */
int journal_record_next(const uint8_t *buf, size_t len, size_t *offset, uint64_t *ret_seq,
                        const uint8_t **ret_payload, size_t *ret_payload_len);
