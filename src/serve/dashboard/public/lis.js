// The status page's section on the laboratory information system: each destination, whether it
// was reached, what waits, the last error, and the messages the LIS refused with a retry button.
import { api } from './api.js';
import { $, el, toast, when } from './ui.js';

const NAMES = {
  mllp: 'HL7 over MLLP',
  file: 'HL7 files',
  fhir: 'FHIR server',
  fhir_file: 'FHIR files',
};

export async function loadLisStatus() {
  const section = $('lis-status');
  let data;
  try {
    data = await api('/api/lis');
  } catch {
    // Older daemons and daemons without the specimen layer have no LIS routes: nothing to show.
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const list = $('lis-destinations');
  if (!data.enabled) {
    list.replaceChildren(
      el('p', { class: 'muted', text: 'Off: no LIS destination configured (config lis).' }),
    );
    return;
  }
  list.replaceChildren(...data.destinations.map(destination));
}

function destination(d) {
  const reached = d.connected === null ? 'not tried yet' : d.connected ? 'connected' : 'NOT reachable';
  const tone = d.held.length > 0 || d.connected === false ? 'bad' : d.queued > 0 ? 'warn' : '';
  const item = (label, value) => el('div', {}, el('dt', { text: label }), el('dd', { text: value }));
  const facts = el(
    'dl',
    { class: 'lis-facts' },
    item('Where', d.target),
    item('State', reached),
    item('Waiting', String(d.queued)),
    item('Last delivered', d.lastDeliveredAt ? when(d.lastDeliveredAt) : '—'),
    d.lastError ? item('Last error', d.lastError) : null,
    d.nextAttemptAt ? item('Next try', when(d.nextAttemptAt)) : null,
  );
  const held =
    d.held.length === 0
      ? null
      : el(
          'ul',
          { class: 'lis-held' },
          ...d.held.map((m) =>
            el(
              'li',
              {},
              el('span', {
                text: `${m.accession} (v${m.version}, ${m.controlId}): ${m.lastError || 'refused'}`,
              }),
              ' ',
              el('button', { type: 'button', onclick: () => retry(m.id), text: 'Send again' }),
            ),
          ),
        );
  return el(
    'div',
    { class: `stat lis-destination ${tone}` },
    el('h3', { text: NAMES[d.destination] || d.destination }),
    facts,
    held,
  );
}

async function retry(id) {
  try {
    await api(`/api/lis/messages/${encodeURIComponent(id)}/retry`, { method: 'POST' });
    toast('Sent again: the LIS gets it on the next try.');
  } catch (err) {
    toast(`Could not send it again: ${err.message}`, true);
  }
  void loadLisStatus();
}
