/**
 * What a per-user API token costs to check, for docs/dashboard.md: one scrypt verification, the
 * first use of a token held by the last of USERS users (checked against every hash), and a use
 * answered from the cache of verified tokens.
 *
 *   node --import tsx scripts/token-check-timing.ts [USERS]
 */
import { hashPassword, newApiToken, verifyPassword } from '../src/runtime/password.js';
import { UserTokens } from '../src/serve/user-tokens.js';

const userCount = Number(process.argv[2] ?? 5);
const tokens = Array.from({ length: userCount }, () => newApiToken());
const users = await Promise.all(
  tokens.map(async (token, i) => ({ name: `user-${i}`, api_token_hash: await hashPassword(token) })),
);
const last = tokens[userCount - 1]!;

let start = performance.now();
for (let i = 0; i < 10; i++) await verifyPassword(last, users[userCount - 1]!.api_token_hash);
const oneCheckMs = (performance.now() - start) / 10;

const userTokens = new UserTokens(() => users);
start = performance.now();
await userTokens.verify(last);
const firstUseMs = performance.now() - start;

start = performance.now();
for (let i = 0; i < 10_000; i++) await userTokens.verify(last);
const cachedMs = (performance.now() - start) / 10_000;

console.log(`one scrypt check:          ${oneCheckMs.toFixed(1)} ms`);
console.log(`first use, user ${userCount} of ${userCount}:  ${firstUseMs.toFixed(1)} ms`);
console.log(`later uses (cache):       ${(cachedMs * 1000).toFixed(1)} µs`);
