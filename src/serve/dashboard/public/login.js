// Login page: posts JSON to /login (rate-limited on the server) and goes to the dashboard.
/* global document, window, fetch, FormData */

const errorBox = document.getElementById('login-error');

async function submit(event, body) {
  event.preventDefault();
  errorBox.hidden = true;
  const res = await fetch('/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
  });
  if (res.ok) {
    window.location.assign('/');
    return;
  }
  const data = await res.json().catch(() => ({}));
  errorBox.textContent =
    res.status === 429
      ? 'Too many attempts. Wait a minute and try again.'
      : data.error || `Login failed (HTTP ${res.status}).`;
  errorBox.hidden = false;
}

document.getElementById('login-user').addEventListener('submit', (event) => {
  const form = new FormData(event.target);
  void submit(event, { user: form.get('user'), password: form.get('password') });
});
document.getElementById('login-token').addEventListener('submit', (event) => {
  const form = new FormData(event.target);
  void submit(event, { token: form.get('token') });
});
