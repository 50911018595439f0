#include "thou/flow.h"

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * The test plan: ordinals 0..5 open with A, B, A, (reveal), (reveal), B.
 *   stage 0, listening:      a0 (A first), a1 (B first)
 *   stage 1, not listening:  b0 (A first), b1 reveal-together
 *   stage 2, listening:      c0 reveal-together, c1 (B first)
 */
static const struct thou_flow_question stage0_questions[] = {{"a0", false}, {"a1", false}};
static const struct thou_flow_question stage1_questions[] = {{"b0", false}, {"b1", true}};
static const struct thou_flow_question stage2_questions[] = {{"c0", true}, {"c1", false}};
static const struct thou_flow_stage test_stages[] = {
    {true, 2, stage0_questions},
    {false, 2, stage1_questions},
    {true, 2, stage2_questions},
};
static const struct thou_flow_plan plan = {3, test_stages};
static const char *const all_ids[] = {"a0", "a1", "b0", "b1", "c0", "c1"};

#define MAX_ROUNDS 2

#define SPEAK          THOU_FLOW_PHASE_SPEAK
#define REFLECT        THOU_FLOW_PHASE_REFLECT
#define CONFIRM        THOU_FLOW_PHASE_CONFIRM
#define REVEAL_WRITE   THOU_FLOW_PHASE_REVEAL_WRITE
#define REVEAL_REFLECT THOU_FLOW_PHASE_REVEAL_REFLECT
#define DONE           THOU_FLOW_PHASE_DONE
#define DA             THOU_FLOW_ROLE_A
#define DB             THOU_FLOW_ROLE_B

enum effect {
    E_HOLD = 1 << 0,
    E_REVEAL = 1 << 1,
    E_NEXT = 1 << 2,
    E_STAGE = 1 << 3,
    E_HELD = 1 << 4,
    E_ENDED = 1 << 5,
    E_OPEN = 1 << 6,
};

static unsigned effects_of(const struct thou_flow_result *r)
{
    return (r->hold ? E_HOLD : 0) | (r->reveal ? E_REVEAL : 0) |
           (r->advanced_question ? E_NEXT : 0) | (r->entered_stage ? E_STAGE : 0) |
           (r->held ? E_HELD : 0) | (r->ended ? E_ENDED : 0) | (r->opened_stage ? E_OPEN : 0);
}

static enum thou_flow_reason send(struct thou_flow_state *s, char role, const char *type,
                                  const char *question, struct thou_flow_result *result)
{
    struct thou_flow_event ev = {thou_flow_type_parse(type), role, question};
    return thou_flow_apply(&plan, MAX_ROUNDS, s, &ev, result);
}

/*
 * A setup script: space-separated steps, each "R:type:question", "R:type"
 * (no question) or "cap=N". Every step must be accepted.
 */
static void run_script(struct thou_flow_state *s, const char *script)
{
    const char *p = script;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, " ");
        if (len == 0)
            break;
        char step[64];
        ck_assert_uint_lt(len, sizeof step);
        memcpy(step, p, len);
        step[len] = '\0';
        p += len;

        if (strncmp(step, "cap=", 4) == 0) {
            char *end;
            unsigned long cap = strtoul(step + 4, &end, 10);
            ck_assert_msg(*end == '\0', "bad cap step '%s'", step);
            thou_flow_set_stage_cap(s, cap);
            continue;
        }
        ck_assert_msg(step[1] == ':', "bad step '%s'", step);
        char *type = step + 2;
        char *question = strchr(type, ':');
        if (question)
            *question++ = '\0';
        enum thou_flow_reason reason = send(s, step[0], type, question, NULL);
        ck_assert_msg(reason == THOU_FLOW_OK, "setup step %c:%s:%s refused: %s", step[0], type,
                      question ? question : "-", thou_flow_reason_code(reason));
    }
}

static struct thou_flow_state state_after(const char *script)
{
    struct thou_flow_state s;
    thou_flow_state_init(&s, &plan);
    run_script(&s, script);
    return s;
}

/* ---- the transition table ---- */

struct position {
    enum thou_flow_status status;
    bool finished;
    size_t stage, question;
    enum thou_flow_phase phase;
    char speaker;
    unsigned rounds, done;
};

#define AT(st, stage, q, phase, speaker, rounds, done)                                             \
    {                                                                                              \
        THOU_FLOW_##st, false, stage, q, phase, speaker, rounds, done                              \
    }
#define FINISHED                                                                                   \
    {                                                                                              \
        THOU_FLOW_ENDED, true, 2, 1, DONE, 0, 0, DA | DB                                           \
    }

struct row {
    const char *setup;
    char role;
    const char *type;
    const char *question;
    enum thou_flow_reason reason;
    struct position after;
    unsigned effects;
};

#define S_A0_REFLECT "A:answer:a0"
#define S_A0_CONFIRM S_A0_REFLECT " B:reflect:a0"
#define S_A0_ROUND1  S_A0_CONFIRM " A:add:a0 B:reflect:a0"
#define S_A0_ROUND2  S_A0_ROUND1 " A:add:a0 B:reflect:a0"
#define S_A0_SECOND  "A:pass:a0"
#define S_A1         "A:pass:a0 B:pass:a0"
#define S_GATE1      S_A1 " B:pass:a1 A:pass:a1"
#define S_B0         S_GATE1 " A:go_on:b0 B:go_on:b0"
#define S_B1         S_B0 " A:answer:b0 B:answer:b0"
#define S_B1_REFLECT S_B1 " A:answer:b1 B:answer:b1"
#define S_GATE2      S_B1_REFLECT " A:reflect:b1 B:reflect:b1"
#define S_C0         S_GATE2 " B:go_on:c0 A:go_on:c0"
#define S_C1         S_C0 " A:pass:c0 B:pass:c0 A:pass:c0 B:pass:c0"
#define S_HELD       "cap=0 " S_B0
#define S_ENDED      "B:end"

#define OK     THOU_FLOW_OK
#define EINVAL THOU_FLOW_EINVAL
#define ENDED  THOU_FLOW_EENDED
#define PAUSED THOU_FLOW_EPAUSED
#define HELD   THOU_FLOW_EHELD
#define WRONG  THOU_FLOW_EWRONG_STEP
#define TURN   THOU_FLOW_ENOT_YOUR_TURN

static const struct row rows[] = {
    /* a0, listening, A speaks first: phase speak */
    {"", 'A', "answer", "a0", OK, AT(ACTIVE, 0, 0, REFLECT, 'A', 0, 0), 0},
    {"", 'A', "pass", "a0", OK, AT(ACTIVE, 0, 0, SPEAK, 'B', 0, DA), 0},
    {"", 'B', "answer", "a0", TURN, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'B', "pass", "a0", TURN, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "reflect", "a0", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'B', "reflect", "a0", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "confirm_heard", "a0", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "add", "a0", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "answer", "a1", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "answer", "nope", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "answer", "", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "note", "a0", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "key", NULL, WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "answer", NULL, EINVAL, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'C', "answer", "a0", EINVAL, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'a', "pause", NULL, EINVAL, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", '\0', "answer", "a0", EINVAL, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    /* a0, phase reflect: B is the listener */
    {S_A0_REFLECT, 'B', "reflect", "a0", OK, AT(ACTIVE, 0, 0, CONFIRM, 'A', 0, 0), 0},
    {S_A0_REFLECT, 'B', "pass", "a0", OK, AT(ACTIVE, 0, 0, SPEAK, 'B', 0, DA), 0},
    {S_A0_REFLECT, 'A', "reflect", "a0", TURN, AT(ACTIVE, 0, 0, REFLECT, 'A', 0, 0), 0},
    {S_A0_REFLECT, 'A', "pass", "a0", TURN, AT(ACTIVE, 0, 0, REFLECT, 'A', 0, 0), 0},
    {S_A0_REFLECT, 'A', "answer", "a0", WRONG, AT(ACTIVE, 0, 0, REFLECT, 'A', 0, 0), 0},
    {S_A0_REFLECT, 'B', "answer", "a0", WRONG, AT(ACTIVE, 0, 0, REFLECT, 'A', 0, 0), 0},
    {S_A0_REFLECT, 'B', "confirm_heard", "a0", WRONG, AT(ACTIVE, 0, 0, REFLECT, 'A', 0, 0), 0},
    {S_A0_REFLECT, 'A', "add", "a0", WRONG, AT(ACTIVE, 0, 0, REFLECT, 'A', 0, 0), 0},
    {S_A0_REFLECT, 'B', "reflect", "a1", WRONG, AT(ACTIVE, 0, 0, REFLECT, 'A', 0, 0), 0},
    /* a0, phase confirm: A confirms, adds or passes */
    {S_A0_CONFIRM, 'A', "confirm_heard", "a0", OK, AT(ACTIVE, 0, 0, SPEAK, 'B', 0, DA), 0},
    {S_A0_CONFIRM, 'A', "add", "a0", OK, AT(ACTIVE, 0, 0, REFLECT, 'A', 1, 0), 0},
    {S_A0_CONFIRM, 'A', "pass", "a0", OK, AT(ACTIVE, 0, 0, SPEAK, 'B', 0, DA), 0},
    {S_A0_CONFIRM, 'B', "confirm_heard", "a0", TURN, AT(ACTIVE, 0, 0, CONFIRM, 'A', 0, 0), 0},
    {S_A0_CONFIRM, 'B', "add", "a0", TURN, AT(ACTIVE, 0, 0, CONFIRM, 'A', 0, 0), 0},
    {S_A0_CONFIRM, 'B', "pass", "a0", TURN, AT(ACTIVE, 0, 0, CONFIRM, 'A', 0, 0), 0},
    {S_A0_CONFIRM, 'B', "reflect", "a0", WRONG, AT(ACTIVE, 0, 0, CONFIRM, 'A', 0, 0), 0},
    {S_A0_CONFIRM, 'A', "answer", "a0", WRONG, AT(ACTIVE, 0, 0, CONFIRM, 'A', 0, 0), 0},
    {S_A0_ROUND1, 'A', "add", "a0", OK, AT(ACTIVE, 0, 0, REFLECT, 'A', 2, 0), 0},
    {S_A0_ROUND1, 'A', "confirm_heard", "a0", OK, AT(ACTIVE, 0, 0, SPEAK, 'B', 0, DA), 0},
    /* at max_reflect_rounds an add is accepted and closes the half */
    {S_A0_ROUND2, 'A', "add", "a0", OK, AT(ACTIVE, 0, 0, SPEAK, 'B', 0, DA), 0},
    {S_A0_ROUND2 " A:add:a0", 'B', "reflect", "a0", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'B', 0, DA), 0},
    /* a0, second half: B speaks, A listens */
    {S_A0_SECOND, 'B', "answer", "a0", OK, AT(ACTIVE, 0, 0, REFLECT, 'B', 0, DA), 0},
    {S_A0_SECOND, 'A', "answer", "a0", TURN, AT(ACTIVE, 0, 0, SPEAK, 'B', 0, DA), 0},
    {S_A0_SECOND, 'A', "pass", "a0", TURN, AT(ACTIVE, 0, 0, SPEAK, 'B', 0, DA), 0},
    {S_A0_SECOND, 'B', "pass", "a0", OK, AT(ACTIVE, 0, 1, SPEAK, 'B', 0, 0), E_NEXT},
    {S_A0_SECOND " B:answer:a0", 'A', "reflect", "a0", OK, AT(ACTIVE, 0, 0, CONFIRM, 'B', 0, DA),
     0},
    {S_A0_SECOND " B:answer:a0", 'B', "reflect", "a0", TURN, AT(ACTIVE, 0, 0, REFLECT, 'B', 0, DA),
     0},
    {S_A0_SECOND " B:answer:a0 A:reflect:a0", 'B', "confirm_heard", "a0", OK,
     AT(ACTIVE, 0, 1, SPEAK, 'B', 0, 0), E_NEXT},
    {S_A0_SECOND " B:answer:a0 A:reflect:a0", 'B', "add", "a0", OK,
     AT(ACTIVE, 0, 0, REFLECT, 'B', 1, DA), 0},
    /* a1 has ordinal 1: B opens */
    {S_A1, 'B', "answer", "a1", OK, AT(ACTIVE, 0, 1, REFLECT, 'B', 0, 0), 0},
    {S_A1, 'A', "answer", "a1", TURN, AT(ACTIVE, 0, 1, SPEAK, 'B', 0, 0), 0},
    {S_A1, 'B', "answer", "a0", WRONG, AT(ACTIVE, 0, 1, SPEAK, 'B', 0, 0), 0},
    {S_A1, 'B', "pass", "a1", OK, AT(ACTIVE, 0, 1, SPEAK, 'A', 0, DB), 0},
    {S_A1 " B:pass:a1", 'A', "pass", "a1", OK, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0),
     E_NEXT | E_STAGE},
    /* b0, stage not listening: an answer closes the half */
    {S_B0, 'A', "answer", "b0", OK, AT(ACTIVE, 1, 0, SPEAK, 'B', 0, DA), 0},
    {S_B0, 'A', "pass", "b0", OK, AT(ACTIVE, 1, 0, SPEAK, 'B', 0, DA), 0},
    {S_B0, 'B', "answer", "b0", TURN, AT(ACTIVE, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_B0, 'A', "reflect", "b0", WRONG, AT(ACTIVE, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_B0, 'B', "reflect", "b0", WRONG, AT(ACTIVE, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_B0 " A:answer:b0", 'B', "answer", "b0", OK, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, 0), E_NEXT},
    {S_B0 " A:answer:b0", 'A', "answer", "b0", TURN, AT(ACTIVE, 1, 0, SPEAK, 'B', 0, DA), 0},
    /* b1, reveal-together in a non-listening stage: write phase */
    {S_B1, 'A', "answer", "b1", OK, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, DA), E_HOLD},
    {S_B1, 'B', "answer", "b1", OK, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, DB), E_HOLD},
    {S_B1, 'A', "pass", "b1", OK, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, DA), 0},
    {S_B1, 'A', "reflect", "b1", WRONG, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, 0), 0},
    {S_B1, 'B', "confirm_heard", "b1", WRONG, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, 0), 0},
    {S_B1, 'A', "add", "b1", WRONG, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, 0), 0},
    {S_B1, 'A', "answer", "b0", WRONG, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, 0), 0},
    {S_B1 " A:answer:b1", 'B', "answer", "b1", OK, AT(ACTIVE, 1, 1, REVEAL_REFLECT, 0, 0, 0),
     E_REVEAL},
    {S_B1 " A:answer:b1", 'B', "pass", "b1", OK, AT(ACTIVE, 1, 1, REVEAL_REFLECT, 0, 0, 0),
     E_REVEAL},
    {S_B1 " A:pass:b1", 'B', "pass", "b1", OK, AT(ACTIVE, 1, 1, REVEAL_REFLECT, 0, 0, 0), E_REVEAL},
    {S_B1 " A:pass:b1", 'B', "answer", "b1", OK, AT(ACTIVE, 1, 1, REVEAL_REFLECT, 0, 0, 0),
     E_REVEAL},
    {S_B1 " A:answer:b1", 'A', "answer", "b1", WRONG, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, DA), 0},
    {S_B1 " A:answer:b1", 'A', "pass", "b1", WRONG, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, DA), 0},
    {S_B1 " B:pass:b1", 'B', "pass", "b1", WRONG, AT(ACTIVE, 1, 1, REVEAL_WRITE, 0, 0, DB), 0},
    /* b1, reflect phase */
    {S_B1_REFLECT, 'A', "reflect", "b1", OK, AT(ACTIVE, 1, 1, REVEAL_REFLECT, 0, 0, DA), 0},
    {S_B1_REFLECT, 'B', "pass", "b1", OK, AT(ACTIVE, 1, 1, REVEAL_REFLECT, 0, 0, DB), 0},
    {S_B1_REFLECT, 'A', "answer", "b1", WRONG, AT(ACTIVE, 1, 1, REVEAL_REFLECT, 0, 0, 0), 0},
    {S_B1_REFLECT, 'A', "confirm_heard", "b1", WRONG, AT(ACTIVE, 1, 1, REVEAL_REFLECT, 0, 0, 0), 0},
    {S_B1_REFLECT " A:reflect:b1", 'A', "reflect", "b1", WRONG,
     AT(ACTIVE, 1, 1, REVEAL_REFLECT, 0, 0, DA), 0},
    {S_B1_REFLECT " A:reflect:b1", 'B', "reflect", "b1", OK,
     AT(VOTING, 2, 0, REVEAL_WRITE, 0, 0, 0), E_NEXT | E_STAGE},
    {S_B1_REFLECT " A:pass:b1", 'B', "pass", "b1", OK, AT(VOTING, 2, 0, REVEAL_WRITE, 0, 0, 0),
     E_NEXT | E_STAGE},
    /* c0, reveal-together in a listening stage: no speaker, no confirm */
    {S_C0, 'B', "answer", "c0", OK, AT(ACTIVE, 2, 0, REVEAL_WRITE, 0, 0, DB), E_HOLD},
    {S_C0 " B:answer:c0 A:answer:c0 B:reflect:c0", 'A', "reflect", "c0", OK,
     AT(ACTIVE, 2, 1, SPEAK, 'B', 0, 0), E_NEXT},
    {S_C0 " B:answer:c0 A:answer:c0 B:reflect:c0", 'B', "confirm_heard", "c0", WRONG,
     AT(ACTIVE, 2, 0, REVEAL_REFLECT, 0, 0, DB), 0},
    /* c1, the last question: B opens, A closes */
    {S_C1, 'B', "answer", "c1", OK, AT(ACTIVE, 2, 1, REFLECT, 'B', 0, 0), 0},
    {S_C1 " B:pass:c1", 'A', "pass", "c1", OK, FINISHED, E_NEXT | E_ENDED},
    {S_C1 " B:pass:c1 A:answer:c1 B:reflect:c1", 'A', "confirm_heard", "c1", OK, FINISHED,
     E_NEXT | E_ENDED},
    {S_C1 " B:pass:c1 A:pass:c1", 'A', "answer", "c1", ENDED, FINISHED, 0},
    {S_C1 " B:pass:c1 A:pass:c1", 'B', "end", NULL, ENDED, FINISHED, 0},
    /* pause, resume, end */
    {"", 'A', "pause", NULL, OK, AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'B', "pause", "a0", OK, AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"A:pause", 'B', "pause", NULL, THOU_FLOW_EALREADY_PAUSED, AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0),
     0},
    {"A:pause", 'A', "resume", NULL, OK, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    /* the pause belongs to the one who asked for it */
    {"A:pause", 'B', "resume", NULL, THOU_FLOW_EPAUSED_BY_PARTNER,
     AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"B:pause", 'A', "resume", NULL, THOU_FLOW_EPAUSED_BY_PARTNER,
     AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"B:pause", 'A', "end", NULL, OK, AT(ENDED, 0, 0, SPEAK, 'A', 0, 0), E_ENDED},
    {"B:pause B:resume", 'A', "pause", NULL, OK, AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "resume", NULL, THOU_FLOW_ENOT_PAUSED, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"A:pause", 'A', "answer", "a0", PAUSED, AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"A:pause", 'B', "reflect", "a0", PAUSED, AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"A:pause", 'A', "answer", "nope", PAUSED, AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"A:pause", 'A', "answer", NULL, EINVAL, AT(PAUSED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {S_A0_CONFIRM " A:pause", 'A', "resume", NULL, OK, AT(ACTIVE, 0, 0, CONFIRM, 'A', 0, 0), 0},
    {S_A0_CONFIRM, 'B', "end", NULL, OK, AT(ENDED, 0, 0, CONFIRM, 'A', 0, 0), E_ENDED},
    {"A:pause", 'B', "end", NULL, OK, AT(ENDED, 0, 0, SPEAK, 'A', 0, 0), E_ENDED},
    {S_ENDED, 'A', "answer", "a0", ENDED, AT(ENDED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {S_ENDED, 'A', "answer", NULL, ENDED, AT(ENDED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {S_ENDED, 'B', "pause", NULL, ENDED, AT(ENDED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {S_ENDED, 'B', "resume", NULL, ENDED, AT(ENDED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {S_ENDED, 'A', "end", NULL, ENDED, AT(ENDED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {S_ENDED, 'A', "note", NULL, ENDED, AT(ENDED, 0, 0, SPEAK, 'A', 0, 0), 0},
    {S_ENDED, 'C', "answer", "a0", EINVAL, AT(ENDED, 0, 0, SPEAK, 'A', 0, 0), 0},
    /* the stage cap: held at the start of the next stage */
    {"cap=0 " S_A1 " B:pass:a1", 'A', "pass", "a1", OK, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0),
     E_NEXT | E_STAGE},
    {S_HELD, 'A', "answer", "b0", HELD, AT(HELD, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_HELD, 'A', "answer", "a1", HELD, AT(HELD, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_HELD, 'B', "reflect", "zz", HELD, AT(HELD, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_HELD, 'B', "pause", NULL, OK, AT(PAUSED, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_HELD " B:pause", 'B', "resume", NULL, OK, AT(HELD, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_HELD " B:pause", 'A', "resume", NULL, THOU_FLOW_EPAUSED_BY_PARTNER,
     AT(PAUSED, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_HELD " B:pause", 'A', "answer", "b0", PAUSED, AT(PAUSED, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_HELD, 'A', "resume", NULL, THOU_FLOW_ENOT_PAUSED, AT(HELD, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_HELD, 'A', "end", NULL, OK, AT(ENDED, 1, 0, SPEAK, 'A', 0, 0), E_ENDED},
    {S_HELD " cap=1", 'A', "answer", "b0", OK, AT(ACTIVE, 1, 0, SPEAK, 'B', 0, DA), 0},
    {S_HELD " B:pause cap=1 B:resume", 'A', "answer", "b0", OK, AT(ACTIVE, 1, 0, SPEAK, 'B', 0, DA),
     0},
    {"cap=1 " S_B1_REFLECT " A:reflect:b1", 'B', "reflect", "b1", OK,
     AT(VOTING, 2, 0, REVEAL_WRITE, 0, 0, 0), E_NEXT | E_STAGE},
    /* stage votes: both choose to go on before a stage opens */
    {S_GATE1, 'A', "answer", "b0", THOU_FLOW_EVOTING, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1, 'B', "pass", "b0", THOU_FLOW_EVOTING, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1, 'A', "go_on", "b0", OK, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1, 'B', "go_on", "a1", WRONG, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1, 'B', "go_on", "c0", WRONG, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1, 'B', "go_on", NULL, EINVAL, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1, 'C', "go_on", "b0", EINVAL, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1 " A:go_on:b0", 'A', "go_on", "b0", THOU_FLOW_EALREADY_VOTED,
     AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1 " A:go_on:b0", 'A', "stay_here", "b0", THOU_FLOW_EALREADY_VOTED,
     AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1 " A:go_on:b0", 'B', "go_on", "b0", OK, AT(ACTIVE, 1, 0, SPEAK, 'A', 0, 0), E_OPEN},
    {S_GATE1 " A:go_on:b0", 'B', "stay_here", "b0", OK, AT(ENDED, 1, 0, SPEAK, 'A', 0, 0), E_ENDED},
    {S_GATE1, 'B', "stay_here", "b0", OK, AT(ENDED, 1, 0, SPEAK, 'A', 0, 0), E_ENDED},
    {S_GATE1 " B:stay_here:b0", 'A', "go_on", "b0", ENDED, AT(ENDED, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1, 'A', "end", NULL, OK, AT(ENDED, 1, 0, SPEAK, 'A', 0, 0), E_ENDED},
    {S_GATE1 " A:pause", 'B', "go_on", "b0", PAUSED, AT(PAUSED, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE1 " B:go_on:b0 A:pause", 'A', "resume", NULL, OK, AT(VOTING, 1, 0, SPEAK, 'A', 0, 0), 0},
    {"cap=0 " S_GATE1 " A:go_on:b0", 'B', "go_on", "b0", OK, AT(HELD, 1, 0, SPEAK, 'A', 0, 0),
     E_OPEN | E_HELD},
    {"", 'A', "go_on", "a0", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {"", 'A', "stay_here", "a0", WRONG, AT(ACTIVE, 0, 0, SPEAK, 'A', 0, 0), 0},
    {S_B0, 'B', "go_on", "b0", WRONG, AT(ACTIVE, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_HELD, 'B', "go_on", "b0", HELD, AT(HELD, 1, 0, SPEAK, 'A', 0, 0), 0},
    {S_GATE2 " A:go_on:c0", 'B', "go_on", "c0", OK, AT(ACTIVE, 2, 0, REVEAL_WRITE, 0, 0, 0),
     E_OPEN},
    /* a lowered cap never moves back and gates only the next boundary */
    {S_B0 " cap=0", 'A', "answer", "b0", OK, AT(ACTIVE, 1, 0, SPEAK, 'B', 0, DA), 0},
};

START_TEST(test_transition_table)
{
    const struct row *row = &rows[_i];
    struct thou_flow_state s = state_after(row->setup);
    struct thou_flow_state before = s;
    struct thou_flow_result result;
    memset(&result, 0xff, sizeof result);

    enum thou_flow_reason reason = send(&s, row->role, row->type, row->question, &result);
    ck_assert_msg(reason == row->reason, "row %d (%s | %c:%s:%s): got %s, want %s", _i, row->setup,
                  row->role, row->type, row->question ? row->question : "-",
                  thou_flow_reason_code(reason), thou_flow_reason_code(row->reason));
    ck_assert_msg(effects_of(&result) == row->effects, "row %d: effects %#x, want %#x", _i,
                  effects_of(&result), row->effects);
    if (reason)
        ck_assert_msg(memcmp(&s, &before, sizeof s) == 0, "row %d: refusal changed the state", _i);

    const struct position *want = &row->after;
    ck_assert_msg(s.status == want->status, "row %d: status %s, want %s", _i,
                  thou_flow_status_name(s.status), thou_flow_status_name(want->status));
    ck_assert_int_eq(s.finished, want->finished);
    ck_assert_uint_eq(s.stage, want->stage);
    ck_assert_uint_eq(s.question, want->question);
    ck_assert_msg(s.phase == want->phase, "row %d: phase %s, want %s", _i,
                  thou_flow_phase_name(s.phase), thou_flow_phase_name(want->phase));
    ck_assert_int_eq(s.speaker, want->speaker);
    ck_assert_uint_eq(s.rounds, want->rounds);
    ck_assert_uint_eq(s.done, want->done);
}
END_TEST

/* ---- names, plan checks, small queries ---- */

START_TEST(test_names)
{
    static const char *const flow_types[] = {"answer", "reflect", "confirm_heard", "add",
                                             "pass",   "pause",   "resume",        "end"};
    for (size_t i = 0; i < sizeof flow_types / sizeof flow_types[0]; i++) {
        enum thou_flow_type t = thou_flow_type_parse(flow_types[i]);
        ck_assert_int_ne(t, THOU_FLOW_UNKNOWN);
        ck_assert_str_eq(thou_flow_type_name(t), flow_types[i]);
        ck_assert_int_eq(thou_flow_type_has_question(t), i < 5);
    }
    static const char *const others[] = {"key", "confirm", "note",    "consent", "research",
                                         "",    "Answer",  "answer ", "unknown"};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        ck_assert_int_eq(thou_flow_type_parse(others[i]), THOU_FLOW_UNKNOWN);
    ck_assert_int_eq(thou_flow_type_parse(NULL), THOU_FLOW_UNKNOWN);
    ck_assert_str_eq(thou_flow_type_name(THOU_FLOW_UNKNOWN), "unknown");

    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_OK), "ok");
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_EINVAL), "invalid");
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_EENDED), "room_ended");
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_EPAUSED), "paused");
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_EHELD), "held");
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_EWRONG_STEP), "wrong_step");
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_ENOT_YOUR_TURN), "not_your_turn");
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_EALREADY_PAUSED), "already_paused");
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_ENOT_PAUSED), "not_paused");
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_EPAUSED_BY_PARTNER), "paused_by_partner");

    ck_assert_str_eq(thou_flow_status_name(THOU_FLOW_HELD), "held");
    ck_assert_str_eq(thou_flow_phase_name(THOU_FLOW_PHASE_REVEAL_REFLECT), "reveal_reflect");
}
END_TEST

START_TEST(test_plan_check)
{
    ck_assert_int_eq(thou_flow_plan_check(&plan), THOU_OK);
    ck_assert_uint_eq(thou_flow_plan_total(&plan), 6);

    struct thou_flow_plan empty = {0, test_stages};
    ck_assert_int_eq(thou_flow_plan_check(&empty), THOU_EINVAL);
    ck_assert_int_eq(thou_flow_plan_check(NULL), THOU_EINVAL);

    struct thou_flow_stage no_questions[] = {{true, 2, stage0_questions}, {true, 0, NULL}};
    struct thou_flow_plan p1 = {2, no_questions};
    ck_assert_int_eq(thou_flow_plan_check(&p1), THOU_EINVAL);

    struct thou_flow_question null_id[] = {{"x", false}, {NULL, false}};
    struct thou_flow_stage s2[] = {{true, 2, null_id}};
    struct thou_flow_plan p2 = {1, s2};
    ck_assert_int_eq(thou_flow_plan_check(&p2), THOU_EINVAL);

    struct thou_flow_question empty_id[] = {{"", false}};
    struct thou_flow_stage s3[] = {{true, 1, empty_id}};
    struct thou_flow_plan p3 = {1, s3};
    ck_assert_int_eq(thou_flow_plan_check(&p3), THOU_EINVAL);

    struct thou_flow_question dup_in_stage[] = {{"x", false}, {"y", true}, {"x", false}};
    struct thou_flow_stage s4[] = {{true, 3, dup_in_stage}};
    struct thou_flow_plan p4 = {1, s4};
    ck_assert_int_eq(thou_flow_plan_check(&p4), THOU_EINVAL);

    struct thou_flow_question other[] = {{"z", false}, {"a1", false}};
    struct thou_flow_stage s5[] = {{true, 2, stage0_questions}, {false, 2, other}};
    struct thou_flow_plan p5 = {2, s5};
    ck_assert_int_eq(thou_flow_plan_check(&p5), THOU_EINVAL);
}
END_TEST

START_TEST(test_expect_and_progress)
{
    const unsigned answer_pass =
        THOU_FLOW_TYPE_BIT(THOU_FLOW_ANSWER) | THOU_FLOW_TYPE_BIT(THOU_FLOW_PASS);
    const unsigned reflect_pass =
        THOU_FLOW_TYPE_BIT(THOU_FLOW_REFLECT) | THOU_FLOW_TYPE_BIT(THOU_FLOW_PASS);
    const unsigned confirm = THOU_FLOW_TYPE_BIT(THOU_FLOW_CONFIRM_HEARD) |
                             THOU_FLOW_TYPE_BIT(THOU_FLOW_ADD) | THOU_FLOW_TYPE_BIT(THOU_FLOW_PASS);
    struct thou_flow_state s;
    size_t index, total;

    s = state_after("");
    ck_assert_uint_eq(thou_flow_expect(&s, 'A'), answer_pass);
    ck_assert_uint_eq(thou_flow_expect(&s, 'B'), 0);
    ck_assert_uint_eq(thou_flow_expect(&s, 'C'), 0);
    ck_assert_str_eq(thou_flow_current_question(&plan, &s), "a0");

    s = state_after(S_A0_REFLECT);
    ck_assert_uint_eq(thou_flow_expect(&s, 'A'), 0);
    ck_assert_uint_eq(thou_flow_expect(&s, 'B'), reflect_pass);

    s = state_after(S_A0_CONFIRM);
    ck_assert_uint_eq(thou_flow_expect(&s, 'A'), confirm);
    ck_assert_uint_eq(thou_flow_expect(&s, 'B'), 0);

    s = state_after(S_B1 " B:answer:b1");
    ck_assert_uint_eq(thou_flow_expect(&s, 'A'), answer_pass);
    ck_assert_uint_eq(thou_flow_expect(&s, 'B'), 0);
    thou_flow_progress(&plan, &s, &index, &total);
    ck_assert_uint_eq(index, 3);
    ck_assert_uint_eq(total, 6);

    s = state_after(S_B1_REFLECT);
    ck_assert_uint_eq(thou_flow_expect(&s, 'A'), reflect_pass);
    ck_assert_uint_eq(thou_flow_expect(&s, 'B'), reflect_pass);

    s = state_after(S_HELD);
    ck_assert_uint_eq(thou_flow_expect(&s, 'A'), 0);
    ck_assert_uint_eq(thou_flow_expect(&s, 'B'), 0);
    ck_assert_str_eq(thou_flow_current_question(&plan, &s), "b0");

    s = state_after("A:pause");
    ck_assert_uint_eq(thou_flow_expect(&s, 'A'), 0);
    ck_assert_str_eq(thou_flow_current_question(&plan, &s), "a0");

    s = state_after(S_ENDED);
    ck_assert_ptr_null(thou_flow_current_question(&plan, &s));
    thou_flow_progress(&plan, &s, &index, &total);
    ck_assert_uint_eq(index, 0);

    s = state_after(S_C1 " B:pass:c1 A:pass:c1");
    ck_assert_ptr_null(thou_flow_current_question(&plan, &s));
    thou_flow_progress(&plan, &s, &index, &total);
    ck_assert_uint_eq(index, 6);
}
END_TEST

START_TEST(test_stage_cap)
{
    struct thou_flow_state s;
    thou_flow_state_init(&s, &plan);
    ck_assert_uint_eq(s.stage_cap, THOU_FLOW_NO_CAP);
    ck_assert(!thou_flow_set_stage_cap(&s, 0));
    ck_assert_uint_eq(s.stage_cap, 0);
    ck_assert(!thou_flow_set_stage_cap(&s, THOU_FLOW_CAP_MAX + 1));
    ck_assert_uint_eq(s.stage_cap, THOU_FLOW_NO_CAP);
    ck_assert(!thou_flow_set_stage_cap(&s, THOU_FLOW_CAP_MAX));
    ck_assert_uint_eq(s.stage_cap, THOU_FLOW_CAP_MAX);

    s = state_after(S_HELD);
    ck_assert(!thou_flow_set_stage_cap(&s, 0));
    ck_assert_int_eq(s.status, THOU_FLOW_HELD);
    ck_assert(thou_flow_set_stage_cap(&s, 1));
    ck_assert_int_eq(s.status, THOU_FLOW_ACTIVE);
    ck_assert_uint_eq(s.stage, 1);

    s = state_after(S_HELD " A:pause");
    ck_assert(thou_flow_set_stage_cap(&s, THOU_FLOW_NO_CAP));
    ck_assert_int_eq(s.status, THOU_FLOW_PAUSED);
    ck_assert_int_eq(send(&s, 'A', "resume", NULL, NULL), THOU_FLOW_OK);
    ck_assert_int_eq(s.status, THOU_FLOW_ACTIVE);

    /* the cap is recorded even when ended; it changes nothing else */
    s = state_after(S_HELD " A:end");
    ck_assert(!thou_flow_set_stage_cap(&s, 5));
    ck_assert_int_eq(s.status, THOU_FLOW_ENDED);
}
END_TEST

/* ---- whole conversations ---- */

/* Drives one question the long way: reflect, one add, reflect, confirm; both halves. */
static void converse(struct thou_flow_state *s, const char *id, char opener, bool listening)
{
    struct thou_flow_result r;
    for (int half = 0; half < 2; half++) {
        char speaker = half == 0 ? opener : (opener == 'A' ? 'B' : 'A');
        char listener = speaker == 'A' ? 'B' : 'A';
        ck_assert_int_eq(s->speaker, speaker);
        ck_assert_int_eq(send(s, listener, "answer", id, NULL), THOU_FLOW_ENOT_YOUR_TURN);
        ck_assert_int_eq(send(s, speaker, "answer", id, &r), THOU_FLOW_OK);
        if (!listening)
            continue;
        ck_assert_int_eq(send(s, listener, "reflect", id, NULL), THOU_FLOW_OK);
        ck_assert_int_eq(send(s, speaker, "add", id, NULL), THOU_FLOW_OK);
        ck_assert_int_eq(send(s, listener, "reflect", id, NULL), THOU_FLOW_OK);
        ck_assert_int_eq(send(s, speaker, "confirm_heard", id, &r), THOU_FLOW_OK);
    }
    ck_assert(r.advanced_question);
}

static void reveal(struct thou_flow_state *s, const char *id)
{
    struct thou_flow_result r;
    ck_assert_int_eq(send(s, 'B', "answer", id, &r), THOU_FLOW_OK);
    ck_assert(r.hold && !r.reveal);
    ck_assert_int_eq(send(s, 'A', "answer", id, &r), THOU_FLOW_OK);
    ck_assert(r.reveal && !r.hold);
    ck_assert_int_eq(send(s, 'A', "reflect", id, NULL), THOU_FLOW_OK);
    ck_assert_int_eq(send(s, 'B', "reflect", id, &r), THOU_FLOW_OK);
    ck_assert(r.advanced_question);
}

/* Both choose to go on at a stage gate. */
static void vote_on(struct thou_flow_state *s, const char *id)
{
    struct thou_flow_result r;
    ck_assert_int_eq(s->status, THOU_FLOW_VOTING);
    ck_assert_int_eq(send(s, 'A', "go_on", id, &r), THOU_FLOW_OK);
    ck_assert(!r.opened_stage);
    ck_assert_int_eq(send(s, 'B', "go_on", id, &r), THOU_FLOW_OK);
    ck_assert(r.opened_stage);
}

START_TEST(test_full_conversation)
{
    struct thou_flow_state s;
    thou_flow_state_init(&s, &plan);
    size_t index, total;

    converse(&s, "a0", 'A', true);
    converse(&s, "a1", 'B', true);
    ck_assert_uint_eq(s.stage, 1);
    vote_on(&s, "b0");
    converse(&s, "b0", 'A', false);
    reveal(&s, "b1");
    ck_assert_uint_eq(s.stage, 2);
    vote_on(&s, "c0");
    thou_flow_progress(&plan, &s, &index, &total);
    ck_assert_uint_eq(index, 4);
    reveal(&s, "c0");
    converse(&s, "c1", 'B', true);

    ck_assert_int_eq(s.status, THOU_FLOW_ENDED);
    ck_assert(s.finished);
    thou_flow_progress(&plan, &s, &index, &total);
    ck_assert_uint_eq(index, total);
}
END_TEST

/* Openers alternate by global ordinal, also across a longer plan with many stages. */
START_TEST(test_openers_alternate)
{
    static const struct thou_flow_question q3[] = {{"x0", false}, {"x1", false}, {"x2", false}};
    static const struct thou_flow_question q1[] = {{"y0", false}};
    static const struct thou_flow_question q2[] = {{"z0", true}, {"z1", false}};
    static const struct thou_flow_stage st[] = {{false, 3, q3}, {true, 1, q1}, {false, 2, q2}};
    static const struct thou_flow_plan p = {3, st};
    static const char expected[] = {'A', 'B', 'A', 'B', 0, 'B'};
    struct thou_flow_state s;
    thou_flow_state_init(&s, &p);
    for (size_t k = 0; k < 6; k++) {
        const char *id = thou_flow_current_question(&p, &s);
        for (char role = 'A'; s.status == THOU_FLOW_VOTING; role++) {
            struct thou_flow_event ev = {THOU_FLOW_GO_ON, role, id};
            ck_assert_int_eq(thou_flow_apply(&p, 0, &s, &ev, NULL), THOU_FLOW_OK);
        }
        ck_assert_int_eq(s.speaker, expected[k]);
        for (int step = 0; step < 2; step++) {
            char role = expected[k] ? s.speaker : (step == 0 ? 'A' : 'B');
            struct thou_flow_event ev = {THOU_FLOW_PASS, role, id};
            ck_assert_int_eq(thou_flow_apply(&p, 0, &s, &ev, NULL), THOU_FLOW_OK);
        }
        if (!expected[k]) {
            for (int step = 0; step < 2; step++) {
                struct thou_flow_event ev = {THOU_FLOW_PASS, step == 0 ? 'A' : 'B', id};
                ck_assert_int_eq(thou_flow_apply(&p, 0, &s, &ev, NULL), THOU_FLOW_OK);
            }
        }
    }
    ck_assert_int_eq(s.status, THOU_FLOW_ENDED);
    ck_assert(s.finished);
}
END_TEST

START_TEST(test_held_then_raised)
{
    struct thou_flow_state s;
    struct thou_flow_result r;
    thou_flow_state_init(&s, &plan);
    thou_flow_set_stage_cap(&s, 0);

    run_script(&s, S_A1 " B:pass:a1");
    ck_assert_int_eq(send(&s, 'A', "pass", "a1", &r), THOU_FLOW_OK);
    ck_assert(r.entered_stage && !r.held);
    ck_assert_int_eq(send(&s, 'A', "go_on", "b0", &r), THOU_FLOW_OK);
    ck_assert_int_eq(send(&s, 'B', "go_on", "b0", &r), THOU_FLOW_OK);
    ck_assert(r.opened_stage && r.held);
    ck_assert_int_eq(s.status, THOU_FLOW_HELD);
    ck_assert_int_eq(send(&s, 'A', "answer", "b0", NULL), THOU_FLOW_EHELD);
    ck_assert_int_eq(send(&s, 'B', "pass", "b0", NULL), THOU_FLOW_EHELD);

    ck_assert(thou_flow_set_stage_cap(&s, 1));
    ck_assert_int_eq(s.status, THOU_FLOW_ACTIVE);
    converse(&s, "b0", 'A', false);
    ck_assert_int_eq(send(&s, 'A', "pass", "b1", NULL), THOU_FLOW_OK);
    ck_assert_int_eq(send(&s, 'B', "pass", "b1", &r), THOU_FLOW_OK);
    ck_assert(r.reveal);
    ck_assert_int_eq(send(&s, 'B', "pass", "b1", NULL), THOU_FLOW_OK);
    ck_assert_int_eq(send(&s, 'A', "pass", "b1", &r), THOU_FLOW_OK);
    ck_assert(r.entered_stage);
    ck_assert_uint_eq(s.stage, 2);
    vote_on(&s, "c0");
    ck_assert_int_eq(s.status, THOU_FLOW_HELD);

    ck_assert(thou_flow_set_stage_cap(&s, THOU_FLOW_NO_CAP));
    reveal(&s, "c0");
    converse(&s, "c1", 'B', true);
    ck_assert(s.finished);
}
END_TEST

/* ---- JSON ---- */

static void assert_json(const struct thou_flow_state *s, const char *text)
{
    json_error_t error;
    json_t *want = json_loads(text, JSON_REJECT_DUPLICATES, &error);
    ck_assert_msg(want, "bad expected JSON: %s", error.text);
    json_t *got = thou_flow_state_to_json(&plan, s);
    ck_assert_ptr_nonnull(got);
    char *dump = json_dumps(got, JSON_COMPACT);
    ck_assert_msg(json_equal(want, got), "got %s", dump);
    free(dump);

    struct thou_flow_state back;
    ck_assert_int_eq(thou_flow_state_from_json(&plan, want, &back), THOU_OK);
    ck_assert(thou_flow_state_equal(&back, s));
    json_decref(want);
    json_decref(got);
}

START_TEST(test_json_shape)
{
    struct thou_flow_state s = state_after(S_A0_ROUND1);
    assert_json(&s, "{\"status\":\"active\",\"finished\":false,\"stage\":0,\"question\":\"a0\","
                    "\"question_index\":0,\"phase\":\"confirm\",\"speaker\":\"A\",\"rounds\":1,"
                    "\"done\":{\"A\":false,\"B\":false},"
                    "\"expect\":{\"A\":[\"confirm_heard\",\"add\",\"pass\"],\"B\":[]},"
                    "\"progress\":{\"index\":0,\"total\":6},\"stage_cap\":null,"
                    "\"paused_from\":null,\"paused_by\":null,"
                    "\"votes\":{\"A\":false,\"B\":false},\"stayed\":false}");

    s = state_after(S_HELD " A:pause");
    assert_json(&s, "{\"status\":\"paused\",\"finished\":false,\"stage\":1,\"question\":\"b0\","
                    "\"question_index\":0,\"phase\":\"speak\",\"speaker\":\"A\",\"rounds\":0,"
                    "\"done\":{\"A\":false,\"B\":false},\"expect\":{\"A\":[],\"B\":[]},"
                    "\"progress\":{\"index\":2,\"total\":6},\"stage_cap\":0,"
                    "\"paused_from\":\"held\",\"paused_by\":\"A\","
                    "\"votes\":{\"A\":false,\"B\":false},\"stayed\":false}");

    s = state_after(S_B1 " B:answer:b1");
    assert_json(&s, "{\"status\":\"active\",\"finished\":false,\"stage\":1,\"question\":\"b1\","
                    "\"question_index\":1,\"phase\":\"reveal_write\",\"speaker\":null,"
                    "\"rounds\":0,\"done\":{\"A\":false,\"B\":true},"
                    "\"expect\":{\"A\":[\"answer\",\"pass\"],\"B\":[]},"
                    "\"progress\":{\"index\":3,\"total\":6},\"stage_cap\":null,"
                    "\"paused_from\":null,\"paused_by\":null,"
                    "\"votes\":{\"A\":false,\"B\":false},\"stayed\":false}");

    s = state_after(S_C1 " B:pass:c1 A:pass:c1");
    assert_json(&s, "{\"status\":\"ended\",\"finished\":true,\"stage\":2,\"question\":null,"
                    "\"question_index\":1,\"phase\":\"done\",\"speaker\":null,\"rounds\":0,"
                    "\"done\":{\"A\":true,\"B\":true},\"expect\":{\"A\":[],\"B\":[]},"
                    "\"progress\":{\"index\":6,\"total\":6},\"stage_cap\":null,"
                    "\"paused_from\":null,\"paused_by\":null,"
                    "\"votes\":{\"A\":false,\"B\":false},\"stayed\":false}");

    s = state_after(S_GATE1 " B:go_on:b0");
    assert_json(&s, "{\"status\":\"voting\",\"finished\":false,\"stage\":1,\"question\":\"b0\","
                    "\"question_index\":0,\"phase\":\"speak\",\"speaker\":\"A\",\"rounds\":0,"
                    "\"done\":{\"A\":false,\"B\":false},"
                    "\"expect\":{\"A\":[\"go_on\",\"stay_here\"],\"B\":[]},"
                    "\"progress\":{\"index\":2,\"total\":6},\"stage_cap\":null,"
                    "\"paused_from\":null,\"paused_by\":null,"
                    "\"votes\":{\"A\":false,\"B\":true},\"stayed\":false}");

    s = state_after(S_GATE1 " A:stay_here:b0");
    assert_json(&s, "{\"status\":\"ended\",\"finished\":false,\"stage\":1,\"question\":null,"
                    "\"question_index\":0,\"phase\":\"speak\",\"speaker\":\"A\",\"rounds\":0,"
                    "\"done\":{\"A\":false,\"B\":false},\"expect\":{\"A\":[],\"B\":[]},"
                    "\"progress\":{\"index\":2,\"total\":6},\"stage_cap\":null,"
                    "\"paused_from\":null,\"paused_by\":null,"
                    "\"votes\":{\"A\":false,\"B\":false},\"stayed\":true}");

    s = state_after("cap=2147483647 " S_A0_SECOND " B:end");
    assert_json(&s, "{\"status\":\"ended\",\"finished\":false,\"stage\":0,\"question\":null,"
                    "\"question_index\":0,\"phase\":\"speak\",\"speaker\":\"B\",\"rounds\":0,"
                    "\"done\":{\"A\":true,\"B\":false},\"expect\":{\"A\":[],\"B\":[]},"
                    "\"progress\":{\"index\":0,\"total\":6},\"stage_cap\":2147483647,"
                    "\"paused_from\":null,\"paused_by\":null,"
                    "\"votes\":{\"A\":false,\"B\":false},\"stayed\":false}");
}
END_TEST

struct mutation {
    const char *setup; /* the state whose JSON is changed */
    const char *key;
    const char *value; /* JSON text; NULL removes the key */
};

/* Each applied alone. S_A0_ROUND1 is a0 in confirm, speaker A, rounds 1. */
static const struct mutation mutations[] = {
    {S_A0_ROUND1, "status", "\"nope\""},
    {S_A0_ROUND1, "status", "3"},
    {S_A0_ROUND1, "status", "\"held\""},
    {S_A0_ROUND1, "status", "\"paused\""},
    {S_A0_ROUND1, "status", "\"ended\""},
    {S_A0_ROUND1, "finished", "true"},
    {S_A0_ROUND1, "finished", "0"},
    {S_A0_ROUND1, "stage", "3"},
    {S_A0_ROUND1, "stage", "-1"},
    {S_A0_ROUND1, "stage", "0.0"},
    {S_A0_ROUND1, "stage", "\"0\""},
    {S_A0_ROUND1, "stage", "1"},
    {S_A0_ROUND1, "question", "\"a1\""},
    {S_A0_ROUND1, "question", "null"},
    {S_A0_ROUND1, "question_index", "2"},
    {S_A0_ROUND1, "question_index", "1"},
    {S_A0_ROUND1, "phase", "\"reveal_write\""},
    {S_A0_ROUND1, "phase", "\"done\""},
    {S_A0_ROUND1, "phase", "\"listen\""},
    {S_A0_ROUND1, "phase", "\"speak\""},
    {S_A0_ROUND1, "phase", "null"},
    {S_A0_ROUND1, "speaker", "\"B\""},
    {S_A0_ROUND1, "speaker", "null"},
    {S_A0_ROUND1, "speaker", "\"C\""},
    {S_A0_ROUND1, "speaker", "\"AB\""},
    {S_A0_ROUND1, "speaker", "65"},
    {S_A0_ROUND1, "rounds", "-1"},
    {S_A0_ROUND1, "rounds", "4294967296"},
    {S_A0_ROUND1, "rounds", "\"1\""},
    {S_A0_ROUND1, "rounds", "1.0"},
    {S_A0_ROUND1, "done", "{\"A\":true,\"B\":false}"},
    {S_A0_ROUND1, "done", "{\"A\":false}"},
    {S_A0_ROUND1, "done", "{\"A\":false,\"B\":false,\"C\":true}"},
    {S_A0_ROUND1, "done", "{\"A\":0,\"B\":false}"},
    {S_A0_ROUND1, "done", "[false,false]"},
    {S_A0_ROUND1, "expect", "{\"A\":[],\"B\":[]}"},
    {S_A0_ROUND1, "expect", "{\"A\":[\"add\",\"confirm_heard\",\"pass\"],\"B\":[]}"},
    {S_A0_ROUND1, "progress", "{\"index\":0,\"total\":7}"},
    {S_A0_ROUND1, "progress", "{\"index\":1,\"total\":6}"},
    {S_A0_ROUND1, "stage_cap", "-1"},
    {S_A0_ROUND1, "stage_cap", "\"x\""},
    {S_A0_ROUND1, "stage_cap", "2147483648"},
    {S_A0_ROUND1, "stage_cap", "1.5"},
    {S_A0_ROUND1, "paused_from", "\"active\""},
    {S_A0_ROUND1, "paused_from", "\"held\""},
    {S_A0_ROUND1, "paused_from", "\"nope\""},
    {S_A0_ROUND1, "paused_by", "\"A\""},
    {S_A0_ROUND1, "votes", "{\"A\":true,\"B\":false}"},
    {S_A0_ROUND1, "votes", "[]"},
    {S_A0_ROUND1, "stayed", "true"},
    {S_A0_ROUND1, "stayed", "1"},
    {S_GATE1, "votes", "{\"A\":true,\"B\":true}"},
    {S_GATE1, "votes", "{\"A\":true}"},
    {S_GATE1, "status", "\"active\""},
    {S_B0, "status", "\"voting\""},
    {S_C1 " B:pass:c1 A:pass:c1", "stayed", "true"},
    {S_HELD " A:pause", "paused_by", "\"C\""},
    {S_HELD " A:pause", "paused_by", "1"},
    {S_HELD " A:pause", "paused_by", "\"\""},
    {S_A0_ROUND1, "extra", "1"},
    {S_A0_ROUND1, "status", NULL},
    {S_A0_ROUND1, "finished", NULL},
    {S_A0_ROUND1, "stage", NULL},
    {S_A0_ROUND1, "question", NULL},
    {S_A0_ROUND1, "question_index", NULL},
    {S_A0_ROUND1, "phase", NULL},
    {S_A0_ROUND1, "speaker", NULL},
    {S_A0_ROUND1, "rounds", NULL},
    {S_A0_ROUND1, "done", NULL},
    {S_A0_ROUND1, "expect", NULL},
    {S_A0_ROUND1, "progress", NULL},
    {S_A0_ROUND1, "stage_cap", NULL},
    {S_A0_ROUND1, "paused_from", NULL},
    /* fresh a0: speak, A opens */
    {"", "rounds", "1"},
    {"", "done", "{\"A\":true,\"B\":false}"},
    {"", "done", "{\"A\":false,\"B\":true}"},
    /* a0 second half: B speaks after A */
    {S_A0_SECOND, "done", "{\"A\":false,\"B\":false}"},
    {S_A0_SECOND, "done", "{\"A\":true,\"B\":true}"},
    /* reveal-together b1 */
    {S_B1, "rounds", "1"},
    {S_B1, "speaker", "\"A\""},
    {S_B1, "phase", "\"speak\""},
    {S_B1, "done", "{\"A\":true,\"B\":true}"},
    {S_B1_REFLECT, "done", "{\"A\":true,\"B\":true}"},
    /* held at the gate of stage 1 with cap 0 */
    {S_HELD, "stage_cap", "1"},
    {S_HELD, "stage_cap", "null"},
    {S_HELD, "paused_from", "\"held\""},
    {S_HELD " A:pause", "stage_cap", "5"},
    {S_HELD " A:pause", "paused_from", "null"},
    {S_HELD " A:pause", "paused_from", "\"paused\""},
    {S_HELD " A:pause", "paused_from", "\"ended\""},
    /* finished and ended early */
    {S_C1 " B:pass:c1 A:pass:c1", "finished", "false"},
    {S_C1 " B:pass:c1 A:pass:c1", "question_index", "0"},
    {S_C1 " B:pass:c1 A:pass:c1", "status", "\"paused\""},
    {S_C1 " B:pass:c1 A:pass:c1", "stage", "1"},
    {S_ENDED, "question", "\"a0\""},
    {S_ENDED, "finished", "true"},
};

START_TEST(test_json_refuses)
{
    const struct mutation *m = &mutations[_i];
    struct thou_flow_state s = state_after(m->setup);
    json_t *json = thou_flow_state_to_json(&plan, &s);
    ck_assert_ptr_nonnull(json);
    if (m->value) {
        json_error_t error;
        json_t *value = json_loads(m->value, JSON_DECODE_ANY, &error);
        ck_assert_msg(value, "bad mutation %s", m->value);
        json_object_set_new(json, m->key, value);
    } else {
        json_object_del(json, m->key);
    }

    struct thou_flow_state out;
    memset(&out, 0x5a, sizeof out);
    struct thou_flow_state untouched = out;
    ck_assert_msg(thou_flow_state_from_json(&plan, json, &out) == THOU_EINVAL,
                  "mutation %s=%s of '%s' accepted", m->key, m->value ? m->value : "(removed)",
                  m->setup ? m->setup : S_A0_ROUND1);
    ck_assert(memcmp(&out, &untouched, sizeof out) == 0);
    json_decref(json);
}
END_TEST

/*
 * Changes that keep the derived fields ("expect", "progress") consistent, so
 * only the validation of the state itself can refuse them.
 */
static const struct {
    const char *setup;
    const char *patch; /* members replace the top-level keys of the state's JSON */
} compound_mutations[] = {
    {S_B1, "{\"done\":{\"A\":true,\"B\":true},\"expect\":{\"A\":[],\"B\":[]}}"},
    {S_A0_ROUND1, "{\"phase\":\"speak\",\"expect\":{\"A\":[\"answer\",\"pass\"],\"B\":[]}}"},
    {S_B0, "{\"phase\":\"reflect\",\"expect\":{\"A\":[],\"B\":[\"reflect\",\"pass\"]}}"},
    {S_B0, "{\"phase\":\"confirm\",\"expect\":{\"A\":[\"confirm_heard\",\"add\",\"pass\"],"
           "\"B\":[]}}"},
    {S_B1, "{\"phase\":\"speak\",\"speaker\":\"B\",\"done\":{\"A\":false,\"B\":false},"
           "\"expect\":{\"A\":[],\"B\":[\"answer\",\"pass\"]}}"},
    {S_A1, "{\"phase\":\"reveal_write\",\"speaker\":null,"
           "\"expect\":{\"A\":[\"answer\",\"pass\"],\"B\":[\"answer\",\"pass\"]}}"},
    {S_HELD, "{\"question_index\":1,\"question\":\"b1\",\"phase\":\"reveal_write\","
             "\"speaker\":null,\"progress\":{\"index\":3,\"total\":6}}"},
    {S_HELD " B:pause", "{\"speaker\":\"B\",\"done\":{\"A\":true,\"B\":false}}"},
    {S_HELD, "{\"stage\":2,\"question\":\"c0\",\"phase\":\"reveal_write\",\"speaker\":null,"
             "\"progress\":{\"index\":4,\"total\":6},\"stage_cap\":2}"},
};

START_TEST(test_json_refuses_compound)
{
    struct thou_flow_state s = state_after(compound_mutations[_i].setup);
    json_t *json = thou_flow_state_to_json(&plan, &s);
    json_error_t error;
    json_t *patch = json_loads(compound_mutations[_i].patch, 0, &error);
    ck_assert_msg(patch, "bad patch %d: %s", _i, error.text);
    ck_assert_int_eq(json_object_update(json, patch), 0);
    json_decref(patch);

    struct thou_flow_state out;
    ck_assert_msg(thou_flow_state_from_json(&plan, json, &out) == THOU_EINVAL,
                  "compound mutation %d accepted", _i);
    json_decref(json);
}
END_TEST

/* A pause stored before pauses had an owner reads as one either role may resume. */
START_TEST(test_json_legacy_pause)
{
    struct thou_flow_state s = state_after("B:pause");
    ck_assert_int_eq(s.paused_by, 'B');
    json_t *json = thou_flow_state_to_json(&plan, &s);
    ck_assert_str_eq(json_string_value(json_object_get(json, "paused_by")), "B");
    json_object_del(json, "paused_by");
    struct thou_flow_state out;
    ck_assert_int_eq(thou_flow_state_from_json(&plan, json, &out), THOU_OK);
    ck_assert_int_eq(out.status, THOU_FLOW_PAUSED);
    ck_assert_int_eq(out.paused_by, '\0');
    ck_assert_int_eq(send(&out, 'A', "resume", NULL, NULL), THOU_FLOW_OK);
    ck_assert_int_eq(out.status, THOU_FLOW_ACTIVE);
    json_decref(json);
}
END_TEST

START_TEST(test_json_refuses_other_plans)
{
    static const struct thou_flow_question renamed[] = {{"a0", false}, {"a9", false}};
    static const struct thou_flow_stage st[] = {
        {true, 2, renamed}, {false, 2, stage1_questions}, {true, 2, stage2_questions}};
    static const struct thou_flow_plan other = {3, st};
    static const struct thou_flow_stage shorter_st[] = {{true, 2, stage0_questions},
                                                        {false, 2, stage1_questions}};
    static const struct thou_flow_plan shorter = {2, shorter_st};
    static const struct thou_flow_stage unlistened_st[] = {
        {false, 2, stage0_questions}, {false, 2, stage1_questions}, {true, 2, stage2_questions}};
    static const struct thou_flow_plan unlistened = {3, unlistened_st};
    struct thou_flow_state out;

    struct thou_flow_state s = state_after(S_A1);
    json_t *json = thou_flow_state_to_json(&plan, &s);
    ck_assert_int_eq(thou_flow_state_from_json(&other, json, &out), THOU_EINVAL);
    ck_assert_int_eq(thou_flow_state_from_json(&shorter, json, &out), THOU_EINVAL);
    json_decref(json);

    s = state_after(S_A0_CONFIRM);
    json = thou_flow_state_to_json(&plan, &s);
    ck_assert_int_eq(thou_flow_state_from_json(&unlistened, json, &out), THOU_EINVAL);
    json_decref(json);

    json = json_array();
    ck_assert_int_eq(thou_flow_state_from_json(&plan, json, &out), THOU_EINVAL);
    json_decref(json);
    ck_assert_int_eq(thou_flow_state_from_json(&plan, NULL, &out), THOU_EINVAL);
}
END_TEST

/* ---- randomized ---- */

/* ck_assert reports every passing check to the runner, one write each, which
 * would dominate the millions of checks below; this reports only failures. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg("line %d: %s", __LINE__, #cond);                                          \
    } while (0)

struct rng {
    uint64_t x;
};

static uint32_t rng_next(struct rng *r)
{
    /* xorshift64*: deterministic across platforms, unlike rand() */
    r->x ^= r->x >> 12;
    r->x ^= r->x << 25;
    r->x ^= r->x >> 27;
    return (uint32_t)((r->x * 0x2545F4914F6CDD1DULL) >> 32);
}

static unsigned rng_below(struct rng *r, unsigned n)
{
    return rng_next(r) % n;
}

struct coverage {
    unsigned long accepted, refused, finished, ended_early, held, reveals, holds, rounds_capped;
};

static char pick_role_that_may_act(struct rng *r, const struct thou_flow_state *s)
{
    unsigned a = thou_flow_expect(s, 'A'), b = thou_flow_expect(s, 'B');
    if (a && b)
        return rng_below(r, 2) ? 'B' : 'A';
    if (a)
        return 'A';
    if (b)
        return 'B';
    return '\0';
}

static enum thou_flow_type pick_type_from(struct rng *r, unsigned mask)
{
    enum thou_flow_type choices[16];
    unsigned n = 0;
    for (unsigned t = 0; t < 16; t++) {
        if (mask & THOU_FLOW_TYPE_BIT(t))
            choices[n++] = (enum thou_flow_type)t;
    }
    REQUIRE(n > 0);
    return choices[rng_below(r, n)];
}

static struct thou_flow_event random_event(struct rng *r, const struct thou_flow_state *s)
{
    struct thou_flow_event ev;
    const char *current = thou_flow_current_question(&plan, s);
    char role = pick_role_that_may_act(r, s);

    if (role && rng_below(r, 100) < 55) {
        ev.role = role;
        ev.type = pick_type_from(r, thou_flow_expect(s, role));
        /* Staying, like ending, is rare, so that most runs go deep. */
        if (ev.type == THOU_FLOW_STAY_HERE && rng_below(r, 30) != 0)
            ev.type = THOU_FLOW_GO_ON;
        ev.question = current;
        return ev;
    }
    static const char roles[] = {'A', 'B', 'A', 'B', 'A', 'B', 'C', '\0'};
    ev.role = roles[rng_below(r, sizeof roles)];
    ev.type = (enum thou_flow_type)rng_below(r, THOU_FLOW_STAY_HERE + 1);
    /* Ending at a thirtieth of the uniform rate lets most runs get deep into the plan. */
    while ((ev.type == THOU_FLOW_END || ev.type == THOU_FLOW_STAY_HERE) && rng_below(r, 30) != 0)
        ev.type = (enum thou_flow_type)rng_below(r, THOU_FLOW_STAY_HERE + 1);
    switch (rng_below(r, 6)) {
    case 0:
    case 1:
    case 2:
        ev.question = current ? current : all_ids[rng_below(r, 6)];
        break;
    case 3:
        ev.question = all_ids[rng_below(r, 6)];
        break;
    case 4:
        ev.question = "bogus";
        break;
    default:
        ev.question = NULL;
        break;
    }
    return ev;
}

static char opener_of(size_t stage, size_t question)
{
    size_t k = question;
    for (size_t i = 0; i < stage; i++)
        k += plan.stages[i].n_questions;
    return k % 2 ? 'B' : 'A';
}

static void check_state_invariants(const struct thou_flow_state *s)
{
    bool turn_phase = s->phase == SPEAK || s->phase == REFLECT || s->phase == CONFIRM;
    if (turn_phase) {
        REQUIRE(s->speaker == 'A' || s->speaker == 'B');
        if (s->status == THOU_FLOW_ACTIVE) {
            /* exactly one role may act in a turn phase: never two speakers at once */
            bool a = thou_flow_expect(s, 'A') != 0, b = thou_flow_expect(s, 'B') != 0;
            REQUIRE(a != b);
        }
        char opener = opener_of(s->stage, s->question);
        if (s->done == 0)
            REQUIRE(s->speaker == opener);
        else
            REQUIRE(s->speaker != opener);
    } else {
        REQUIRE(s->speaker == 0);
    }
    REQUIRE((s->phase == DONE) == (s->finished));
    if (s->finished)
        REQUIRE(s->status == THOU_FLOW_ENDED);
}

static void check_json_round_trip(const struct thou_flow_state *s)
{
    json_t *json = thou_flow_state_to_json(&plan, s);
    ck_assert_ptr_nonnull(json);
    struct thou_flow_state back;
    REQUIRE(thou_flow_state_from_json(&plan, json, &back) == THOU_OK);
    REQUIRE(thou_flow_state_equal(&back, s));
    json_t *again = thou_flow_state_to_json(&plan, &back);
    REQUIRE(json_equal(json, again));
    json_decref(again);
    json_decref(json);
}

static void check_pass_never_blocks(const struct thou_flow_state *s)
{
    const char *current = thou_flow_current_question(&plan, s);
    for (char role = 'A'; role <= 'B'; role++) {
        if (!thou_flow_expect(s, role) || s->status == THOU_FLOW_VOTING)
            continue; /* at a stage gate the choice is go on or stay, not pass */
        REQUIRE(thou_flow_expect(s, role) & THOU_FLOW_TYPE_BIT(THOU_FLOW_PASS));
        struct thou_flow_state copy = *s;
        struct thou_flow_event ev = {THOU_FLOW_PASS, role, current};
        REQUIRE(thou_flow_apply(&plan, MAX_ROUNDS, &copy, &ev, NULL) == THOU_FLOW_OK);
        REQUIRE(!thou_flow_state_equal(&copy, s));
    }
}

static void check_step(const struct thou_flow_state *before, const struct thou_flow_state *after,
                       const struct thou_flow_event *ev, enum thou_flow_reason reason,
                       const struct thou_flow_result *result)
{
    if (reason) {
        REQUIRE(memcmp(before, after, sizeof *after) == 0);
        struct thou_flow_result zero;
        memset(&zero, 0, sizeof zero);
        REQUIRE(memcmp(result, &zero, sizeof zero) == 0);
    }
    if (before->status == THOU_FLOW_ENDED && (ev->role == 'A' || ev->role == 'B'))
        REQUIRE(reason == THOU_FLOW_EENDED);

    /* For a well-formed event on the current question of an active room, the
     * expect mask the UI shows is exactly what apply accepts. */
    const char *current = thou_flow_current_question(&plan, before);
    if (before->status == THOU_FLOW_ACTIVE && (ev->role == 'A' || ev->role == 'B') &&
        thou_flow_type_has_question(ev->type) && ev->question && current &&
        strcmp(ev->question, current) == 0) {
        bool expected = thou_flow_expect(before, ev->role) & THOU_FLOW_TYPE_BIT(ev->type);
        REQUIRE((reason == THOU_FLOW_OK) == (expected));
        if (!expected)
            REQUIRE(reason == THOU_FLOW_EWRONG_STEP || reason == THOU_FLOW_ENOT_YOUR_TURN);
    }

    REQUIRE(after->stage >= before->stage);
    REQUIRE(after->stage <= before->stage + 1);
    if (after->stage == before->stage + 1) {
        REQUIRE(before->question == plan.stages[before->stage].n_questions - 1);
        REQUIRE(after->question == 0);
        REQUIRE(result->entered_stage);
    }
    if (result->held)
        REQUIRE(after->status == THOU_FLOW_HELD);
    if (result->hold || result->reveal)
        REQUIRE(before->phase == REVEAL_WRITE);
    if (result->ended)
        REQUIRE(after->status == THOU_FLOW_ENDED);
}

static void drive_to_finish(struct thou_flow_state *s, unsigned max_rounds, struct rng *r,
                            struct coverage *cov)
{
    if (s->status == THOU_FLOW_ENDED)
        return;
    thou_flow_set_stage_cap(s, THOU_FLOW_NO_CAP);
    if (s->status == THOU_FLOW_PAUSED) {
        struct thou_flow_event resume = {THOU_FLOW_RESUME, s->paused_by ? s->paused_by : 'B', NULL};
        REQUIRE(thou_flow_apply(&plan, max_rounds, s, &resume, NULL) == THOU_FLOW_OK);
    }
    /* per half: answer, then up to max_rounds+1 reflect/add pairs, then a confirm */
    size_t bound = thou_flow_plan_total(&plan) * 2 * (2 * (max_rounds + 2) + 1) + 2 * plan.n_stages;
    for (size_t steps = 0; s->status != THOU_FLOW_ENDED; steps++) {
        REQUIRE(steps < bound);
        char role = pick_role_that_may_act(r, s);
        REQUIRE(role != 0);
        unsigned mask = thou_flow_expect(s, role) & ~THOU_FLOW_TYPE_BIT(THOU_FLOW_STAY_HERE);
        struct thou_flow_event ev = {pick_type_from(r, mask), role,
                                     thou_flow_current_question(&plan, s)};
        REQUIRE(thou_flow_apply(&plan, max_rounds, s, &ev, NULL) == THOU_FLOW_OK);
    }
    REQUIRE(s->finished);
    cov->finished++;
}

START_TEST(test_random_sequences)
{
    struct rng r = {0x74686f7520666c6fULL};
    struct coverage cov = {0};
    static const size_t caps[] = {0, 1, 2, THOU_FLOW_NO_CAP};

    for (int run = 0; run < 3000; run++) {
        unsigned max_rounds = rng_below(&r, 4);
        struct thou_flow_state s;
        thou_flow_state_init(&s, &plan);
        if (rng_below(&r, 3) == 0)
            thou_flow_set_stage_cap(&s, caps[rng_below(&r, 4)]);
        unsigned n_events = 1 + rng_below(&r, 300);
        unsigned after_end = 0;
        check_state_invariants(&s);
        check_json_round_trip(&s);

        /* A few events after the end show it is final; hundreds would only cost time. */
        for (unsigned i = 0; i < n_events && after_end < 20; i++) {
            after_end += s.status == THOU_FLOW_ENDED;
            if (rng_below(&r, 40) == 0) {
                struct thou_flow_state before = s;
                bool released = thou_flow_set_stage_cap(&s, caps[rng_below(&r, 4)]);
                REQUIRE(s.stage == before.stage);
                REQUIRE(s.question == before.question);
                if (released)
                    REQUIRE(before.status == THOU_FLOW_HELD ||
                            before.paused_from == THOU_FLOW_HELD);
                check_state_invariants(&s);
                check_json_round_trip(&s);
            }
            check_pass_never_blocks(&s);

            struct thou_flow_event ev = random_event(&r, &s);
            struct thou_flow_state before = s;
            struct thou_flow_result result;
            enum thou_flow_reason reason = thou_flow_apply(&plan, max_rounds, &s, &ev, &result);
            check_step(&before, &s, &ev, reason, &result);
            check_state_invariants(&s);

            if (reason) {
                /* byte-identical to a state whose round trip was already checked */
                cov.refused++;
                continue;
            }
            check_json_round_trip(&s);
            cov.accepted++;
            cov.finished += s.finished;
            cov.ended_early += result.ended && !s.finished;
            cov.held += result.held;
            cov.reveals += result.reveal;
            cov.holds += result.hold;
            if (ev.type == THOU_FLOW_ADD && before.rounds == max_rounds && max_rounds > 0)
                cov.rounds_capped++;
        }
        drive_to_finish(&s, max_rounds, &r, &cov);
    }

    /* The generator must actually reach the interesting corners. */
    ck_assert_uint_gt(cov.accepted, 10000);
    ck_assert_uint_gt(cov.refused, 10000);
    ck_assert_uint_gt(cov.finished, 1000);
    ck_assert_uint_gt(cov.ended_early, 100);
    ck_assert_uint_gt(cov.held, 100);
    ck_assert_uint_gt(cov.reveals, 1000);
    ck_assert_uint_gt(cov.holds, 500);
    ck_assert_uint_gt(cov.rounds_capped, 10);
}
END_TEST

/* The facilitator of a workshop: a pause only it lifts, and moving a pair on. */
START_TEST(test_facilitator)
{
    struct thou_flow_state s, before;
    struct thou_flow_result r;
    thou_flow_state_init(&s, &plan);
    thou_flow_set_stage_cap(&s, 0);

    ck_assert_int_eq(thou_flow_facilitator_resume(&s), THOU_FLOW_ENOT_PAUSED);
    ck_assert_int_eq(thou_flow_facilitator_pause(&s), THOU_FLOW_OK);
    ck_assert_int_eq(s.status, THOU_FLOW_PAUSED);
    ck_assert_int_eq(s.paused_by, THOU_FLOW_FACILITATOR);
    ck_assert_int_eq(thou_flow_facilitator_pause(&s), THOU_FLOW_EALREADY_PAUSED);
    ck_assert_int_eq(send(&s, 'A', "answer", "a0", NULL), THOU_FLOW_EPAUSED);
    ck_assert_int_eq(send(&s, 'A', "resume", NULL, NULL), THOU_FLOW_EPAUSED_BY_FACILITATOR);
    ck_assert_int_eq(send(&s, 'B', "resume", NULL, NULL), THOU_FLOW_EPAUSED_BY_FACILITATOR);
    ck_assert_int_eq(thou_flow_move_on(&plan, &s, &r), THOU_FLOW_EPAUSED);
    /* The pause survives the store's JSON. */
    json_t *json = thou_flow_state_to_json(&plan, &s);
    ck_assert_str_eq(json_string_value(json_object_get(json, "paused_by")), "F");
    struct thou_flow_state back;
    ck_assert_int_eq(thou_flow_state_from_json(&plan, json, &back), THOU_OK);
    ck_assert(thou_flow_state_equal(&s, &back));
    json_decref(json);
    ck_assert_int_eq(thou_flow_facilitator_resume(&s), THOU_FLOW_OK);
    ck_assert_int_eq(s.status, THOU_FLOW_ACTIVE);
    ck_assert_int_eq(s.paused_by, '\0');

    /* A participant's pause stays theirs. */
    ck_assert_int_eq(send(&s, 'B', "pause", NULL, NULL), THOU_FLOW_OK);
    before = s;
    ck_assert_int_eq(thou_flow_facilitator_resume(&s), THOU_FLOW_ENOT_PAUSED);
    ck_assert_int_eq(thou_flow_facilitator_pause(&s), THOU_FLOW_EALREADY_PAUSED);
    ck_assert(thou_flow_state_equal(&s, &before));
    ck_assert_int_eq(send(&s, 'B', "resume", NULL, NULL), THOU_FLOW_OK);

    /* Move on: a0 -> a1 -> the gate of stage 1 -> held above the cap. */
    ck_assert_int_eq(thou_flow_move_on(&plan, &s, &r), THOU_FLOW_OK);
    ck_assert(r.advanced_question);
    ck_assert_str_eq(thou_flow_current_question(&plan, &s), "a1");
    ck_assert_int_eq(s.phase, SPEAK);
    ck_assert_int_eq(s.speaker, 'B');
    ck_assert_int_eq(thou_flow_move_on(&plan, &s, &r), THOU_FLOW_OK);
    ck_assert(r.entered_stage);
    ck_assert_int_eq(s.status, THOU_FLOW_VOTING);
    ck_assert_int_eq(thou_flow_move_on(&plan, &s, &r), THOU_FLOW_OK);
    ck_assert(r.opened_stage && r.held);
    ck_assert_int_eq(s.status, THOU_FLOW_HELD);
    before = s;
    ck_assert_int_eq(thou_flow_move_on(&plan, &s, &r), THOU_FLOW_EHELD);
    ck_assert(thou_flow_state_equal(&s, &before));
    ck_assert(thou_flow_set_stage_cap(&s, THOU_FLOW_NO_CAP));
    /* ... and on to the end. */
    for (int i = 0; i < 20 && s.status != THOU_FLOW_ENDED; i++)
        ck_assert_int_eq(thou_flow_move_on(&plan, &s, NULL), THOU_FLOW_OK);
    ck_assert_int_eq(s.status, THOU_FLOW_ENDED);
    ck_assert(s.finished);
    ck_assert_int_eq(thou_flow_move_on(&plan, &s, &r), THOU_FLOW_EENDED);
    ck_assert_int_eq(thou_flow_facilitator_pause(&s), THOU_FLOW_EENDED);
    ck_assert_int_eq(thou_flow_facilitator_resume(&s), THOU_FLOW_EENDED);
    ck_assert_str_eq(thou_flow_reason_code(THOU_FLOW_EPAUSED_BY_FACILITATOR),
                     "paused_by_facilitator");
}
END_TEST

static Suite *flow_suite(void)
{
    Suite *s = suite_create("flow");
    TCase *tc = tcase_create("rules");
    tcase_add_loop_test(tc, test_transition_table, 0, (int)(sizeof rows / sizeof rows[0]));
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_plan_check);
    tcase_add_test(tc, test_expect_and_progress);
    tcase_add_test(tc, test_stage_cap);
    tcase_add_test(tc, test_full_conversation);
    tcase_add_test(tc, test_openers_alternate);
    tcase_add_test(tc, test_held_then_raised);
    tcase_add_test(tc, test_facilitator);
    suite_add_tcase(s, tc);

    TCase *json = tcase_create("json");
    tcase_add_test(json, test_json_shape);
    tcase_add_loop_test(json, test_json_refuses, 0, (int)(sizeof mutations / sizeof mutations[0]));
    tcase_add_loop_test(json, test_json_refuses_compound, 0,
                        (int)(sizeof compound_mutations / sizeof compound_mutations[0]));
    tcase_add_test(json, test_json_refuses_other_plans);
    tcase_add_test(json, test_json_legacy_pause);
    suite_add_tcase(s, json);

    TCase *random = tcase_create("random");
    tcase_set_timeout(random, 120);
    tcase_add_test(random, test_random_sequences);
    suite_add_tcase(s, random);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(flow_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
