/* Building the protobuf messages the CLI sends. Every message here is owned
 * by the CLI, built from malloc()ed parts, and freed with cli_pb_free()
 * (protobuf-c's free_unpacked with the default allocator frees exactly that
 * shape). Replies are different: they come from rbproto_unpack_api_reply()
 * and are freed with rbproto_api_reply_free(). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "rackboot.pb-c.h"

/* A new zero-initialised message of the descriptor's type, NULL when out of
 * memory. */
void *cli_pb_new(const ProtobufCMessageDescriptor *desc);
/* Frees a message built here and everything it points to. Accepts NULL,
 * returns NULL. */
void *cli_pb_free(void *msg);

/* An ApiRequest whose oneof body `which` is set to a new, empty request of
 * the matching type (reachable as req->hosts_add etc.). NULL when out of
 * memory or for the handshake cases. */
Rackboot__V1__ApiRequest *cli_request_new(Rackboot__V1__ApiRequest__BodyCase which);

/* Replace a string field (the old value is freed unless it is protobuf-c's
 * shared empty string). -ENOMEM. */
int cli_pb_set_string(char **field, const char *value);
/* Copies n bytes into a bytes field. -ENOMEM. */
int cli_pb_set_bytes(ProtobufCBinaryData *field, const void *data, size_t n);
/* Appends a copy of value to a repeated string field. -ENOMEM. */
int cli_pb_add_string(char ***field, size_t *n, const char *value);
/* Appends a copy of n bytes to a repeated bytes field. -ENOMEM. */
int cli_pb_add_bytes(ProtobufCBinaryData **field, size_t *n, const void *data, size_t len);
/* Appends msg (taking ownership on success) to a repeated message field. */
int cli_pb_add_message(void ***field, size_t *n, void *msg);
