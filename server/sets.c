#include "thou/app.h"
#include "thou/json.h"
#include "thou/qset.h"
#include "thou/sets.h"

void thou_sets_list(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    thou_json_respond(res, 200,
                      json_pack("{s:o}", "sets", thou_qset_registry_summary_json(app->qsets)));
}

void thou_sets_get(void *ctx, struct thou_request *req, struct thou_response *res)
{
    struct thou_app *app = ctx;
    const struct thou_qset *set = thou_qset_registry_find(app->qsets, req->params[0]);
    if (!set) {
        thou_response_error(res, 404, "no_such_set", "there is no question set with this id");
        return;
    }
    thou_json_respond(res, 200, thou_qset_to_json(set));
}
