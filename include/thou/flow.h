#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "thou/status.h"

/*
 * The guided flow of one conversation (DESIGN §5), as a pure module: no I/O,
 * no clock, no allocation beyond what a caller asks for. A plan says what the
 * conversation consists of; a state says where a room is; thou_flow_apply()
 * takes a state and one event and returns the next state or a refusal.
 */

/** One question of a plan. `id` is the stable question id events name. */
struct thou_flow_question {
    const char *id;
    bool reveal_together; /* both write privately, then both are revealed at once */
};

/** One stage of rising depth. */
struct thou_flow_stage {
    bool listening; /* the listener reflects back and the speaker confirms */
    size_t n_questions;
    const struct thou_flow_question *questions;
};

/** What a conversation consists of; built by the qset module from a question set. */
struct thou_flow_plan {
    size_t n_stages;
    const struct thou_flow_stage *stages;
};

/*
 * The rules, as product decisions:
 *
 * Roles are 'A' (the creator) and 'B'. The question with global ordinal k
 * (counting from 0 across all stages) is opened by A when k is even and by B
 * when k is odd, so the first speaker alternates through the conversation.
 *
 * A normal question has two halves, one per role as speaker. In a listening
 * stage a half runs SPEAK (speaker: answer or pass) -> REFLECT (listener:
 * reflect or pass) -> CONFIRM (speaker: confirm_heard, add or pass). An add
 * goes back to REFLECT and counts a round; once max_reflect_rounds rounds
 * were used, an add is accepted and closes the half instead, so a half cannot
 * loop forever. Any pass closes the half at once. In a stage that is not
 * listening, the speaker's answer or pass closes the half. After the first
 * half the roles swap; after the second the next question opens.
 *
 * A reveal-together question ignores the stage's listening flag. In
 * REVEAL_WRITE each role sends answer or pass once, in either order; the
 * first answer in is held by the relay (result.hold), and the second arrival
 * releases both (result.reveal) even when one or both were passes. In
 * REVEAL_REFLECT each role sends reflect or pass once; then the next question
 * opens.
 *
 * Going deeper is a choice both make. When a stage's last question is
 * complete, the state moves to the next stage's first question with status
 * VOTING: the position shows what comes next, and only the votes go_on and
 * stay_here are accepted, naming that first question, once per role. The
 * stage opens when both chose go_on; a stay_here from either ends the
 * conversation at the depth reached (ENDED, finished = false, stayed =
 * true), a kind ending rather than a failure. Stage 0 needs no vote.
 *
 * When the opened stage's index is above the state's stage cap, its status
 * becomes HELD instead of ACTIVE: no question event is accepted until
 * thou_flow_set_stage_cap() raises the cap to it. Stage 0 is never held. After the last question of
 * the last stage the status is ENDED with finished = true and phase DONE.
 *
 * Either role may pause (active or held -> paused) or end (-> ended,
 * finished = false) at any time before the end. A pause belongs to the one
 * who asked for it: only that role may resume (back to what it was); the
 * partner is refused with paused_by_partner, and may still end. These carry
 * no question (one given is ignored). Pausing keeps the position; ending
 * keeps the position where the conversation stopped.
 */

/** Stored value of thou_flow_state.stage_cap when no cap applies. */
#define THOU_FLOW_NO_CAP ((size_t)-1)

/** Caps above this are stored as THOU_FLOW_NO_CAP, so every cap fits a JSON integer. */
#define THOU_FLOW_CAP_MAX ((size_t)2147483647)

/** Event types the flow rules decide on. Other room event types are not flow events. */
enum thou_flow_type {
    THOU_FLOW_UNKNOWN = 0, /* not a flow event type: refused with wrong_step */
    THOU_FLOW_ANSWER,
    THOU_FLOW_REFLECT,
    THOU_FLOW_CONFIRM_HEARD,
    THOU_FLOW_ADD,
    THOU_FLOW_PASS,
    THOU_FLOW_PAUSE,
    THOU_FLOW_RESUME,
    THOU_FLOW_END,
    THOU_FLOW_GO_ON,     /* at a stage gate: open the next stage (names its first question) */
    THOU_FLOW_STAY_HERE, /* at a stage gate: end warmly at the depth reached */
};

/** The bit of a type in the masks thou_flow_expect() returns. */
#define THOU_FLOW_TYPE_BIT(type) (1u << (unsigned)(type))

/** Where a conversation stands as a whole. */
enum thou_flow_status {
    THOU_FLOW_ACTIVE = 0,
    THOU_FLOW_PAUSED,
    THOU_FLOW_HELD, /* at the start of a stage above the stage cap */
    THOU_FLOW_ENDED,
    THOU_FLOW_VOTING, /* at the start of a stage, until both chose to go on */
};

/** The step within the current question. */
enum thou_flow_phase {
    THOU_FLOW_PHASE_SPEAK = 0,      /* the speaker answers */
    THOU_FLOW_PHASE_REFLECT,        /* the listener says what they heard */
    THOU_FLOW_PHASE_CONFIRM,        /* the speaker confirms or adds */
    THOU_FLOW_PHASE_REVEAL_WRITE,   /* both write privately */
    THOU_FLOW_PHASE_REVEAL_REFLECT, /* both reflect on where the other differs */
    THOU_FLOW_PHASE_DONE,           /* the conversation ran through its last question */
};

/** Roles in thou_flow_state.done. */
enum thou_flow_role_bit {
    THOU_FLOW_ROLE_A = 1 << 0,
    THOU_FLOW_ROLE_B = 1 << 1,
};

/**
 * Why an event was refused. THOU_FLOW_OK is 0, so `if (reason)` tests for a
 * refusal. thou_flow_reason_code() gives the stable code the HTTP API
 * returns (with 409, except "invalid", which is malformed input).
 */
enum thou_flow_reason {
    THOU_FLOW_OK = 0,
    THOU_FLOW_EINVAL,             /* "invalid": role not A/B, no question where one is needed */
    THOU_FLOW_EENDED,             /* "room_ended": the conversation has ended */
    THOU_FLOW_EPAUSED,            /* "paused": a question event while paused */
    THOU_FLOW_EHELD,              /* "held": a question event while held at the stage cap */
    THOU_FLOW_EWRONG_STEP,        /* "wrong_step": not the current question, or not this phase */
    THOU_FLOW_ENOT_YOUR_TURN,     /* "not_your_turn": right step, other role's move */
    THOU_FLOW_EALREADY_PAUSED,    /* "already_paused" */
    THOU_FLOW_ENOT_PAUSED,        /* "not_paused": resume when not paused */
    THOU_FLOW_EPAUSED_BY_PARTNER, /* "paused_by_partner": resume by the one who did not pause */
    THOU_FLOW_EVOTING,            /* "stage_vote": a question event before both chose go on */
    THOU_FLOW_EALREADY_VOTED,     /* "already_voted": a role's second vote at one gate */
    THOU_FLOW_EPAUSED_BY_FACILITATOR, /* "paused_by_facilitator": resume of a workshop's pause */
};

/** paused_by of a pause the facilitator of a workshop made ("F" in JSON). */
#define THOU_FLOW_FACILITATOR 'F'

/**
 * Where one conversation is. A plain value: copy it, compare it with
 * thou_flow_state_equal(), persist it with thou_flow_state_to_json(). Fields
 * are read-only outside this module; change them only through the functions
 * below, which keep them consistent with the plan.
 */
struct thou_flow_state {
    enum thou_flow_status status;
    enum thou_flow_status paused_from; /* ACTIVE or HELD while paused; ACTIVE otherwise */
    char paused_by;  /* 'A' or 'B' while paused, the role that may resume; '\0' otherwise
                        (and for a pause stored before pauses had an owner: either resumes) */
    bool finished;   /* ended by running through the last question */
    size_t stage;    /* index into plan->stages */
    size_t question; /* index into the stage's questions */
    enum thou_flow_phase phase;
    char speaker;     /* 'A' or 'B' in SPEAK, REFLECT, CONFIRM; '\0' otherwise */
    unsigned rounds;  /* adds used in the current half; 0 outside REFLECT, CONFIRM */
    unsigned done;    /* thou_flow_role_bit: normal question, whose half is over;
                         reveal question, who has acted in the current phase */
    size_t stage_cap; /* highest stage index that may open, or THOU_FLOW_NO_CAP */
    unsigned votes;   /* thou_flow_role_bit: who chose go_on at this gate (VOTING only) */
    bool stayed;      /* ended by a stay_here: the couple chose to stop at this depth */
};

/** One flow event as the relay received it. */
struct thou_flow_event {
    enum thou_flow_type type;
    char role;            /* 'A' or 'B' */
    const char *question; /* question id; required for answer, reflect, confirm_heard, add,
                             pass, go_on, stay_here; ignored for pause, resume, end */
};

/** What an accepted event did, beyond the new state. All false on refusal. */
struct thou_flow_result {
    bool hold;              /* keep this answer from the partner until a later reveal */
    bool reveal;            /* release the held answer (if any) of this question now */
    bool advanced_question; /* the question is complete; the state names what follows */
    bool entered_stage;     /* the state moved to the next stage's gate: status is VOTING */
    bool opened_stage;      /* both chose go_on: the stage is open (ACTIVE or HELD) */
    bool held;              /* ...but it is above the stage cap: status is now HELD */
    bool ended;             /* the conversation ended; state.finished says how */
};

/**
 * Check that a plan can drive a conversation: at least one stage, at least
 * one question per stage, non-empty and unique question ids. Returns THOU_OK
 * or THOU_EINVAL. Every other function here requires a plan that passed.
 */
enum thou_status thou_flow_plan_check(const struct thou_flow_plan *plan);

/** Number of questions in the whole plan. */
size_t thou_flow_plan_total(const struct thou_flow_plan *plan);

/** Start a conversation: active, stage 0, question 0 (opened by A), no stage cap. */
void thou_flow_state_init(struct thou_flow_state *state, const struct thou_flow_plan *plan);

/** True if both states are the same position and status (padding is not compared). */
bool thou_flow_state_equal(const struct thou_flow_state *a, const struct thou_flow_state *b);

/**
 * Apply one event. On success updates *state, fills *result (may be NULL)
 * and returns THOU_FLOW_OK. On refusal leaves *state untouched (byte for
 * byte), clears *result and returns the reason. Checks in this order:
 * role (invalid), ended (room_ended), type known (wrong_step); then for
 * pause/resume/end their own rules; for question events: question present
 * (invalid), paused, held, question is the current one and type fits the
 * phase (wrong_step), role whose move it is (not_your_turn). A reveal
 * question has no turns: a role acting twice in one phase is wrong_step.
 */
enum thou_flow_reason thou_flow_apply(const struct thou_flow_plan *plan,
                                      unsigned max_reflect_rounds, struct thou_flow_state *state,
                                      const struct thou_flow_event *event,
                                      struct thou_flow_result *result);

/**
 * The facilitator of a workshop pauses the conversation (paused_by
 * THOU_FLOW_FACILITATOR; neither participant may resume it, either may
 * still end). Refused with EENDED, or EALREADY_PAUSED when already paused
 * (a participant's own pause stays theirs).
 */
enum thou_flow_reason thou_flow_facilitator_pause(struct thou_flow_state *state);

/** Lift the facilitator's pause; ENOT_PAUSED for any other state, EENDED once ended. */
enum thou_flow_reason thou_flow_facilitator_resume(struct thou_flow_state *state);

/**
 * The facilitator moves a pair on: an active question is skipped (the next
 * one opens, or the next stage's gate, or the end); at a stage gate the
 * stage opens as if both chose go_on (HELD above the cap). Refused with
 * EENDED, EPAUSED, or EHELD (raise the cap instead).
 */
enum thou_flow_reason thou_flow_move_on(const struct thou_flow_plan *plan,
                                        struct thou_flow_state *state,
                                        struct thou_flow_result *result);

/**
 * Set the highest stage index that may open (THOU_FLOW_NO_CAP: none; caps
 * above THOU_FLOW_CAP_MAX count as none). Lowering the cap never moves a
 * conversation back; it gates the next stage boundary. Raising it over a
 * held stage releases it: HELD becomes ACTIVE, or, while paused, the pause
 * resumes into ACTIVE. Returns true if a held stage was released.
 */
bool thou_flow_set_stage_cap(struct thou_flow_state *state, size_t cap);

/** Id of the current question (also while paused or held); NULL once ended. */
const char *thou_flow_current_question(const struct thou_flow_plan *plan,
                                       const struct thou_flow_state *state);

/**
 * Question event types role may send now, as THOU_FLOW_TYPE_BIT()s; 0 when
 * it is not that role's move, and 0 for both unless ACTIVE; while VOTING,
 * go_on and stay_here for a role that has not voted. Pause and end
 * are always accepted before the end, resume only while paused; they are not
 * in the mask. A role with a non-zero mask may always pass.
 */
unsigned thou_flow_expect(const struct thou_flow_state *state, char role);

/**
 * Position in the whole conversation: *index is the global ordinal of the
 * current question (the number of questions before it), or *total once
 * finished; *total is thou_flow_plan_total().
 */
void thou_flow_progress(const struct thou_flow_plan *plan, const struct thou_flow_state *state,
                        size_t *index, size_t *total);

/**
 * The state as the API's room state and the store's persisted form:
 * {"status":"active","finished":false,"stage":1,"question":"q-id",
 *  "question_index":0,"phase":"confirm","speaker":"A","rounds":1,
 *  "done":{"A":false,"B":false},"expect":{"A":["confirm_heard","add","pass"],"B":[]},
 *  "progress":{"index":5,"total":24},"stage_cap":null,"paused_from":null,
 *  "paused_by":null,"votes":{"A":false,"B":false},"stayed":false}
 * "question" is null once ended, "speaker" null outside speak/reflect/confirm,
 * "stage_cap" null without a cap, "paused_from" ("active" or "held") and
 * "paused_by" ("A" or "B") null unless paused. "votes" says who chose go_on
 * at the current gate; "stayed" that a stay_here ended the conversation. Returns a new reference,
 * or NULL if out of memory.
 */
json_t *thou_flow_state_to_json(const struct thou_flow_plan *plan,
                                const struct thou_flow_state *state);

/**
 * Read a state written by thou_flow_state_to_json() for the same plan.
 * Validates everything: types, indices in range, the phase, speaker, done
 * and rounds consistent with the question's kind and the status, and the
 * derived fields ("question", "expect", "progress") equal to what this plan
 * gives, so a state persisted under another plan is refused; unknown keys
 * are refused. A state without "paused_by", "votes" or "stayed" (stored
 * before they existed) reads as a pause without owner, no votes, not stayed. Returns THOU_OK,
 * THOU_EINVAL (*state untouched) or THOU_ENOMEM.
 */
enum thou_status thou_flow_state_from_json(const struct thou_flow_plan *plan, const json_t *json,
                                           struct thou_flow_state *state);

/** "answer", "reflect", ... for a type; "unknown" for THOU_FLOW_UNKNOWN. Never NULL. */
const char *thou_flow_type_name(enum thou_flow_type type);

/** The flow type named name; THOU_FLOW_UNKNOWN for NULL or any other room event type. */
enum thou_flow_type thou_flow_type_parse(const char *name);

/** True for the types that name a question (all but pause, resume, end). */
bool thou_flow_type_has_question(enum thou_flow_type type);

/** "active", "paused", "held", "ended", "voting". Never NULL. */
const char *thou_flow_status_name(enum thou_flow_status status);

/** "speak", "reflect", "confirm", "reveal_write", "reveal_reflect", "done". Never NULL. */
const char *thou_flow_phase_name(enum thou_flow_phase phase);

/** The API's stable code for a reason: "ok", "invalid", "room_ended", ... Never NULL. */
const char *thou_flow_reason_code(enum thou_flow_reason reason);
