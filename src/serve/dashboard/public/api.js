// The one way the page talks to the server: same-origin fetch with the session's CSRF token on
// every write, a 401 sends the browser to the login page, and an error reply becomes an Error
// with the server's message and the HTTP status (a view tells a 409 conflict from other errors).
/* global window, fetch */
import { state } from './state.js';

export async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (options.method && options.method !== 'GET' && state.session?.csrfToken) {
    headers['x-csrf-token'] = state.session.csrfToken;
  }
  const res = await fetch(path, { credentials: 'same-origin', ...options, headers });
  if (res.status === 401) {
    window.location.assign('/login');
    throw new Error('login required');
  }
  const data = res.headers.get('content-type')?.includes('json') ? await res.json() : null;
  if (!res.ok) {
    const err = new Error((data && data.error) || `HTTP ${res.status}`);
    err.status = res.status;
    err.body = data;
    throw err;
  }
  return data;
}

export function imageUrl(id, kind) {
  return `/api/dashboard/results/${encodeURIComponent(id)}/image/${kind}`;
}

/** JSON POST, the shape of every write of the specimen API. */
export function postJson(path, body) {
  return api(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
}
