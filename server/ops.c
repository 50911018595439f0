#include "thou/app.h"
#include "thou/buf.h"
#include "thou/json.h"
#include "thou/store.h"

void thou_ops_healthz(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    if (thou_store_ping(app->store)) {
        thou_response_error(res, 503, "store_unavailable", "the database does not answer");
        return;
    }
    thou_json_respond(res, 200, json_pack("{s:s}", "status", "ok"));
}

void thou_ops_metrics(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    struct thou_buf text;
    thou_buf_init_failable(&text);
    thou_metrics_render(app->metrics, &text);
    size_t len;
    char *body = thou_buf_steal(&text, &len);
    if (!body) {
        thou_response_status(res, THOU_ENOMEM);
        return;
    }
    thou_response_set_body(res, 200, "text/plain; version=0.0.4; charset=utf-8", body, len);
}
