// What the views share: the session (CSRF token, class names), the feed's overlay and filters,
// uploads waiting for their result, and the specimen page under keyboard review. One object, imported by every module that needs it.

export const state = {
  session: null,
  meta: null,
  overlay: 'thumbnail',
  filters: {},
  oldestId: null,
  queueCount: 0,
  /** sha256 of uploads waiting for their result -> card element */
  pendingUploads: new Map(),
  /** The specimen page: the specimen shown, its images in gallery order, the image under review
   * (index into `order`) and the class chosen for it with a key or button (null: the model's). */
  specimenPage: { specimen: null, order: [], cursor: 0, chosenClass: null },
};
