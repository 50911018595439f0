#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "thou/http.h"

/*
 * JSON on the wire, on top of jansson: request bodies in, response bodies out.
 */

/**
 * json_loadb for request paths: the same result, with fault injection kept
 * out of jansson's parser (mem.h, thou_mem_parsing).
 */
json_t *thou_json_parse(const char *text, size_t len, size_t flags, json_error_t *error);

/**
 * json_dumps for request paths: NULL when out of memory. jansson 2.14's
 * json_dumps ignores a failed allocation while it writes an object's key and
 * returns text with that key missing (dump.c never checks dump_string's
 * result for keys); this measures the text first and writes it into a buffer
 * of that size, which allocates nothing while writing.
 */
char *thou_json_dumps(const json_t *value, size_t flags);

/** True when a parse failed for want of memory (as far as jansson tells). */
bool thou_json_out_of_memory(const json_error_t *error);

/**
 * Parse the request body as one JSON object. Refuses, by filling res with
 * the error and returning NULL: a content type other than application/json
 * (415 unsupported_media_type), an empty or malformed body, duplicate keys
 * or a non-object (400 invalid_json). The caller owns the returned object.
 */
json_t *thou_json_body(const struct thou_request *req, struct thou_response *res);

/**
 * The checks thou_json_body makes before parsing: an application/json
 * content type (else 415 unsupported_media_type) and a non-empty body (else
 * 400 invalid_json). Returns false with res filled when either fails; for a
 * handler that reads the body with a parser of its own first.
 */
bool thou_json_check_body(const struct thou_request *req, struct thou_response *res);

/** Serialize value (the reference is stolen) as the response body with status. */
void thou_json_respond(struct thou_response *res, unsigned status, json_t *value);

/** "an object", "a string", "a real number", ... for error messages that name a wrong type. */
const char *thou_json_type_name(const json_t *value);

/** Read an optional string member; NULL when absent or not a string. */
const char *thou_json_string(const json_t *object, const char *key);

/**
 * Check that object has no members other than the NULL-terminated allowed
 * list. Returns the first unexpected key, or NULL when all are allowed.
 */
const char *thou_json_unknown_key(const json_t *object, const char *const *allowed);
