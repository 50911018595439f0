#pragma once

#include "thou/http.h"

/*
 * Moving a seat to another device; ctx is the struct thou_app. The HTTP
 * surface is described in docs/api.md.
 */

/**
 * POST /api/rooms/{room}/seat with the seat's bearer token and
 * {"token_hash"}: the seat now belongs to that token; 200 {"room","role"}.
 */
void thou_seats_move(void *ctx, struct thou_request *req, struct thou_response *res);
