import { z } from 'zod';
import { USER_ROLES } from '../domain/roles.js';
import { compileAccessionPattern } from '../domain/specimen-assignment.js';
import { isValidHash } from '../runtime/password.js';

/**
 * Value checks for config keys that a type alone does not make safe: durations that drive
 * timers, secrets that must be usable, MQTT topic prefixes. Each message says what a valid value
 * looks like, after the key path that loadConfig puts in front of it.
 */

const MS_PER_DAY = 86_400_000;
/** Node's timers hold a signed 32-bit millisecond count; a longer delay fires after 1 ms, so a
 * too-large interval turns into a busy loop. Every duration bound below stays far under it. */
export const TIMER_MAX_MS = 2 ** 31 - 1;

function human(ms: number): string {
  if (ms === 0) return '0';
  if (ms % MS_PER_DAY === 0) return `${ms / MS_PER_DAY} day${ms === MS_PER_DAY ? '' : 's'}`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

function duration(unit: 's' | 'ms', min: number, max: number) {
  const scale = unit === 's' ? 1000 : 1;
  if (max * scale > TIMER_MAX_MS) throw new RangeError(`duration bound ${max} ${unit} exceeds Node's timers`);
  const range = `a whole number of ${unit === 's' ? 'seconds' : 'milliseconds'} from ${min} to ${max} (${human(min * scale)} to ${human(max * scale)})`;
  return z.number(range).int(range).min(min, range).max(max, range);
}

/** A duration in whole seconds, from min to max inclusive. */
export const seconds = (min: number, max: number) => duration('s', min, max);
/** A duration in whole milliseconds, from min to max inclusive. */
export const millis = (min: number, max: number) => duration('ms', min, max);

/**
 * The shared LAN token: it travels as `Authorization: Bearer <token>` (src/serve/auth.ts reads
 * one run of non-space characters), so a token with whitespace or non-ASCII characters can never
 * be sent, and a short or one-character token is guessed in no time.
 */
export const authToken = z.string().superRefine((token, ctx) => {
  if (!/^[\x21-\x7e]*$/.test(token))
    ctx.addIssue({
      code: 'custom',
      message: 'printable ASCII without spaces only (it is sent as "Authorization: Bearer <token>")',
    });
  else if (token.length < 16) ctx.addIssue({ code: 'custom', message: 'at least 16 characters' });
  else if (new Set(token).size === 1)
    ctx.addIssue({ code: 'custom', message: 'a random string, not one character repeated' });
});

/** A stored password as `blastwatch hash-password` writes it (scrypt:N:r:p:salt:hash). */
export const passwordHash = z.string().refine(isValidHash, "not a hash made by 'blastwatch hash-password'");

/**
 * MQTT topic names must not contain the wildcards + and # or NUL (MQTT 3.1.1 / 5.0 §4.7), and
 * topics starting with $ belong to the broker ($SYS), so a client must not publish there. Spaces
 * and control characters are refused as well (legal, but a typo in practice), and so is a
 * trailing slash (the topic would get an empty level).
 */
export const topicPrefix = z
  .string()
  .min(1)
  .max(200)
  .regex(
    // eslint-disable-next-line no-control-regex
    /^(?!\$)[^#+\s\u0000-\u001f\u007f-\u009f]*[^/#+\s\u0000-\u001f\u007f-\u009f]$/,
    'a topic prefix without the wildcards + and #, NUL, control characters, spaces, a leading $ or a trailing slash',
  );

/** A role from USER_ROLES (src/domain/roles.ts): viewer, reviewer or admin. */
export const userRole = z.enum(USER_ROLES, {
  error: () => `one of ${USER_ROLES.join(', ')}`,
});

/**
 * One named user. `role` may be left out (DEFAULT_USER_ROLE applies: entries written before roles
 * existed keep what they could do). Either hash may be absent or null: a person who only logs in
 * needs no token, a script that only calls the API needs no password; one of them must be set.
 */
const httpUser = z
  .strictObject({
    name: z.string().min(1).max(64),
    role: userRole.optional(),
    password_hash: passwordHash.nullable().optional(),
    api_token_hash: passwordHash.nullable().optional(),
  })
  .superRefine((user, ctx) => {
    if (!user.password_hash && !user.api_token_hash)
      ctx.addIssue({
        code: 'custom',
        path: ['password_hash'],
        message:
          'a user needs password_hash, api_token_hash or both (make them with blastwatch hash-password)',
      });
  });

/**
 * The user list: a name is who signs a review or a specimen, so two entries with one name would
 * make the record ambiguous; two entries with the same token hash are a copy-paste slip (each hash
 * has its own salt, so two tokens never hash alike) that would let one token act as two users.
 */
export const httpUsers = z.array(httpUser).superRefine((users, ctx) => {
  const firstByName = new Map<string, number>();
  const firstByTokenHash = new Map<string, number>();
  users.forEach((user, i) => {
    const sameName = firstByName.get(user.name);
    if (sameName === undefined) firstByName.set(user.name, i);
    else
      ctx.addIssue({
        code: 'custom',
        path: [i, 'name'],
        message: `"${user.name}" is already the name of http.users.${sameName}: names must be unique`,
      });
    if (!user.api_token_hash) return;
    const sameToken = firstByTokenHash.get(user.api_token_hash);
    if (sameToken === undefined) firstByTokenHash.set(user.api_token_hash, i);
    else
      ctx.addIssue({
        code: 'custom',
        path: [i, 'api_token_hash'],
        message: `the same hash as http.users.${sameToken}: give each user a token of her own (blastwatch hash-password --new-token)`,
      });
  });
});

/**
 * `specimen:`: how images are grouped into specimens and the verdict rule. The pattern is compiled
 * here, so a bad regex or one without its `accession` group stops the daemon at start-up with
 * the key path, instead of leaving every image unassigned.
 */
export const specimenSection = z
  .strictObject({
    assign: z.enum(['folder', 'pattern', 'session']),
    pattern: z.string().min(1).nullable(),
    rule: z.strictObject({
      min_screened: z.number().int().min(0).max(10_000),
      min_flagged: z.number().int().min(1).max(10_000),
      min_flagged_share: z.number().min(0).max(1),
    }),
  })
  .superRefine((s, ctx) => {
    if (s.pattern !== null) {
      try {
        compileAccessionPattern(s.pattern);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['pattern'], message: (err as Error).message });
      }
    } else if (s.assign === 'pattern') {
      ctx.addIssue({
        code: 'custom',
        path: ['pattern'],
        message: 'assign: pattern needs a pattern, a regex with a named group (?<accession>...)',
      });
    }
  });
