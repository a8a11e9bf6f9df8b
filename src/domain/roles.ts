import type { UserRole } from './specimen.js';

export type { UserRole };

/**
 * What each role may do, weakest first; each role includes every role before it:
 *  - viewer: read results, images, the review queue, specimens, status (a wall display, a student);
 *  - reviewer: also write what the lab's record holds: reviews, uploads, specimen sign-off;
 *  - admin: also what changes how the device or its records work for everyone (routes mark it).
 */
export const USER_ROLES = ['viewer', 'reviewer', 'admin'] as const satisfies readonly UserRole[];

/** Position in USER_ROLES; a Record so that a new role in UserRole fails to compile until ranked. */
const ROLE_RANK: Record<UserRole, number> = { viewer: 0, reviewer: 1, admin: 2 };

/**
 * The role of a configured user whose entry names none. Users configured before roles existed
 * could review and upload, so they keep exactly that; admin is never granted by omission.
 */
export const DEFAULT_USER_ROLE: UserRole = 'reviewer';

/** True when a holder of `held` may do what `needed` may (admin ⊇ reviewer ⊇ viewer). */
export function roleIncludes(held: UserRole, needed: UserRole): boolean {
  return ROLE_RANK[held] >= ROLE_RANK[needed];
}
