#include "thou/http1.h"
#include "thou/text.h"

#include <string.h>
#include <strings.h>

/* RFC 9110 §5.6.2 token characters. */
static bool is_tchar(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return true;
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* A field value may hold visible ASCII, obs-text, space and tab. */
static bool is_value_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static char *trim(char *start, char *end)
{
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return start;
}

/* Does a comma-separated header value list token (case-insensitive)? */
static bool list_has(const char *value, const char *token)
{
    size_t n = strlen(token);
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *start = p;
        while (*p && *p != ',')
            p++;
        const char *end = p;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - start) == n && strncasecmp(start, token, n) == 0)
            return true;
    }
    return false;
}

static enum thou_http1_error parse_length(const char *value, struct thou_http1_head *head)
{
    if (!*value)
        return THOU_HTTP1_BAD_REQUEST;
    uint64_t n = 0;
    for (const char *p = value; *p; p++) {
        if (*p < '0' || *p > '9' || n > (UINT64_MAX - 9) / 10)
            return THOU_HTTP1_BAD_REQUEST;
        n = n * 10 + (uint64_t)(*p - '0');
    }
    /* Two lengths that disagree make the message boundary ambiguous. */
    if (head->has_length && head->content_length != n)
        return THOU_HTTP1_BAD_REQUEST;
    head->has_length = true;
    head->content_length = n;
    return THOU_HTTP1_OK;
}

static enum thou_http1_error parse_request_line(char *line, struct thou_http1_head *head)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line)
        return THOU_HTTP1_BAD_REQUEST;
    *sp1 = '\0';
    for (const char *p = line; *p; p++)
        if (!is_tchar((unsigned char)*p))
            return THOU_HTTP1_BAD_REQUEST;
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2 || sp2 == target)
        return THOU_HTTP1_BAD_REQUEST;
    *sp2 = '\0';
    const char *version = sp2 + 1;
    if (strncmp(version, "HTTP/", 5) != 0)
        return THOU_HTTP1_BAD_REQUEST;
    if (strcmp(version + 5, "1.1") == 0)
        head->minor = 1;
    else if (strcmp(version + 5, "1.0") == 0)
        head->minor = 0;
    else
        return THOU_HTTP1_BAD_VERSION;
    /* Only origin-form: thou is no proxy, and "*" suits no route. */
    if (target[0] != '/')
        return THOU_HTTP1_BAD_REQUEST;
    for (const char *p = target; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return THOU_HTTP1_BAD_REQUEST;
    char *query = strchr(target, '?');
    if (query)
        *query = '\0';
    char *fragment = strchr(target, '#');
    if (fragment)
        *fragment = '\0';
    head->method = line;
    head->path = target;
    return THOU_HTTP1_OK;
}

static enum thou_http1_error parse_field(char *line, char *end, struct thou_http1_head *head,
                                         bool *close, bool *keep, unsigned *hosts)
{
    char *colon = memchr(line, ':', (size_t)(end - line));
    if (!colon || colon == line)
        return THOU_HTTP1_BAD_REQUEST; /* also obs-fold: a line starting with a space */
    for (const char *p = line; p < colon; p++)
        if (!is_tchar((unsigned char)*p))
            return THOU_HTTP1_BAD_REQUEST;
    for (const char *p = colon + 1; p < end; p++)
        if (!is_value_char((unsigned char)*p))
            return THOU_HTTP1_BAD_REQUEST;
    *colon = '\0';
    const char *name = line;
    char *value = trim(colon + 1, end);

    if (strcasecmp(name, "Content-Length") == 0)
        return parse_length(value, head);
    if (strcasecmp(name, "Host") == 0)
        ++*hosts;
    if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (strcasecmp(value, "chunked") != 0)
            return THOU_HTTP1_NOT_IMPLEMENTED;
        if (head->chunked)
            return THOU_HTTP1_BAD_REQUEST;
        head->chunked = true;
    } else if (strcasecmp(name, "Connection") == 0) {
        *close = *close || list_has(value, "close");
        *keep = *keep || list_has(value, "keep-alive");
    } else if (strcasecmp(name, "Expect") == 0) {
        if (strcasecmp(value, "100-continue") == 0 && head->minor >= 1)
            head->expect_continue = true;
    } else if (strcasecmp(name, "Content-Type") == 0) {
        head->content_type = value;
    } else if (strcasecmp(name, "Authorization") == 0) {
        head->authorization = value;
    } else if (strcasecmp(name, "Last-Event-ID") == 0) {
        head->last_event_id = value;
    } else if (strcasecmp(name, "If-None-Match") == 0) {
        head->if_none_match = value;
    } else if (strcasecmp(name, "Accept-Encoding") == 0) {
        head->accept_encoding = value;
    }
    return THOU_HTTP1_OK;
}

enum thou_http1_error thou_http1_parse_head(char *buf, size_t len, size_t max,
                                            struct thou_http1_head *head)
{
    memset(head, 0, sizeof(*head));
    size_t scan = len < max ? len : max;
    char *blank = memmem(buf, scan, "\r\n\r\n", 4);
    if (!blank)
        return len >= max ? THOU_HTTP1_TOO_LARGE : THOU_HTTP1_INCOMPLETE;
    head->head_len = (size_t)(blank - buf) + 4;
    if (memchr(buf, '\0', head->head_len))
        return THOU_HTTP1_BAD_REQUEST;

    char *line = buf;
    /* memmem, not strstr: nothing promises a NUL after the caller's bytes. */
    char *eol = memmem(line, head->head_len, "\r\n", 2);
    if (memchr(line, '\n', (size_t)(eol - line)) || memchr(line, '\r', (size_t)(eol - line)))
        return THOU_HTTP1_BAD_REQUEST;
    *eol = '\0';
    enum thou_http1_error rc = parse_request_line(line, head);
    if (rc)
        return rc;
    bool close = false, keep = false;
    unsigned hosts = 0;
    for (line = eol + 2; line < blank + 2; line = eol + 2) {
        eol = memmem(line, (size_t)(blank + 2 - line), "\r\n", 2);
        /* A bare CR or LF inside a line is no line ending we accept. */
        if (memchr(line, '\n', (size_t)(eol - line)) || memchr(line, '\r', (size_t)(eol - line)))
            return THOU_HTTP1_BAD_REQUEST;
        rc = parse_field(line, eol, head, &close, &keep, &hosts);
        if (rc)
            return rc;
    }
    /* Both framings at once is the request-smuggling shape (RFC 9112 §6.3). */
    if (head->chunked && head->has_length)
        return THOU_HTTP1_BAD_REQUEST;
    /* HTTP/1.1 requires exactly one Host (RFC 9112 §3.2); 1.0 predates it. */
    if (head->minor == 1 ? hosts != 1 : hosts > 1)
        return THOU_HTTP1_BAD_REQUEST;
    head->keep_alive = head->minor == 1 ? !close : keep && !close && !head->chunked;
    return THOU_HTTP1_OK;
}

void thou_http1_unescape(char *s)
{
    char *out = s;
    for (const char *in = s; *in; in++) {
        int hi, lo;
        if (in[0] == '%' && (hi = thou_hex_value(in[1])) >= 0 &&
            (lo = thou_hex_value(in[2])) >= 0) {
            unsigned char c = (unsigned char)(hi * 16 + lo);
            /* Left encoded, a control byte can neither cut the path short
             * nor reach a file name; static files refuse any '%' left. */
            if (c >= 0x20 && c != 0x7f) {
                *out++ = (char)c;
                in += 2;
                continue;
            }
        }
        *out++ = *in;
    }
    *out = '\0';
}

enum chunk_state {
    CH_SIZE,    /* hex digits of the chunk size */
    CH_EXT,     /* chunk extension, ignored up to CR */
    CH_SIZE_LF, /* LF after the size line */
    CH_DATA,    /* chunk data */
    CH_DATA_CR, /* CR after the data */
    CH_DATA_LF, /* LF after the data */
    CH_TRAILER, /* start of a trailer line, or the final CRLF */
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_END_LF, /* LF of the final CRLF */
};

void thou_http1_chunked_init(struct thou_http1_chunked *chunked)
{
    memset(chunked, 0, sizeof(*chunked));
    chunked->state = CH_SIZE;
}

int thou_http1_chunked_decode(struct thou_http1_chunked *c, char *buf, size_t len, size_t *used,
                              size_t *data_len)
{
    size_t in = 0, out = 0;
    int result = 0;
    while (in < len && result == 0) {
        unsigned char ch = (unsigned char)buf[in];
        switch (c->state) {
        case CH_SIZE: {
            int digit = thou_hex_value((char)ch);
            if (digit >= 0) {
                if (c->digits++ >= 15)
                    return -1; /* no chunk needs more than 60 bits */
                c->left = c->left * 16 + (uint64_t)digit;
            } else if (c->digits && (ch == ';' || ch == ' ' || ch == '\t')) {
                c->state = CH_EXT;
            } else if (c->digits && ch == '\r') {
                c->state = CH_SIZE_LF;
            } else {
                return -1;
            }
            in++;
            break;
        }
        case CH_EXT:
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (ch == '\n')
                return -1;
            in++;
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return -1;
            in++;
            c->digits = 0;
            c->state = c->left ? CH_DATA : CH_TRAILER;
            break;
        case CH_DATA: {
            size_t n = len - in < c->left ? len - in : (size_t)c->left;
            memmove(buf + out, buf + in, n);
            in += n;
            out += n;
            c->left -= n;
            if (c->left == 0)
                c->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
        case CH_TRAILER_LF:
            if (ch != (c->state == CH_DATA_CR ? '\r' : '\n'))
                return -1;
            c->state = c->state == CH_DATA_CR ? CH_DATA_LF : CH_TRAILER;
            in++;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return -1;
            c->state = CH_SIZE;
            in++;
            break;
        case CH_TRAILER:
            if (ch == '\n')
                return -1;
            c->state = ch == '\r' ? CH_END_LF : CH_TRAILER_LINE;
            in++;
            break;
        case CH_TRAILER_LINE:
            if (ch == '\n')
                return -1;
            if (ch == '\r')
                c->state = CH_TRAILER_LF;
            in++;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return -1;
            in++;
            result = 1;
            break;
        default:
            return -1;
        }
    }
    *used = in;
    *data_len = out;
    return result;
}
