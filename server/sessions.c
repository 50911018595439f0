#include "thou/sessions.h"
#include "thou/mem.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096

struct slot {
    uint8_t token_hash[THOU_HASH_LEN];
    bool used;
    struct thou_session session;
};

struct thou_sessions {
    pthread_mutex_t lock;
    struct slot slots[SLOTS];
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

/* Token hashes are uniformly random: their first bytes are the slot. */
static struct slot *slot_of(struct thou_sessions *sessions, const uint8_t *token_hash)
{
    uint32_t index;
    memcpy(&index, token_hash, sizeof(index));
    return &sessions->slots[index % SLOTS];
}

bool thou_sessions_get(struct thou_sessions *sessions, const uint8_t token_hash[THOU_HASH_LEN],
                       const char *room_id, struct thou_session *out)
{
    pthread_mutex_lock(&sessions->lock);
    struct slot *slot = slot_of(sessions, token_hash);
    /* The hash of a 256-bit random token, not the token: comparing it in
     * variable time reveals nothing an attacker could use. */
    bool found = slot->used && memcmp(slot->token_hash, token_hash, THOU_HASH_LEN) == 0 &&
                 strcmp(slot->session.room_id, room_id) == 0;
    if (found)
        *out = slot->session;
    pthread_mutex_unlock(&sessions->lock);
    return found;
}

void thou_sessions_put(struct thou_sessions *sessions, const uint8_t token_hash[THOU_HASH_LEN],
                       const struct thou_session *session)
{
    pthread_mutex_lock(&sessions->lock);
    struct slot *slot = slot_of(sessions, token_hash);
    memcpy(slot->token_hash, token_hash, THOU_HASH_LEN);
    slot->session = *session;
    slot->used = true;
    pthread_mutex_unlock(&sessions->lock);
}
