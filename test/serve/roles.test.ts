// Role checks and per-user API tokens outside the dashboard: the token cache (one slow check per
// token, not per request; a changed or removed user loses her token at once; bounded), the ops
// API's auth hook setting request.actor, and requireRole's 401 / 403 replies.
import Fastify from 'fastify';
import t from 'tap';
import { createAuthHook, type AuthPolicy } from '../../src/serve/auth.js';
import { opsErrorHandler } from '../../src/serve/ops-schemas.js';
import { decorateActor, hasRole, requireRole } from '../../src/serve/roles.js';
import { UserTokens, type TokenHolder } from '../../src/serve/user-tokens.js';
import { hashPassword, newApiToken, verifyPassword } from '../../src/runtime/password.js';

const SHARED_TOKEN = 'a-long-enough-secret-token';
const token = { vera: newApiToken(), rex: newApiToken(), ada: newApiToken() };
const hashes = {
  vera: await hashPassword(token.vera),
  rex: await hashPassword(token.rex),
  ada: await hashPassword(token.ada),
};

function usersList(): TokenHolder[] {
  return [
    { name: 'vera', role: 'viewer', api_token_hash: hashes.vera },
    { name: 'rex', role: 'reviewer', api_token_hash: hashes.rex },
    { name: 'ada', role: 'admin', api_token_hash: hashes.ada },
    { name: 'nurse', role: 'viewer', api_token_hash: null },
  ];
}

/** UserTokens over a list the test may change, counting the slow hash checks. */
function countingTokens(users: TokenHolder[], cacheSize?: number) {
  const counter = { slowChecks: 0 };
  const tokens = new UserTokens(
    () => users,
    cacheSize,
    async (given, hash) => {
      counter.slowChecks++;
      return verifyPassword(given, hash);
    },
  );
  return { tokens, counter };
}

t.test('a token is checked against the hashes once, then answered from the cache', async (t) => {
  const { tokens, counter } = countingTokens(usersList());
  t.same(await tokens.verify(token.rex), { name: 'rex', role: 'reviewer' });
  t.equal(counter.slowChecks, 2, 'first use: vera then rex (users without a token are skipped)');
  for (let i = 0; i < 20; i++) t.same(await tokens.verify(token.rex), { name: 'rex', role: 'reviewer' });
  t.equal(counter.slowChecks, 2, 'twenty more requests cost no slow check');
  t.equal(await tokens.verify(newApiToken()), null, 'an unknown token matches nobody');
  t.equal(counter.slowChecks, 5, 'it was checked against all three hashes');
  t.equal(await tokens.verify(token.rex.toUpperCase()), null, 'tokens are case-sensitive');
  t.equal(tokens.cachedCount, 1, 'wrong tokens are not remembered');
});

t.test('simultaneous first requests with one token share one check', async (t) => {
  const { tokens, counter } = countingTokens(usersList());
  const owners = await Promise.all(Array.from({ length: 5 }, () => tokens.verify(token.ada)));
  t.same(new Set(owners.map((o) => o?.name)), new Set(['ada']));
  t.equal(counter.slowChecks, 3, 'one pass over the hashes, not five');
});

t.test('a cached token follows the config: role changes apply, a new token or removal ends it', async (t) => {
  const users = usersList();
  const { tokens } = countingTokens(users);
  t.same(await tokens.verify(token.vera), { name: 'vera', role: 'viewer' });
  users[0]!.role = 'reviewer';
  t.same(await tokens.verify(token.vera), { name: 'vera', role: 'reviewer' }, 'promoted at once');
  users[0]!.role = undefined;
  t.same(await tokens.verify(token.vera), { name: 'vera', role: 'reviewer' }, 'no role: reviewer');

  t.same(await tokens.verify(token.rex), { name: 'rex', role: 'reviewer' });
  users[1]!.api_token_hash = await hashPassword(newApiToken());
  t.equal(await tokens.verify(token.rex), null, 'a user given a new token: the old one is refused');
  t.same(await tokens.verify(token.ada), { name: 'ada', role: 'admin' });
  users.splice(2, 1);
  t.equal(await tokens.verify(token.ada), null, 'a removed user: her token is refused');
  users.push({ name: 'ada', role: 'viewer', api_token_hash: null });
  t.equal(await tokens.verify(token.ada), null, 'a new entry with her name but no token: still refused');
});

t.test('the cache is bounded, and keeps the most recently used', async (t) => {
  const { tokens, counter } = countingTokens(usersList(), 2);
  await tokens.verify(token.vera);
  await tokens.verify(token.rex);
  await tokens.verify(token.vera);
  await tokens.verify(token.ada);
  t.equal(tokens.cachedCount, 2);
  const before = counter.slowChecks;
  await tokens.verify(token.vera);
  await tokens.verify(token.ada);
  t.equal(counter.slowChecks, before, 'vera (used last) and ada stayed');
  await tokens.verify(token.rex);
  t.ok(counter.slowChecks > before, 'rex, the longest unused, was dropped and checked again');
});

async function server(t: { teardown(fn: () => unknown): void }, policy: Partial<AuthPolicy> = {}) {
  const app = Fastify({ logger: false });
  decorateActor(app);
  app.setErrorHandler(opsErrorHandler);
  const auth: AuthPolicy = {
    loopback: false,
    token: SHARED_TOKEN,
    userTokens: new UserTokens(usersList),
    authenticators: [],
    ...policy,
  };
  await app.register(async (scope) => {
    scope.addHook('onRequest', createAuthHook(auth));
    scope.get('/read', async (req) => ({ actor: req.actor, reviewer: hasRole(req, 'reviewer') }));
    scope.post('/write', { preHandler: requireRole('reviewer') }, async (req) => ({ by: req.actor?.name }));
    scope.post('/admin', { onRequest: requireRole('admin') }, async () => ({ ok: true }));
  });
  // Outside any auth hook nobody is known: requireRole itself answers 401.
  app.post('/unguarded', { preHandler: requireRole('viewer') }, async () => ({ ok: true }));
  t.teardown(() => app.close());
  return app;
}

const as = (value: string) => ({ authorization: `Bearer ${value}` });

t.test('the ops auth hook sets request.actor from the shared token or a user token', async (t) => {
  const app = await server(t);
  const rex = await app.inject({ url: '/read', headers: as(token.rex) });
  t.same(rex.json(), {
    actor: { name: 'rex', role: 'reviewer', named: true, via: 'api-token' },
    reviewer: true,
  });
  const shared = await app.inject({ url: '/read', headers: as(SHARED_TOKEN) });
  t.same(shared.json().actor, { name: 'token', role: 'reviewer', named: false, via: 'shared-token' });
  const vera = await app.inject({ url: '/read', headers: as(token.vera) });
  t.equal(vera.json().reviewer, false, 'hasRole: a viewer is not a reviewer');
  const wrong = await app.inject({ url: '/read', headers: as(newApiToken()) });
  t.equal(wrong.statusCode, 401);
  t.equal(wrong.headers['www-authenticate'], 'Bearer realm="blastwatch"');
  t.equal((await app.inject({ url: '/read' })).statusCode, 401, 'no credentials');
});

t.test('requireRole: 403 naming the role needed; admin includes reviewer', async (t) => {
  const app = await server(t);
  const viewer = await app.inject({ method: 'POST', url: '/write', headers: as(token.vera) });
  t.equal(viewer.statusCode, 403);
  t.same(viewer.json(), {
    error: 'forbidden',
    message: 'this needs the reviewer role; user "vera" has the viewer role',
  });
  t.same((await app.inject({ method: 'POST', url: '/write', headers: as(token.rex) })).json(), { by: 'rex' });
  t.same((await app.inject({ method: 'POST', url: '/write', headers: as(token.ada) })).json(), { by: 'ada' });
  const reviewerAsAdmin = await app.inject({ method: 'POST', url: '/admin', headers: as(token.rex) });
  t.equal(reviewerAsAdmin.statusCode, 403);
  t.match(reviewerAsAdmin.json().message, /needs the admin role; user "rex" has the reviewer role/);
  t.equal((await app.inject({ method: 'POST', url: '/admin', headers: as(token.ada) })).statusCode, 200);
  const sharedAsAdmin = await app.inject({ method: 'POST', url: '/admin', headers: as(SHARED_TOKEN) });
  t.equal(sharedAsAdmin.statusCode, 403, 'the shared token is not admin by default');
  const unguarded = await app.inject({ method: 'POST', url: '/unguarded' });
  t.equal(unguarded.statusCode, 401, 'no identity at all: 401, not 403');
  t.match(unguarded.json().message, /needs the viewer role/);
});

t.test('shared token role and loopback: as configured, and the local bench is admin', async (t) => {
  const viewerToken = await server(t, { tokenRole: 'viewer' });
  const refused = await viewerToken.inject({ method: 'POST', url: '/write', headers: as(SHARED_TOKEN) });
  t.equal(refused.statusCode, 403);
  t.match(refused.json().message, /the shared access token has the viewer role/);

  const loopback = await server(t, { loopback: true });
  const local = await loopback.inject({ method: 'POST', url: '/admin' });
  t.equal(local.statusCode, 200, 'nobody logs in on loopback: the local actor may do everything');
  t.same((await loopback.inject({ url: '/read' })).json().actor, {
    name: 'local',
    role: 'admin',
    named: false,
    via: 'loopback',
  });
  const named = await loopback.inject({ method: 'POST', url: '/write', headers: as(token.vera) });
  t.equal(named.statusCode, 403, 'on loopback too, a token names its user and her role');
});

t.test('an authenticator (the dashboard session) hands over its actor', async (t) => {
  const app = await server(t, {
    authenticators: [
      (req) =>
        req.headers['x-test-session'] === 'ada'
          ? { name: 'ada', role: 'admin', named: true, via: 'password' }
          : null,
    ],
  });
  t.equal(
    (await app.inject({ method: 'POST', url: '/admin', headers: { 'x-test-session': 'ada' } })).statusCode,
    200,
  );
  const legacy = await server(t, { authenticators: [() => true] });
  t.same((await legacy.inject({ url: '/read' })).json().reviewer, false, 'an unnamed "true" may only read');
});
