#include "thou/status.h"

const char *thou_status_name(enum thou_status status)
{
    switch (status) {
    case THOU_OK:
        return "ok";
    case THOU_ENOMEM:
        return "out of memory";
    case THOU_EINVAL:
        return "invalid input";
    case THOU_ETOOBIG:
        return "too large";
    case THOU_ENOTFOUND:
        return "not found";
    case THOU_EEXIST:
        return "already exists";
    case THOU_EFULL:
        return "full";
    case THOU_EGONE:
        return "gone";
    case THOU_EAUTH:
        return "not authenticated";
    case THOU_EFORBIDDEN:
        return "forbidden";
    case THOU_ERATE:
        return "rate limited";
    case THOU_ELIMIT:
        return "size limit reached";
    case THOU_ECONFLICT:
        return "conflict";
    case THOU_EIO:
        return "i/o error";
    case THOU_EUNAVAIL:
        return "unavailable";
    case THOU_ESCHEMA:
        return "schema too new";
    }
    return "unknown status";
}
