#include "pb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void *cli_pb_new(const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = malloc(desc->sizeof_message);
    if (m) {
        desc->message_init(m);
    }
    return m;
}

void *cli_pb_free(void *msg)
{
    if (msg) {
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    return NULL;
}

Rackboot__V1__ApiRequest *cli_request_new(Rackboot__V1__ApiRequest__BodyCase which)
{
    Rackboot__V1__ApiRequest *req = cli_pb_new(&rackboot__v1__api_request__descriptor);
    if (!req) {
        return NULL;
    }
    req->body_case = which;
    void *body = NULL;
    switch (which) {
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_ADD:
        body = req->hosts_add = cli_pb_new(&rackboot__v1__hosts_add_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_LIST:
        body = req->hosts_list = cli_pb_new(&rackboot__v1__hosts_list_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_HOSTS_REMOVE:
        body = req->hosts_remove = cli_pb_new(&rackboot__v1__hosts_remove_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_RACKS_LIST:
        body = req->racks_list = cli_pb_new(&rackboot__v1__racks_list_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_PROFILES_IMPORT:
        body = req->profiles_import =
            cli_pb_new(&rackboot__v1__profiles_import_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_PROFILES_LIST:
        body = req->profiles_list = cli_pb_new(&rackboot__v1__profiles_list_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_IMAGES_LIST:
        body = req->images_list = cli_pb_new(&rackboot__v1__images_list_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_WEB_LOGIN:
        body = req->web_login = cli_pb_new(&rackboot__v1__web_login_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_INSTALL:
        body = req->install = cli_pb_new(&rackboot__v1__install_request__descriptor);
        if (body) {
            body = req->install->target = cli_pb_new(&rackboot__v1__selector__descriptor);
        }
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_CANCEL:
        body = req->cancel = cli_pb_new(&rackboot__v1__cancel_request__descriptor);
        if (body) {
            body = req->cancel->target = cli_pb_new(&rackboot__v1__selector__descriptor);
        }
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_STATUS:
        body = req->status = cli_pb_new(&rackboot__v1__status_request__descriptor);
        if (body) {
            body = req->status->target = cli_pb_new(&rackboot__v1__selector__descriptor);
        }
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_EVENTS:
        body = req->events = cli_pb_new(&rackboot__v1__events_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_AUDIT:
        body = req->audit = cli_pb_new(&rackboot__v1__audit_request__descriptor);
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_POWER:
        body = req->power = cli_pb_new(&rackboot__v1__power_request__descriptor);
        if (body) {
            body = req->power->target = cli_pb_new(&rackboot__v1__selector__descriptor);
        }
        break;
    case RACKBOOT__V1__API_REQUEST__BODY_POWER_RESULTS:
        body = req->power_results = cli_pb_new(&rackboot__v1__power_results_request__descriptor);
        break;
    default:
        break;
    }
    if (!body) {
        return cli_pb_free(req);
    }
    return req;
}

int cli_pb_set_string(char **field, const char *value)
{
    char *copy = strdup(value);
    if (!copy) {
        return -ENOMEM;
    }
    if (*field != protobuf_c_empty_string) {
        free(*field);
    }
    *field = copy;
    return 0;
}

int cli_pb_set_bytes(ProtobufCBinaryData *field, const void *data, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    if (!copy) {
        return -ENOMEM;
    }
    memcpy(copy, data, n);
    free(field->data);
    field->data = copy;
    field->len = n;
    return 0;
}

static int grow(void **array, size_t n, size_t elem)
{
    void *grown = realloc(*array, (n + 1) * elem);
    if (!grown) {
        return -ENOMEM;
    }
    *array = grown;
    return 0;
}

int cli_pb_add_string(char ***field, size_t *n, const char *value)
{
    char *copy = strdup(value);
    if (!copy || grow((void **)field, *n, sizeof(**field)) < 0) {
        free(copy);
        return -ENOMEM;
    }
    (*field)[(*n)++] = copy;
    return 0;
}

int cli_pb_add_bytes(ProtobufCBinaryData **field, size_t *n, const void *data, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy || grow((void **)field, *n, sizeof(**field)) < 0) {
        free(copy);
        return -ENOMEM;
    }
    memcpy(copy, data, len);
    (*field)[(*n)++] = (ProtobufCBinaryData){ .len = len, .data = copy };
    return 0;
}

int cli_pb_add_message(void ***field, size_t *n, void *msg)
{
    if (grow((void **)field, *n, sizeof(**field)) < 0) {
        return -ENOMEM;
    }
    (*field)[(*n)++] = msg;
    return 0;
}
