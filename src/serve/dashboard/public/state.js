// What the views share: the session (CSRF token, class names), the feed's overlay and filters,
// and uploads waiting for their result. One object, imported by every module that needs it.

export const state = {
  session: null,
  meta: null,
  overlay: 'thumbnail',
  filters: {},
  oldestId: null,
  queueCount: 0,
  /** sha256 of uploads waiting for their result -> card element */
  pendingUploads: new Map(),
};
