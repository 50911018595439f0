#include "thou/app.h"
#include "thou/static_files.h"

void thou_pages_static(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    /* The router guarantees a leading '/'; the static root sees the rest. */
    thou_static_serve(app->statics, req->path + 1, req->if_none_match, req->accept_encoding, res);
}

void thou_pages_room(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    /* Every conversation link serves the same page; the room id and the
     * secret (in the fragment, never sent here) are read by the client. */
    thou_static_serve(app->statics, "room.html", req->if_none_match, req->accept_encoding, res);
}
