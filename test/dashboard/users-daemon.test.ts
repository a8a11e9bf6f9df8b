// The daemon's wiring of named users: http.users from the config reaches both the ops API and
// the dashboard, so one user token opens /api/results and signs a review as its user, and a
// viewer's token reads but cannot review.
import t from 'tap';
import { hashPassword, newApiToken } from '../../src/runtime/password.js';
import { startDaemonHarness } from './harness.js';
import { sample } from './memory-deps.js';

const token = { vera: newApiToken(), rex: newApiToken() };

t.test('user tokens on a LAN-bound daemon: ops API and dashboard, acting as their users', async (t) => {
  const harness = await startDaemonHarness({
    host: '0.0.0.0',
    users: [
      { name: 'vera', role: 'viewer', api_token_hash: await hashPassword(token.vera) },
      { name: 'rex', api_token_hash: await hashPassword(token.rex) },
    ],
  });
  t.teardown(() => harness.close());
  const as = (name: keyof typeof token) => ({ authorization: `Bearer ${token[name]}` });
  await harness.drop(sample('Pro', 0), 'daemon-roles.jpg');

  const results = await fetch(`${harness.url}/api/results`, { headers: as('vera') });
  t.equal(results.status, 200, "the ops API takes a viewer's token");
  const [result] = (await results.json()) as { id: number; file: string }[];
  t.equal(result?.file, 'daemon-roles.jpg');
  const anonymous = await fetch(`${harness.url}/api/results`);
  t.equal(anonymous.status, 401, 'and nothing without one');
  await anonymous.body?.cancel();

  const review = (name: keyof typeof token) =>
    fetch(`${harness.url}/api/dashboard/results/${result!.id}/review`, {
      method: 'POST',
      headers: { ...as(name), 'content-type': 'application/json' },
      body: JSON.stringify({ class: 'Pro-B', note: 'checked', reviewer: 'typed name' }),
    });
  const byViewer = await review('vera');
  t.equal(byViewer.status, 403, 'a viewer may not review');
  t.match(((await byViewer.json()) as { error: string }).error, /needs the reviewer role/);
  const byReviewer = await review('rex');
  t.equal(byReviewer.status, 200, 'an entry without a role reviews (reviewer)');
  t.equal(((await byReviewer.json()) as { reviewer: string }).reviewer, 'rex', 'signed with the user name');
});
