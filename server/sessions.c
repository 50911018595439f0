#include "thou/sessions.h"
#include "thou/mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Set-associative: a token maps to one set of WAYS slots, so two tokens
 * whose hashes collide do not evict each other on every request (with one
 * slot per set, 400 participants already thrashed ~10 % of lookups). */
#define SLOTS 8192
#define WAYS  8

struct slot {
    uint8_t token_hash[THOU_HASH_LEN];
    bool used;
    struct thou_session session;
};

struct thou_sessions {
    pthread_mutex_t lock;
    struct slot slots[SLOTS];
    unsigned victim;     /* the way a full set gives up next */
    unsigned long epoch; /* tokens forgotten so far */
};

struct thou_sessions *thou_sessions_new(void)
{
    struct thou_sessions *sessions = thou_xcalloc(1, sizeof(*sessions));
    pthread_mutex_init(&sessions->lock, NULL);
    return sessions;
}

void thou_sessions_free(struct thou_sessions *sessions)
{
    if (!sessions)
        return;
    pthread_mutex_destroy(&sessions->lock);
    free(sessions);
}

/* Token hashes are uniformly random: their first bytes pick the set. */
static struct slot *set_of(struct thou_sessions *sessions, const uint8_t *token_hash)
{
    uint32_t index;
    memcpy(&index, token_hash, sizeof(index));
    return &sessions->slots[(index % (SLOTS / WAYS)) * WAYS];
}

/* The slot holding token_hash in its set, or NULL. */
static struct slot *find(struct slot *set, const uint8_t *token_hash)
{
    /* The hash of a 256-bit random token, not the token: comparing it in
     * variable time reveals nothing an attacker could use. */
    for (size_t i = 0; i < WAYS; i++)
        if (set[i].used && memcmp(set[i].token_hash, token_hash, THOU_HASH_LEN) == 0)
            return &set[i];
    return NULL;
}

bool thou_sessions_get(struct thou_sessions *sessions, const uint8_t token_hash[THOU_HASH_LEN],
                       const char *room_id, struct thou_session *out)
{
    pthread_mutex_lock(&sessions->lock);
    struct slot *slot = find(set_of(sessions, token_hash), token_hash);
    bool found = slot && strcmp(slot->session.room_id, room_id) == 0;
    if (found)
        *out = slot->session;
    pthread_mutex_unlock(&sessions->lock);
    return found;
}

/* Called with the lock held. */
static void put_locked(struct thou_sessions *sessions, const uint8_t token_hash[THOU_HASH_LEN],
                       const struct thou_session *session)
{
    struct slot *set = set_of(sessions, token_hash);
    struct slot *slot = find(set, token_hash);
    for (size_t i = 0; !slot && i < WAYS; i++)
        if (!set[i].used)
            slot = &set[i];
    if (!slot)
        slot = &set[sessions->victim++ % WAYS];
    memcpy(slot->token_hash, token_hash, THOU_HASH_LEN);
    slot->session = *session;
    slot->used = true;
}

void thou_sessions_put(struct thou_sessions *sessions, const uint8_t token_hash[THOU_HASH_LEN],
                       const struct thou_session *session)
{
    pthread_mutex_lock(&sessions->lock);
    put_locked(sessions, token_hash, session);
    pthread_mutex_unlock(&sessions->lock);
}

unsigned long thou_sessions_epoch(struct thou_sessions *sessions)
{
    pthread_mutex_lock(&sessions->lock);
    unsigned long epoch = sessions->epoch;
    pthread_mutex_unlock(&sessions->lock);
    return epoch;
}

void thou_sessions_put_since(struct thou_sessions *sessions,
                             const uint8_t token_hash[THOU_HASH_LEN],
                             const struct thou_session *session, unsigned long epoch)
{
    pthread_mutex_lock(&sessions->lock);
    if (sessions->epoch == epoch)
        put_locked(sessions, token_hash, session);
    pthread_mutex_unlock(&sessions->lock);
}

void thou_sessions_forget(struct thou_sessions *sessions, const uint8_t token_hash[THOU_HASH_LEN])
{
    pthread_mutex_lock(&sessions->lock);
    struct slot *slot = find(set_of(sessions, token_hash), token_hash);
    if (slot)
        slot->used = false;
    sessions->epoch++;
    pthread_mutex_unlock(&sessions->lock);
}

void thou_sessions_forget_seat(struct thou_sessions *sessions, const char *room_id, char role)
{
    pthread_mutex_lock(&sessions->lock);
    /* Rare (a seat move on another instance): a walk over the whole cache. */
    for (size_t i = 0; i < SLOTS; i++) {
        struct slot *slot = &sessions->slots[i];
        if (slot->used && slot->session.role == role && strcmp(slot->session.room_id, room_id) == 0)
            slot->used = false;
    }
    sessions->epoch++;
    pthread_mutex_unlock(&sessions->lock);
}

void thou_sessions_forget_all(struct thou_sessions *sessions)
{
    pthread_mutex_lock(&sessions->lock);
    for (size_t i = 0; i < SLOTS; i++)
        sessions->slots[i].used = false;
    sessions->epoch++;
    pthread_mutex_unlock(&sessions->lock);
}
