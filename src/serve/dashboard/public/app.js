// blastwatch dashboard: plain JavaScript ES modules, no build step, no external resources (the lab
// LAN may have no internet). This module starts the page and switches between the views by the
// URL hash; each view lives in its own module.
/* global document, window */
import { api } from './api.js';
import { showDetail } from './detail.js';
import { connectLive, loadFeed, setUpFeed } from './feed.js';
import { loadQueue, refreshQueueCount } from './review.js';
import { state } from './state.js';
import { loadStatus } from './status.js';
import { setUpUpload } from './upload.js';
import { refreshSpecimenSoon, showSpecimen } from './specimen.js';
import { setUpKeyboardReview } from './specimen-review.js';
import { awaitsReading } from './specimen-model.js';
import {
  loadSpecimens,
  onLiveSpecimen,
  refreshUnassignedCount,
  setUpSpecimens,
  specimenFilterFromHash,
} from './specimens.js';
import { $, toast } from './ui.js';

// The landing page is the specimen list (a hematologist reports specimens, not images); the
// results of single images stay under "Images".
function currentView() {
  const hash = window.location.hash || '#/';
  if (hash === '#/' || hash.startsWith('#/specimens')) return 'specimens';
  if (hash.startsWith('#/specimen/')) return 'specimen';
  if (hash === '#/images') return 'feed';
  if (hash.startsWith('#/result/')) return 'detail';
  if (hash === '#/review') return 'review';
  if (hash === '#/upload') return 'upload';
  if (hash === '#/status') return 'status';
  return 'specimens';
}

async function route() {
  const view = currentView();
  document.body.dataset.view = view;
  for (const section of document.querySelectorAll('.view')) section.hidden = section.id !== `view-${view}`;
  for (const a of document.querySelectorAll('.tabs a')) {
    const tabView = view === 'specimen' ? 'specimens' : view;
    if (a.dataset.view === tabView) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  window.scrollTo(0, 0);
  if (view === 'specimens') await loadSpecimens(specimenFilterFromHash(window.location.hash));
  else if (view === 'specimen') await showSpecimen(window.location.hash.slice('#/specimen/'.length));
  else if (view === 'feed') await loadFeed(false);
  else if (view === 'review') await loadQueue();
  else if (view === 'status') await loadStatus();
  else if (view === 'detail') await showDetail(window.location.hash.slice('#/result/'.length));
  document.body.dataset.ready = view;
}

// ---------- start ----------

async function start() {
  state.session = await api('/api/dashboard/session');
  state.meta = state.session.meta;
  $('device-name').textContent = state.meta.deviceId;
  $('user-name').textContent = state.session.loginRequired ? state.session.user : '';
  $('logout').hidden = !state.session.loginRequired;
  $('logout').addEventListener('click', async () => {
    await api('/logout', { method: 'POST' }).catch(() => null);
    window.location.assign('/login');
  });
  $('upload-max').textContent = String(Math.round((state.meta.uploadMaxBytes || 0) / 1048576));
  setUpFeed();
  setUpUpload();
  setUpSpecimens();
  setUpKeyboardReview();
  window.addEventListener('hashchange', () => void route());
  // After a dropped connection, fetch what was missed.
  connectLive({
    onReconnect: () => {
      if (currentView() === 'feed') void loadFeed(false);
      else if (currentView() !== 'detail') void route();
    },
    // A first reading of a withheld field sends its specimen again, unchanged but for its count of
    // fields to read. The page that took the reading already shows it and is not redrawn; the
    // same specimen open in another tab still counts the field as unread, and is.
    onSpecimen: (data) => {
      const s = onLiveSpecimen(data);
      const shown = state.specimenPage.specimen;
      const unreadShown = shown?.images?.filter(awaitsReading).length;
      if (s.revision === null || shown?.revision !== s.revision || unreadShown !== s.unreadWithheld)
        refreshSpecimenSoon(s.id);
    },
    // A new image may be unassigned (no sub-folder, no session running, or stamped before the
    // running session started: the open specimen's page then says so).
    onResult: () => {
      if (currentView() === 'specimens') void refreshUnassignedCount();
      const shown = state.specimenPage.specimen;
      if (currentView() === 'specimen' && shown?.sessionOpen) refreshSpecimenSoon(shown.id);
    },
  });
  void refreshQueueCount();
  await route();
  window.setInterval(() => {
    if (currentView() === 'status') void loadStatus();
  }, 5000);
}

start().catch((err) => {
  if (err.message !== 'login required') toast(`The dashboard could not start: ${err.message}`, true);
});
