#include "thou/flow.h"

#include <assert.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#define BOTH_ROLES (THOU_FLOW_ROLE_A | THOU_FLOW_ROLE_B)

static const char *const type_names[] = {
    [THOU_FLOW_UNKNOWN] = "unknown",
    [THOU_FLOW_ANSWER] = "answer",
    [THOU_FLOW_REFLECT] = "reflect",
    [THOU_FLOW_CONFIRM_HEARD] = "confirm_heard",
    [THOU_FLOW_ADD] = "add",
    [THOU_FLOW_PASS] = "pass",
    [THOU_FLOW_PAUSE] = "pause",
    [THOU_FLOW_RESUME] = "resume",
    [THOU_FLOW_END] = "end",
    [THOU_FLOW_GO_ON] = "go_on",
    [THOU_FLOW_STAY_HERE] = "stay_here",
};

#define N_TYPES (sizeof type_names / sizeof type_names[0])

static const char *const status_names[] = {
    [THOU_FLOW_ACTIVE] = "active", [THOU_FLOW_PAUSED] = "paused", [THOU_FLOW_HELD] = "held",
    [THOU_FLOW_ENDED] = "ended",   [THOU_FLOW_VOTING] = "voting",
};

#define N_STATUSES (sizeof status_names / sizeof status_names[0])

static const char *const phase_names[] = {
    [THOU_FLOW_PHASE_SPEAK] = "speak",
    [THOU_FLOW_PHASE_REFLECT] = "reflect",
    [THOU_FLOW_PHASE_CONFIRM] = "confirm",
    [THOU_FLOW_PHASE_REVEAL_WRITE] = "reveal_write",
    [THOU_FLOW_PHASE_REVEAL_REFLECT] = "reveal_reflect",
    [THOU_FLOW_PHASE_DONE] = "done",
};

#define N_PHASES (sizeof phase_names / sizeof phase_names[0])

static const char *const reason_codes[] = {
    [THOU_FLOW_OK] = "ok",
    [THOU_FLOW_EINVAL] = "invalid",
    [THOU_FLOW_EENDED] = "room_ended",
    [THOU_FLOW_EPAUSED] = "paused",
    [THOU_FLOW_EHELD] = "held",
    [THOU_FLOW_EWRONG_STEP] = "wrong_step",
    [THOU_FLOW_ENOT_YOUR_TURN] = "not_your_turn",
    [THOU_FLOW_EALREADY_PAUSED] = "already_paused",
    [THOU_FLOW_ENOT_PAUSED] = "not_paused",
    [THOU_FLOW_EPAUSED_BY_PARTNER] = "paused_by_partner",
    [THOU_FLOW_EVOTING] = "stage_vote",
    [THOU_FLOW_EALREADY_VOTED] = "already_voted",
    [THOU_FLOW_EPAUSED_BY_FACILITATOR] = "paused_by_facilitator",
};

#define N_REASONS (sizeof reason_codes / sizeof reason_codes[0])

const char *thou_flow_type_name(enum thou_flow_type type)
{
    if ((size_t)type >= N_TYPES)
        return "unknown";
    return type_names[type];
}

enum thou_flow_type thou_flow_type_parse(const char *name)
{
    if (!name)
        return THOU_FLOW_UNKNOWN;
    for (size_t i = 1; i < N_TYPES; i++) {
        if (strcmp(name, type_names[i]) == 0)
            return (enum thou_flow_type)i;
    }
    return THOU_FLOW_UNKNOWN;
}

bool thou_flow_type_has_question(enum thou_flow_type type)
{
    switch (type) {
    case THOU_FLOW_ANSWER:
    case THOU_FLOW_REFLECT:
    case THOU_FLOW_CONFIRM_HEARD:
    case THOU_FLOW_ADD:
    case THOU_FLOW_PASS:
    case THOU_FLOW_GO_ON:
    case THOU_FLOW_STAY_HERE:
        return true;
    case THOU_FLOW_UNKNOWN:
    case THOU_FLOW_PAUSE:
    case THOU_FLOW_RESUME:
    case THOU_FLOW_END:
        break;
    }
    return false;
}

const char *thou_flow_status_name(enum thou_flow_status status)
{
    if ((size_t)status >= N_STATUSES)
        return "unknown";
    return status_names[status];
}

const char *thou_flow_phase_name(enum thou_flow_phase phase)
{
    if ((size_t)phase >= N_PHASES)
        return "unknown";
    return phase_names[phase];
}

const char *thou_flow_reason_code(enum thou_flow_reason reason)
{
    if ((size_t)reason >= N_REASONS)
        return "invalid";
    return reason_codes[reason];
}

static bool role_valid(char role)
{
    return role == 'A' || role == 'B';
}

static unsigned role_bit(char role)
{
    return role == 'A' ? THOU_FLOW_ROLE_A : THOU_FLOW_ROLE_B;
}

static char other_role(char role)
{
    return role == 'A' ? 'B' : 'A';
}

/* ---- plan ---- */

enum thou_status thou_flow_plan_check(const struct thou_flow_plan *plan)
{
    if (!plan || plan->n_stages == 0 || !plan->stages)
        return THOU_EINVAL;
    for (size_t s = 0; s < plan->n_stages; s++) {
        const struct thou_flow_stage *stage = &plan->stages[s];
        if (stage->n_questions == 0 || !stage->questions)
            return THOU_EINVAL;
        for (size_t q = 0; q < stage->n_questions; q++) {
            const char *id = stage->questions[q].id;
            if (!id || id[0] == '\0')
                return THOU_EINVAL;
            /* Quadratic, but plans have tens of questions and are checked once at load;
             * unique ids keep "the event names the current question" unambiguous. */
            for (size_t s2 = 0; s2 <= s; s2++) {
                size_t end = s2 == s ? q : plan->stages[s2].n_questions;
                for (size_t q2 = 0; q2 < end; q2++) {
                    if (strcmp(plan->stages[s2].questions[q2].id, id) == 0)
                        return THOU_EINVAL;
                }
            }
        }
    }
    return THOU_OK;
}

size_t thou_flow_plan_total(const struct thou_flow_plan *plan)
{
    size_t total = 0;
    for (size_t s = 0; s < plan->n_stages; s++)
        total += plan->stages[s].n_questions;
    return total;
}

static size_t ordinal_of(const struct thou_flow_plan *plan, size_t stage, size_t question)
{
    size_t k = question;
    for (size_t s = 0; s < stage; s++)
        k += plan->stages[s].n_questions;
    return k;
}

static const struct thou_flow_question *question_at(const struct thou_flow_plan *plan, size_t stage,
                                                    size_t question)
{
    return &plan->stages[stage].questions[question];
}

static char first_speaker(const struct thou_flow_plan *plan, size_t stage, size_t question)
{
    return ordinal_of(plan, stage, question) % 2 == 0 ? 'A' : 'B';
}

/* ---- state ---- */

static void open_question(const struct thou_flow_plan *plan, struct thou_flow_state *s,
                          size_t stage, size_t question)
{
    s->stage = stage;
    s->question = question;
    s->rounds = 0;
    s->done = 0;
    if (question_at(plan, stage, question)->reveal_together) {
        s->phase = THOU_FLOW_PHASE_REVEAL_WRITE;
        s->speaker = '\0';
    } else {
        s->phase = THOU_FLOW_PHASE_SPEAK;
        s->speaker = first_speaker(plan, stage, question);
    }
}

void thou_flow_state_init(struct thou_flow_state *state, const struct thou_flow_plan *plan)
{
    assert(plan->n_stages > 0 && plan->stages[0].n_questions > 0);
    /* Zeroed padding lets callers memcmp copies of a state they have not changed. */
    memset(state, 0, sizeof *state);
    state->status = THOU_FLOW_ACTIVE;
    state->paused_from = THOU_FLOW_ACTIVE;
    state->finished = false;
    state->stage_cap = THOU_FLOW_NO_CAP;
    open_question(plan, state, 0, 0);
}

bool thou_flow_state_equal(const struct thou_flow_state *a, const struct thou_flow_state *b)
{
    return a->status == b->status && a->paused_from == b->paused_from &&
           a->finished == b->finished && a->stage == b->stage && a->question == b->question &&
           a->phase == b->phase && a->speaker == b->speaker && a->rounds == b->rounds &&
           a->done == b->done && a->stage_cap == b->stage_cap && a->paused_by == b->paused_by &&
           a->votes == b->votes && a->stayed == b->stayed;
}

/* ---- transitions ---- */

static void finish(const struct thou_flow_plan *plan, struct thou_flow_state *s,
                   struct thou_flow_result *result)
{
    /* One canonical "ran through" position, so finished states compare and persist alike. */
    s->status = THOU_FLOW_ENDED;
    s->finished = true;
    s->stage = plan->n_stages - 1;
    s->question = plan->stages[s->stage].n_questions - 1;
    s->phase = THOU_FLOW_PHASE_DONE;
    s->speaker = '\0';
    s->rounds = 0;
    s->done = BOTH_ROLES;
    result->ended = true;
}

static void next_question(const struct thou_flow_plan *plan, struct thou_flow_state *s,
                          struct thou_flow_result *result)
{
    result->advanced_question = true;
    if (s->question + 1 < plan->stages[s->stage].n_questions) {
        open_question(plan, s, s->stage, s->question + 1);
        return;
    }
    if (s->stage + 1 >= plan->n_stages) {
        finish(plan, s, result);
        return;
    }
    /* Deeper only if both want to: the next stage waits at its gate for two votes. */
    open_question(plan, s, s->stage + 1, 0);
    result->entered_stage = true;
    s->status = THOU_FLOW_VOTING;
    s->votes = 0;
}

static enum thou_flow_reason apply_vote(struct thou_flow_state *s, const struct thou_flow_event *ev,
                                        struct thou_flow_result *result)
{
    if (s->votes & role_bit(ev->role))
        return THOU_FLOW_EALREADY_VOTED;
    if (ev->type == THOU_FLOW_STAY_HERE) {
        /* Stopping at the depth reached is a choice, kept as such: not a failure. */
        s->status = THOU_FLOW_ENDED;
        s->finished = false;
        s->stayed = true;
        s->votes = 0;
        result->ended = true;
        return THOU_FLOW_OK;
    }
    s->votes |= role_bit(ev->role);
    if (s->votes != BOTH_ROLES)
        return THOU_FLOW_OK;
    s->votes = 0;
    result->opened_stage = true;
    if (s->stage > s->stage_cap) {
        s->status = THOU_FLOW_HELD;
        result->held = true;
    } else {
        s->status = THOU_FLOW_ACTIVE;
    }
    return THOU_FLOW_OK;
}

static void half_done(const struct thou_flow_plan *plan, struct thou_flow_state *s,
                      struct thou_flow_result *result)
{
    if (s->speaker == first_speaker(plan, s->stage, s->question)) {
        s->done = role_bit(s->speaker);
        s->speaker = other_role(s->speaker);
        s->phase = THOU_FLOW_PHASE_SPEAK;
        s->rounds = 0;
        return;
    }
    next_question(plan, s, result);
}

static enum thou_flow_reason apply_turn(const struct thou_flow_plan *plan, unsigned max_rounds,
                                        struct thou_flow_state *s, const struct thou_flow_event *ev,
                                        struct thou_flow_result *result)
{
    bool listening = plan->stages[s->stage].listening;
    enum thou_flow_type t = ev->type;

    switch (s->phase) {
    case THOU_FLOW_PHASE_SPEAK:
        if (t != THOU_FLOW_ANSWER && t != THOU_FLOW_PASS)
            return THOU_FLOW_EWRONG_STEP;
        if (ev->role != s->speaker)
            return THOU_FLOW_ENOT_YOUR_TURN;
        if (t == THOU_FLOW_ANSWER && listening)
            s->phase = THOU_FLOW_PHASE_REFLECT;
        else
            half_done(plan, s, result);
        return THOU_FLOW_OK;
    case THOU_FLOW_PHASE_REFLECT:
        if (t != THOU_FLOW_REFLECT && t != THOU_FLOW_PASS)
            return THOU_FLOW_EWRONG_STEP;
        if (ev->role == s->speaker)
            return THOU_FLOW_ENOT_YOUR_TURN;
        if (t == THOU_FLOW_REFLECT)
            s->phase = THOU_FLOW_PHASE_CONFIRM;
        else
            half_done(plan, s, result);
        return THOU_FLOW_OK;
    case THOU_FLOW_PHASE_CONFIRM:
        if (t != THOU_FLOW_CONFIRM_HEARD && t != THOU_FLOW_ADD && t != THOU_FLOW_PASS)
            return THOU_FLOW_EWRONG_STEP;
        if (ev->role != s->speaker)
            return THOU_FLOW_ENOT_YOUR_TURN;
        /* Past the round limit the addition is still delivered, but the
         * conversation moves on rather than asking for yet another reflection. */
        if (t == THOU_FLOW_ADD && s->rounds < max_rounds) {
            s->rounds++;
            s->phase = THOU_FLOW_PHASE_REFLECT;
        } else {
            half_done(plan, s, result);
        }
        return THOU_FLOW_OK;
    case THOU_FLOW_PHASE_REVEAL_WRITE:
        if (t != THOU_FLOW_ANSWER && t != THOU_FLOW_PASS)
            return THOU_FLOW_EWRONG_STEP;
        if (s->done & role_bit(ev->role))
            return THOU_FLOW_EWRONG_STEP;
        s->done |= role_bit(ev->role);
        if (s->done == BOTH_ROLES) {
            result->reveal = true;
            s->phase = THOU_FLOW_PHASE_REVEAL_REFLECT;
            s->done = 0;
        } else if (t == THOU_FLOW_ANSWER) {
            result->hold = true;
        }
        return THOU_FLOW_OK;
    case THOU_FLOW_PHASE_REVEAL_REFLECT:
        if (t != THOU_FLOW_REFLECT && t != THOU_FLOW_PASS)
            return THOU_FLOW_EWRONG_STEP;
        if (s->done & role_bit(ev->role))
            return THOU_FLOW_EWRONG_STEP;
        s->done |= role_bit(ev->role);
        if (s->done == BOTH_ROLES)
            next_question(plan, s, result);
        return THOU_FLOW_OK;
    case THOU_FLOW_PHASE_DONE:
        break;
    }
    return THOU_FLOW_EWRONG_STEP;
}

static enum thou_flow_reason apply_control(struct thou_flow_state *s,
                                           const struct thou_flow_event *ev,
                                           struct thou_flow_result *result)
{
    switch (ev->type) {
    case THOU_FLOW_PAUSE:
        if (s->status == THOU_FLOW_PAUSED)
            return THOU_FLOW_EALREADY_PAUSED;
        s->paused_from = s->status;
        s->status = THOU_FLOW_PAUSED;
        s->paused_by = ev->role;
        return THOU_FLOW_OK;
    case THOU_FLOW_RESUME:
        if (s->status != THOU_FLOW_PAUSED)
            return THOU_FLOW_ENOT_PAUSED;
        /* The one who asked for time decides when it is over; the partner
         * waits, or ends. A legacy pause without owner may be resumed by either. */
        if (s->paused_by == THOU_FLOW_FACILITATOR)
            return THOU_FLOW_EPAUSED_BY_FACILITATOR;
        if (s->paused_by && s->paused_by != ev->role)
            return THOU_FLOW_EPAUSED_BY_PARTNER;
        s->status = s->paused_from;
        s->paused_from = THOU_FLOW_ACTIVE;
        s->paused_by = '\0';
        return THOU_FLOW_OK;
    case THOU_FLOW_END:
        s->status = THOU_FLOW_ENDED;
        s->paused_from = THOU_FLOW_ACTIVE;
        s->paused_by = '\0';
        s->votes = 0;
        s->finished = false;
        result->ended = true;
        return THOU_FLOW_OK;
    default:
        break;
    }
    return THOU_FLOW_EWRONG_STEP;
}

static enum thou_flow_reason decide(const struct thou_flow_plan *plan, unsigned max_rounds,
                                    struct thou_flow_state *s, const struct thou_flow_event *ev,
                                    struct thou_flow_result *result)
{
    if (!role_valid(ev->role))
        return THOU_FLOW_EINVAL;
    if (s->status == THOU_FLOW_ENDED)
        return THOU_FLOW_EENDED;
    if ((size_t)ev->type >= N_TYPES || ev->type == THOU_FLOW_UNKNOWN)
        return THOU_FLOW_EWRONG_STEP;
    if (!thou_flow_type_has_question(ev->type))
        return apply_control(s, ev, result);
    if (!ev->question)
        return THOU_FLOW_EINVAL;
    if (s->status == THOU_FLOW_PAUSED)
        return THOU_FLOW_EPAUSED;
    bool vote = ev->type == THOU_FLOW_GO_ON || ev->type == THOU_FLOW_STAY_HERE;
    if (s->status == THOU_FLOW_VOTING) {
        if (!vote)
            return THOU_FLOW_EVOTING;
        /* A vote names the stage's first question, so one meant for another gate misses. */
        if (strcmp(ev->question, question_at(plan, s->stage, s->question)->id) != 0)
            return THOU_FLOW_EWRONG_STEP;
        return apply_vote(s, ev, result);
    }
    if (s->status == THOU_FLOW_HELD)
        return THOU_FLOW_EHELD;
    if (vote)
        return THOU_FLOW_EWRONG_STEP;
    if (strcmp(ev->question, question_at(plan, s->stage, s->question)->id) != 0)
        return THOU_FLOW_EWRONG_STEP;
    return apply_turn(plan, max_rounds, s, ev, result);
}

enum thou_flow_reason thou_flow_apply(const struct thou_flow_plan *plan,
                                      unsigned max_reflect_rounds, struct thou_flow_state *state,
                                      const struct thou_flow_event *event,
                                      struct thou_flow_result *result)
{
    struct thou_flow_result scratch;
    if (!result)
        result = &scratch;
    memset(result, 0, sizeof *result);
    if (!event)
        return THOU_FLOW_EINVAL;
    assert(state->stage < plan->n_stages);
    assert(state->question < plan->stages[state->stage].n_questions);

    /* Work on a copy so that a refusal found half-way cannot leave a trace. */
    struct thou_flow_state next = *state;
    enum thou_flow_reason reason = decide(plan, max_reflect_rounds, &next, event, result);
    if (reason) {
        memset(result, 0, sizeof *result);
        return reason;
    }
    *state = next;
    return THOU_FLOW_OK;
}

enum thou_flow_reason thou_flow_facilitator_pause(struct thou_flow_state *state)
{
    if (state->status == THOU_FLOW_ENDED)
        return THOU_FLOW_EENDED;
    if (state->status == THOU_FLOW_PAUSED)
        return THOU_FLOW_EALREADY_PAUSED;
    state->paused_from = state->status;
    state->status = THOU_FLOW_PAUSED;
    state->paused_by = THOU_FLOW_FACILITATOR;
    return THOU_FLOW_OK;
}

enum thou_flow_reason thou_flow_facilitator_resume(struct thou_flow_state *state)
{
    if (state->status == THOU_FLOW_ENDED)
        return THOU_FLOW_EENDED;
    /* A pause a participant asked for stays theirs to lift. */
    if (state->status != THOU_FLOW_PAUSED || state->paused_by != THOU_FLOW_FACILITATOR)
        return THOU_FLOW_ENOT_PAUSED;
    state->status = state->paused_from;
    state->paused_from = THOU_FLOW_ACTIVE;
    state->paused_by = '\0';
    return THOU_FLOW_OK;
}

enum thou_flow_reason thou_flow_move_on(const struct thou_flow_plan *plan,
                                        struct thou_flow_state *state,
                                        struct thou_flow_result *result)
{
    struct thou_flow_result ignored;
    if (!result)
        result = &ignored;
    memset(result, 0, sizeof(*result));
    switch (state->status) {
    case THOU_FLOW_ENDED:
        return THOU_FLOW_EENDED;
    case THOU_FLOW_PAUSED:
        return THOU_FLOW_EPAUSED;
    case THOU_FLOW_HELD:
        return THOU_FLOW_EHELD; /* the cap is the facilitator's own: release instead */
    case THOU_FLOW_VOTING:
        /* Through the gate as if both had chosen to go on, within the cap. */
        state->votes = 0;
        result->opened_stage = true;
        if (state->stage > state->stage_cap) {
            state->status = THOU_FLOW_HELD;
            result->held = true;
        } else {
            state->status = THOU_FLOW_ACTIVE;
        }
        return THOU_FLOW_OK;
    case THOU_FLOW_ACTIVE:
        break;
    }
    next_question(plan, state, result);
    return THOU_FLOW_OK;
}

bool thou_flow_set_stage_cap(struct thou_flow_state *state, size_t cap)
{
    if (cap > THOU_FLOW_CAP_MAX)
        cap = THOU_FLOW_NO_CAP;
    state->stage_cap = cap;
    if (state->stage > cap)
        return false;
    if (state->status == THOU_FLOW_HELD) {
        state->status = THOU_FLOW_ACTIVE;
        return true;
    }
    if (state->status == THOU_FLOW_PAUSED && state->paused_from == THOU_FLOW_HELD) {
        state->paused_from = THOU_FLOW_ACTIVE;
        return true;
    }
    return false;
}

/* ---- queries ---- */

const char *thou_flow_current_question(const struct thou_flow_plan *plan,
                                       const struct thou_flow_state *state)
{
    if (state->status == THOU_FLOW_ENDED)
        return NULL;
    return question_at(plan, state->stage, state->question)->id;
}

unsigned thou_flow_expect(const struct thou_flow_state *state, char role)
{
    const unsigned answer_or_pass =
        THOU_FLOW_TYPE_BIT(THOU_FLOW_ANSWER) | THOU_FLOW_TYPE_BIT(THOU_FLOW_PASS);
    const unsigned reflect_or_pass =
        THOU_FLOW_TYPE_BIT(THOU_FLOW_REFLECT) | THOU_FLOW_TYPE_BIT(THOU_FLOW_PASS);

    if (!role_valid(role))
        return 0;
    if (state->status == THOU_FLOW_VOTING) {
        if (state->votes & role_bit(role))
            return 0;
        return THOU_FLOW_TYPE_BIT(THOU_FLOW_GO_ON) | THOU_FLOW_TYPE_BIT(THOU_FLOW_STAY_HERE);
    }
    if (state->status != THOU_FLOW_ACTIVE)
        return 0;
    switch (state->phase) {
    case THOU_FLOW_PHASE_SPEAK:
        return role == state->speaker ? answer_or_pass : 0;
    case THOU_FLOW_PHASE_REFLECT:
        return role != state->speaker ? reflect_or_pass : 0;
    case THOU_FLOW_PHASE_CONFIRM:
        if (role != state->speaker)
            return 0;
        return THOU_FLOW_TYPE_BIT(THOU_FLOW_CONFIRM_HEARD) | THOU_FLOW_TYPE_BIT(THOU_FLOW_ADD) |
               THOU_FLOW_TYPE_BIT(THOU_FLOW_PASS);
    case THOU_FLOW_PHASE_REVEAL_WRITE:
        return (state->done & role_bit(role)) ? 0 : answer_or_pass;
    case THOU_FLOW_PHASE_REVEAL_REFLECT:
        return (state->done & role_bit(role)) ? 0 : reflect_or_pass;
    case THOU_FLOW_PHASE_DONE:
        break;
    }
    return 0;
}

void thou_flow_progress(const struct thou_flow_plan *plan, const struct thou_flow_state *state,
                        size_t *index, size_t *total)
{
    size_t all = thou_flow_plan_total(plan);
    if (index)
        *index = state->finished ? all : ordinal_of(plan, state->stage, state->question);
    if (total)
        *total = all;
}

/* ---- JSON ---- */

static json_t *expect_json(const struct thou_flow_state *state, char role)
{
    json_t *array = json_array();
    if (!array)
        return NULL;
    unsigned mask = thou_flow_expect(state, role);
    for (size_t t = 0; t < N_TYPES; t++) {
        if (!(mask & THOU_FLOW_TYPE_BIT(t)))
            continue;
        if (json_array_append_new(array, json_string(type_names[t]))) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

json_t *thou_flow_state_to_json(const struct thou_flow_plan *plan,
                                const struct thou_flow_state *state)
{
    static const char *const role_names[] = {"A", "B"};
    size_t index, total;
    thou_flow_progress(plan, state, &index, &total);

    const char *speaker = NULL;
    if (role_valid(state->speaker))
        speaker = role_names[state->speaker == 'B'];
    const char *paused_from = NULL;
    const char *paused_by = NULL;
    if (state->status == THOU_FLOW_PAUSED) {
        paused_from = thou_flow_status_name(state->paused_from);
        if (role_valid(state->paused_by))
            paused_by = role_names[state->paused_by == 'B'];
        else if (state->paused_by == THOU_FLOW_FACILITATOR)
            paused_by = "F";
    }
    json_t *stage_cap = NULL;
    if (state->stage_cap != THOU_FLOW_NO_CAP) {
        stage_cap = json_integer((json_int_t)state->stage_cap);
        if (!stage_cap)
            return NULL;
    }

    /* json_pack releases the "o" arguments it was given when it fails. */
    return json_pack(
        "{s:s, s:b, s:I, s:s?, s:I, s:s, s:s?, s:I, s:{s:b, s:b}, s:{s:o, s:o},"
        " s:{s:I, s:I}, s:o?, s:s?, s:s?, s:{s:b, s:b}, s:b}",
        "status", thou_flow_status_name(state->status), "finished", (int)state->finished, "stage",
        (json_int_t)state->stage, "question", thou_flow_current_question(plan, state),
        "question_index", (json_int_t)state->question, "phase", thou_flow_phase_name(state->phase),
        "speaker", speaker, "rounds", (json_int_t)state->rounds, "done", "A",
        (int)!!(state->done & THOU_FLOW_ROLE_A), "B", (int)!!(state->done & THOU_FLOW_ROLE_B),
        "expect", "A", expect_json(state, 'A'), "B", expect_json(state, 'B'), "progress", "index",
        (json_int_t)index, "total", (json_int_t)total, "stage_cap", stage_cap, "paused_from",
        paused_from, "paused_by", paused_by, "votes", "A", (int)!!(state->votes & THOU_FLOW_ROLE_A),
        "B", (int)!!(state->votes & THOU_FLOW_ROLE_B), "stayed", (int)state->stayed);
}

static bool lookup(const char *const *names, size_t n, const char *name, size_t *out)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            *out = i;
            return true;
        }
    }
    return false;
}

/* The gate of a stage: its first question, untouched; never stage 0. */
static bool at_stage_gate(const struct thou_flow_plan *plan, const struct thou_flow_state *s)
{
    struct thou_flow_state fresh = *s;
    open_question(plan, &fresh, s->stage, 0);
    return s->stage > 0 && thou_flow_state_equal(&fresh, s);
}

static bool state_valid(const struct thou_flow_plan *plan, const struct thou_flow_state *s)
{
    if (s->stage >= plan->n_stages || s->question >= plan->stages[s->stage].n_questions)
        return false;
    if (s->stage_cap > THOU_FLOW_CAP_MAX && s->stage_cap != THOU_FLOW_NO_CAP)
        return false;
    if (s->done & ~(unsigned)BOTH_ROLES)
        return false;
    if (s->status == THOU_FLOW_PAUSED) {
        if (s->paused_from != THOU_FLOW_ACTIVE && s->paused_from != THOU_FLOW_HELD &&
            s->paused_from != THOU_FLOW_VOTING)
            return false;
        if (s->paused_by != '\0' && !role_valid(s->paused_by) &&
            s->paused_by != THOU_FLOW_FACILITATOR)
            return false;
    } else if (s->paused_from != THOU_FLOW_ACTIVE || s->paused_by != '\0') {
        return false;
    }
    bool voting = s->status == THOU_FLOW_VOTING ||
                  (s->status == THOU_FLOW_PAUSED && s->paused_from == THOU_FLOW_VOTING);
    if ((s->votes & ~(unsigned)BOTH_ROLES) || s->votes == BOTH_ROLES || (s->votes && !voting))
        return false;
    if (s->stayed && (s->status != THOU_FLOW_ENDED || s->finished))
        return false;
    if (s->finished || s->phase == THOU_FLOW_PHASE_DONE) {
        return s->finished && s->phase == THOU_FLOW_PHASE_DONE && s->status == THOU_FLOW_ENDED &&
               s->stage == plan->n_stages - 1 &&
               s->question == plan->stages[s->stage].n_questions - 1 && s->speaker == '\0' &&
               s->rounds == 0 && s->done == BOTH_ROLES;
    }

    const struct thou_flow_question *q = question_at(plan, s->stage, s->question);
    if (q->reveal_together) {
        if (s->phase != THOU_FLOW_PHASE_REVEAL_WRITE && s->phase != THOU_FLOW_PHASE_REVEAL_REFLECT)
            return false;
        if (s->speaker != '\0' || s->rounds != 0 || s->done == BOTH_ROLES)
            return false;
    } else {
        char first = first_speaker(plan, s->stage, s->question);
        bool listening = plan->stages[s->stage].listening;
        if (s->phase == THOU_FLOW_PHASE_SPEAK) {
            if (s->rounds != 0)
                return false;
        } else if (!listening ||
                   (s->phase != THOU_FLOW_PHASE_REFLECT && s->phase != THOU_FLOW_PHASE_CONFIRM)) {
            return false;
        }
        if (!role_valid(s->speaker))
            return false;
        if (s->done != (s->speaker == first ? 0 : role_bit(first)))
            return false;
    }

    bool gated = s->status == THOU_FLOW_HELD ||
                 (s->status == THOU_FLOW_PAUSED && s->paused_from == THOU_FLOW_HELD);
    if (gated && (s->stage <= s->stage_cap || !at_stage_gate(plan, s)))
        return false;
    if ((voting || s->stayed) && !at_stage_gate(plan, s))
        return false;
    return true;
}

static bool json_index(const json_t *value, size_t limit, size_t *out)
{
    if (!json_is_integer(value))
        return false;
    json_int_t v = json_integer_value(value);
    if (v < 0 || (uint64_t)v >= (uint64_t)limit)
        return false;
    *out = (size_t)v;
    return true;
}

enum thou_status thou_flow_state_from_json(const struct thou_flow_plan *plan, const json_t *json,
                                           struct thou_flow_state *state)
{
    static const char *const role_names[] = {"A", "B"};
    const char *status_name, *phase_name;
    int finished, done_a, done_b;
    json_t *stage, *question_index, *speaker, *rounds, *stage_cap, *paused_from;
    json_t *paused_by = NULL, *votes = NULL, *stayed = NULL;
    struct thou_flow_state s;
    size_t i;

    /* json_unpack takes a non-const object but only reads it. */
    json_t *object = (json_t *)(uintptr_t)json;
    json_error_t error;
    if (json_unpack_ex(object, &error, 0,
                       "{s:s, s:b, s:o, s:o, s:s, s:o, s:o, s:{s:b, s:b}, s:o, s:o, s?o, s?o, s?o}",
                       "status", &status_name, "finished", &finished, "stage", &stage,
                       "question_index", &question_index, "phase", &phase_name, "speaker", &speaker,
                       "rounds", &rounds, "done", "A", &done_a, "B", &done_b, "stage_cap",
                       &stage_cap, "paused_from", &paused_from, "paused_by", &paused_by, "votes",
                       &votes, "stayed", &stayed))
        /* Reading its key table can fail for want of memory: that is no bad state. */
        return json_error_code(&error) == json_error_out_of_memory ? THOU_ENOMEM : THOU_EINVAL;

    memset(&s, 0, sizeof s);
    if (!lookup(status_names, N_STATUSES, status_name, &i))
        return THOU_EINVAL;
    s.status = (enum thou_flow_status)i;
    s.finished = finished;
    if (!json_index(stage, plan->n_stages, &s.stage))
        return THOU_EINVAL;
    if (!json_index(question_index, plan->stages[s.stage].n_questions, &s.question))
        return THOU_EINVAL;
    if (!lookup(phase_names, N_PHASES, phase_name, &i))
        return THOU_EINVAL;
    s.phase = (enum thou_flow_phase)i;
    if (json_is_string(speaker) && lookup(role_names, 2, json_string_value(speaker), &i))
        s.speaker = role_names[i][0];
    else if (!json_is_null(speaker))
        return THOU_EINVAL;
    if (!json_index(rounds, (size_t)UINT_MAX + 1, &i))
        return THOU_EINVAL;
    s.rounds = (unsigned)i;
    s.done = (done_a ? THOU_FLOW_ROLE_A : 0) | (done_b ? THOU_FLOW_ROLE_B : 0);
    if (json_is_null(stage_cap))
        s.stage_cap = THOU_FLOW_NO_CAP;
    else if (!json_index(stage_cap, THOU_FLOW_CAP_MAX + 1, &s.stage_cap))
        return THOU_EINVAL;
    s.paused_from = THOU_FLOW_ACTIVE;
    if (json_is_string(paused_from) &&
        lookup(status_names, N_STATUSES, json_string_value(paused_from), &i))
        s.paused_from = (enum thou_flow_status)i;
    else if (!json_is_null(paused_from))
        return THOU_EINVAL;
    if (paused_by && json_is_string(paused_by) &&
        lookup(role_names, 2, json_string_value(paused_by), &i))
        s.paused_by = role_names[i][0];
    else if (paused_by && json_is_string(paused_by) &&
             strcmp(json_string_value(paused_by), "F") == 0)
        s.paused_by = THOU_FLOW_FACILITATOR;
    else if (paused_by && !json_is_null(paused_by))
        return THOU_EINVAL;
    if (votes) {
        int vote_a, vote_b;
        if (json_unpack_ex(votes, &error, 0, "{s:b, s:b}", "A", &vote_a, "B", &vote_b))
            return json_error_code(&error) == json_error_out_of_memory ? THOU_ENOMEM : THOU_EINVAL;
        s.votes = (vote_a ? THOU_FLOW_ROLE_A : 0) | (vote_b ? THOU_FLOW_ROLE_B : 0);
    }
    if (stayed) {
        if (!json_is_boolean(stayed))
            return THOU_EINVAL;
        s.stayed = json_is_true(stayed);
    }

    if (!state_valid(plan, &s))
        return THOU_EINVAL;

    /* Writing the state back and comparing checks the derived fields against this
     * plan (a state stored under another version of the set fails here) and
     * refuses unknown keys, so accepted input round-trips exactly. */
    json_t *again = thou_flow_state_to_json(plan, &s);
    if (!again)
        return THOU_ENOMEM;
    /* Keys added later may be missing from a state stored before them. */
    if (!paused_by)
        json_object_del(again, "paused_by");
    if (!votes)
        json_object_del(again, "votes");
    if (!stayed)
        json_object_del(again, "stayed");
    bool same = json_equal(object, again);
    json_decref(again);
    if (!same)
        return THOU_EINVAL;
    *state = s;
    return THOU_OK;
}
