// The one way the page talks to the server: same-origin fetch with the session's CSRF token on
// every write, a 401 sends the browser to the login page, and an error reply becomes an Error
// with the server's message.
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
  if (!res.ok) throw new Error((data && data.error) || `HTTP ${res.status}`);
  return data;
}

export function imageUrl(id, kind) {
  return `/api/dashboard/results/${encodeURIComponent(id)}/image/${kind}`;
}
