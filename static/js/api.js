// The HTTP API of thou (DESIGN.md §8), as small async functions. Bearer tokens travel only
// in the Authorization header, never in a URL. Every failure is an ApiError with a stable
// `code`: the server's error code, or 'network' when no answer came at all.

/** A failed API call. status 0 means the network failed (no HTTP answer). */
export class ApiError extends Error {
    constructor({ status, code, message, retryAfter = null }) {
        super(message || code);
        this.name = 'ApiError';
        this.status = status;
        this.code = code;
        this.retryAfter = retryAfter; /* seconds, from Retry-After, or null */
    }

    /** True when trying again later may succeed: network trouble, 5xx, 429. */
    get retryable() {
        return this.status === 0 || this.status === 429 || this.status >= 500;
    }
}

function parseRetryAfter(value) {
    if (value === null || !/^\d{1,6}$/.test(value.trim())) {
        return null;
    }
    return Number(value.trim());
}

async function errorFrom(response) {
    let body = null;
    try {
        body = await response.json();
    } catch {
        /* not JSON: keep the status */
    }
    return new ApiError({
        status: response.status,
        code: body?.error?.code ?? `http_${response.status}`,
        message: body?.error?.message,
        retryAfter: parseRetryAfter(response.headers.get('Retry-After')),
    });
}

/** fetch() that turns a network failure into ApiError('network'); aborts pass through. */
async function send(path, init) {
    try {
        return await fetch(path, { cache: 'no-store', credentials: 'omit', ...init });
    } catch (e) {
        if (e?.name === 'AbortError') {
            throw e;
        }
        throw new ApiError({ status: 0, code: 'network', message: 'the server cannot be reached' });
    }
}

async function request(method, path, { token, body, signal } = {}) {
    const headers = { Accept: 'application/json' };
    if (token) {
        headers.Authorization = `Bearer ${token}`;
    }
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
    }
    const response = await send(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
    });
    if (!response.ok) {
        throw await errorFrom(response);
    }
    if (response.status === 204) {
        return null;
    }
    try {
        return await response.json();
    } catch {
        throw new ApiError({ status: response.status, code: 'bad_response' });
    }
}

const roomPath = (room) => `/api/rooms/${encodeURIComponent(room)}`;

/** GET /api/sets → [{id, version, title, description, minutes, stages, questions}]. */
export async function listSets() {
    return (await request('GET', '/api/sets')).sets;
}

/** GET /api/sets/{id} → the whole set with stages and question texts. */
export function getSet(id) {
    return request('GET', `/api/sets/${encodeURIComponent(id)}`);
}

/** POST /api/rooms → {room, token, role: "A"} (and `study` when one is named). */
export function createRoom(set, joinVerifier, study = null) {
    const body = { set, join_verifier: joinVerifier };
    if (study) {
        body.study = study;
    }
    return request('POST', '/api/rooms', { body });
}

/**
 * POST /api/rooms/{room}/join with the hash of a token this browser drew → {room, role: "B"}.
 * The same hash again is answered 200 again (a retry); another one is 409 room_full.
 */
export function joinRoom(room, joinSecret, tokenHash) {
    return request('POST', `${roomPath(room)}/join`,
        { body: { join_secret: joinSecret, token_hash: tokenHash } });
}

/**
 * POST /api/rooms/{room}/seat as the seat's current token, with the hash of a token this
 * browser drew → {room, role}: the seat is this browser's from now on (docs/api.md). The
 * same hash again is answered 200 again; a token that holds no seat any more is 401.
 */
export function moveSeat(room, oldToken, tokenHash) {
    return request('POST', `${roomPath(room)}/seat`,
        { token: oldToken, body: { token_hash: tokenHash } });
}

/** GET /api/rooms/{room} → the room's state, including `flow`. */
export function getRoom(room, token) {
    return request('GET', roomPath(room), { token });
}

/** POST /api/rooms/{room}/events → {seq}, sent only after the server committed it. */
export function postEvent(room, token, event) {
    return request('POST', `${roomPath(room)}/events`, { token, body: event });
}

/** DELETE /api/rooms/{room}: erase everything of the room. */
export function eraseRoom(room, token) {
    return request('DELETE', roomPath(room), { token });
}

/**
 * Open the event stream (GET /api/rooms/{room}/events) after event `lastId`. Resolves to
 * the Response, whose body is text/event-stream; rejects with ApiError otherwise.
 */
export async function openStream(room, token, lastId, signal) {
    const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${token}` };
    if (lastId > 0) {
        headers['Last-Event-ID'] = String(lastId);
    }
    const response = await send(`${roomPath(room)}/events`, { method: 'GET', headers, signal });
    if (!response.ok) {
        throw await errorFrom(response);
    }
    if (!response.body) {
        throw new ApiError({ status: response.status, code: 'bad_response' });
    }
    return response;
}

/** POST /api/rooms/{room}/research: one research copy, sealed to the study key. */
export function postResearchCopy(room, token, step, sealed) {
    return request('POST', `${roomPath(room)}/research`, { token, body: { step, sealed } });
}

/** DELETE /api/rooms/{room}/research: a withdrawal deletes the room's copies. */
export function deleteResearchCopies(room, token) {
    return request('DELETE', `${roomPath(room)}/research`, { token });
}

/** POST /api/rooms/{room}/research/release: release my copies, leaving some out. Final. */
export function releaseResearchCopies(room, token, leaveOut) {
    return request('POST', `${roomPath(room)}/research/release`,
        { token, body: { leave_out: leaveOut } });
}

/* ---------------------------------------------------------------- workshops (participants) */

/**
 * POST /api/workshops/join with the hash of a token this browser drew →
 * {participant, title, status: "waiting"} or {…, status: "paired", room, role}. The same
 * hash again gets the same answer (a retry keeps one place in the queue).
 */
export function joinWorkshop(code, tokenHash) {
    return request('POST', '/api/workshops/join', { body: { code, token_hash: tokenHash } });
}

/** POST /api/workshops/rejoin: a person left behind goes back into the queue, new seat. */
export function rejoinWorkshop(oldToken, tokenHash) {
    return request('POST', '/api/workshops/rejoin',
        { token: oldToken, body: { token_hash: tokenHash } });
}

/** Open GET /api/workshops/wait (text/event-stream): waiting, paired, note, timer, ended. */
export async function openWaitStream(token, signal) {
    const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${token}` };
    const response = await send('/api/workshops/wait', { method: 'GET', headers, signal });
    if (!response.ok) {
        throw await errorFrom(response);
    }
    if (!response.body) {
        throw new ApiError({ status: response.status, code: 'bad_response' });
    }
    return response;
}
