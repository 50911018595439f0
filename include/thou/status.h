#pragma once

/*
 * One status type for the whole server. Functions that can fail return an
 * enum thou_status and callers test it as `if (rc)`. The HTTP adapter maps a
 * status to a response through thou_status_http() and thou_status_code().
 */
enum thou_status {
    THOU_OK = 0,
    THOU_ENOMEM,     /* allocation failed */
    THOU_EINVAL,     /* malformed input */
    THOU_ETOOBIG,    /* input over a configured limit */
    THOU_ENOTFOUND,  /* no such object */
    THOU_EEXIST,     /* object already exists */
    THOU_EFULL,      /* room already has both participants */
    THOU_EGONE,      /* object existed but was ended, erased or expired */
    THOU_EAUTH,      /* missing or wrong bearer token */
    THOU_EFORBIDDEN, /* credentials valid but not for this */
    THOU_ERATE,      /* rate limit exceeded */
    THOU_ECONFLICT,  /* refused by the state of the object */
    THOU_EIO,        /* storage or file-system failure */
    THOU_EUNAVAIL,   /* dependency not available (store down, shutting down) */
    THOU_ESCHEMA,    /* database schema newer than this binary */
    THOU_ELIMIT,     /* a room reached its size limit (events or bytes) */
};

/** Short stable name of a status ("ok", "enomem", ...); never NULL. */
const char *thou_status_name(enum thou_status status);
