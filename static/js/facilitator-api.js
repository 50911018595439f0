// The facilitator's HTTP API (docs/api.md, Workshops): cookie session plus the CSRF token
// in a header on every state-changing request. Errors are api.js's ApiError.

import { ApiError } from './api.js';

/** The CSRF token of this page's session (from login or GET /api/facilitator/session). */
const session = { csrf: null };

export function setCsrf(csrf) {
    session.csrf = csrf;
}

async function send(path, init) {
    try {
        return await fetch(path, { cache: 'no-store', credentials: 'same-origin', ...init });
    } catch (e) {
        if (e?.name === 'AbortError') {
            throw e;
        }
        throw new ApiError({ status: 0, code: 'network', message: 'the server cannot be reached' });
    }
}

async function errorFrom(response) {
    let body = null;
    try {
        body = await response.json();
    } catch {
        /* not JSON: keep the status */
    }
    const retry = response.headers.get('Retry-After');
    return new ApiError({ status: response.status, code: body?.error?.code ?? `http_${response.status}`,
        message: body?.error?.message, retryAfter: retry && /^\d+$/.test(retry) ? Number(retry) : null });
}

async function request(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
    }
    if (method !== 'GET' && session.csrf) {
        headers['X-CSRF-Token'] = session.csrf;
    }
    const response = await send(path, { method, headers,
        body: body === undefined ? undefined : JSON.stringify(body) });
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

const workshopPath = (id) => `/api/workshops/${encodeURIComponent(id)}`;

export const login = (name, password) => request('POST', '/api/facilitator/login', { name, password });
export const currentSession = () => request('GET', '/api/facilitator/session');
export const logout = () => request('POST', '/api/facilitator/logout');
export const listWorkshops = async () => (await request('GET', '/api/workshops')).workshops;
export const createWorkshop = (fields) => request('POST', '/api/workshops', fields);
export const getWorkshop = (id) => request('GET', workshopPath(id));
export const act = (id, action, more = {}) =>
    request('POST', `${workshopPath(id)}/actions`, { action, ...more });
export const qrUrl = (id) => `${workshopPath(id)}/qr.svg`;

/** Open the workshop's snapshot stream (text/event-stream; the cookie authenticates). */
export async function openWorkshopStream(id, signal) {
    const response = await send(`${workshopPath(id)}/events`,
        { method: 'GET', headers: { Accept: 'text/event-stream' }, signal });
    if (!response.ok) {
        throw await errorFrom(response);
    }
    if (!response.body) {
        throw new ApiError({ status: response.status, code: 'bad_response' });
    }
    return response;
}
