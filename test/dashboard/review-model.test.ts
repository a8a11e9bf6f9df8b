// Through the HTTP routes (their response schemas drop unlisted fields): a review and the result
// detail name the model version and threshold, and the review export carries them.
import t from 'tap';
import { startFixtureServer } from './fixture-server.js';
import { sample } from './memory-deps.js';

t.test('detail, review history and export name the model version and threshold', async (t) => {
  const s = await startFixtureServer({ loopback: true, listen: false });
  t.teardown(() => s.close());
  const r = s.deps.addResult({ file: 'a.jpg', className: 'Pro', pBall: 0.97, imagePath: sample('Pro', 0) });
  await s.deps.settled();
  const host = 'localhost';
  const session = await s.app.inject({ url: '/api/dashboard/session', headers: { host } });
  const cookie = String([session.headers['set-cookie']].flat()[0]).split(';')[0]!;
  const review = await s.app.inject({
    method: 'POST',
    url: `/api/dashboard/results/${r.id}/review`,
    headers: { host, cookie, 'x-csrf-token': session.json().csrfToken as string },
    payload: { reviewer: 'Dr A', class: 'Pro', note: '' },
  });
  t.equal(review.statusCode, 200);
  t.match(review.json(), { reviewer: 'Dr A', modelVersion: '0.0.1', threshold: 0.6 });

  const detail = (await s.app.inject({ url: `/api/dashboard/results/${r.id}`, headers: { host } })).json();
  t.match(detail.model, { name: 'tiny', version: '0.0.1' });
  t.equal(detail.threshold, 0.6);
  t.match(detail.reviews, [{ reviewer: 'Dr A', modelVersion: '0.0.1', threshold: 0.6 }]);
  t.match(detail.review, { modelVersion: '0.0.1', threshold: 0.6 });

  const json = (
    await s.app.inject({ url: '/api/dashboard/reviews/export?format=json', headers: { host } })
  ).json();
  t.match(json, [{ resultId: r.id, modelVersion: '0.0.1', threshold: 0.6 }]);
  const csv = (
    await s.app.inject({ url: '/api/dashboard/reviews/export?format=csv', headers: { host } })
  ).body.split('\r\n');
  t.match(csv[0], /,model_version,threshold$/);
  t.match(csv[1], /,"0\.0\.1","0\.6"$/);
});
