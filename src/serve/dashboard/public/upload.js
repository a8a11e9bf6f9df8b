// Upload from a phone camera, the file picker or drag and drop; the result card replaces the
// "analysing" card when the result is stored (directly, or later from the live feed).
/* global FormData */
import { api } from './api.js';
import { resultCard } from './cards.js';
import { state } from './state.js';
import { $, bytes, el } from './ui.js';

function uploadFiles(files) {
  for (const file of files) void uploadOne(file);
}

async function uploadOne(file) {
  const max = state.session?.meta?.uploadMaxBytes;
  const card = el(
    'article',
    { class: 'card pending' },
    el(
      'div',
      { class: 'card-body' },
      el('p', { class: 'file', text: file.name }),
      $('upload-accession').value.trim()
        ? el('p', { class: 'meta', text: `Specimen ${$('upload-accession').value.trim()}` })
        : null,
      el('p', { class: 'meta', text: 'Uploading and analysing…' }),
    ),
  );
  $('upload-list').prepend(card);
  const status = card.querySelector('.meta');
  if (max && file.size > max) {
    status.textContent = `Too large: ${bytes(file.size)} (limit ${bytes(max)}).`;
    card.classList.add('failed');
    return;
  }
  const form = new FormData();
  // Before the file: the server reads the fields that precede the file part.
  const accession = $('upload-accession').value.trim();
  if (accession) form.append('accession', accession);
  form.append('file', file, file.name);
  try {
    const res = await api('/api/dashboard/upload', { method: 'POST', body: form });
    if (res.id) {
      const done = resultCard(await api(`/api/dashboard/results/${res.id}`));
      if (res.duplicate) {
        done
          .querySelector('.card-body')
          .prepend(el('p', { class: 'meta', text: 'Already analysed: the same image was sent before.' }));
      }
      card.replaceWith(done);
      return;
    }
    status.textContent = 'Uploaded. Analysing…';
    state.pendingUploads.set(res.sha256, card);
  } catch (err) {
    status.textContent = `Upload failed: ${err.message}`;
    card.classList.add('failed');
  }
}

export function setUpUpload() {
  const zone = $('drop-zone');
  for (const id of ['upload-camera', 'upload-file']) {
    $(id).addEventListener('change', (event) => {
      uploadFiles(event.target.files);
      event.target.value = '';
    });
  }
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    uploadFiles(event.dataTransfer.files);
  });
}
