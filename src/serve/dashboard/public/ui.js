// Small DOM and formatting helpers. Every piece of text that comes from data (file names, notes,
// reviewer names) is put on the page with textContent, never as HTML: `el` makes string children
// text nodes.
/* global document, window, localStorage, setTimeout, clearTimeout */
import { state } from './state.js';

const CLASS_COLOURS = ['#2e7d32', '#f59e0b', '#d9480f', '#9c1c4f', '#1d4ed8', '#6b7280'];

/** Creates an element; string children become text nodes (never parsed as HTML). */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof window.Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svg(tag, attrs) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
  return node;
}

export const $ = (id) => document.getElementById(id);

export function pct(p) {
  if (p === null || p === undefined) return '—';
  const v = p * 100;
  return v >= 99.95 ? '>99.9 %' : v < 0.05 && v > 0 ? '<0.1 %' : `${v.toFixed(1)} %`;
}

export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function bytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function classLabel(name) {
  const c = state.meta?.classes.find((x) => x.name === name);
  return c ? c.label : name || '—';
}

export function classColour(name) {
  const i = state.meta ? state.meta.classes.findIndex((c) => c.name === name) : -1;
  return CLASS_COLOURS[i >= 0 ? i % CLASS_COLOURS.length : CLASS_COLOURS.length - 1];
}

let toastTimer = null;
export function toast(message, isError) {
  const box = $('toast');
  box.textContent = message;
  box.className = isError ? 'toast error' : 'toast';
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), 5000);
}

/**
 * The name a specimen action or review is stored under: a named account's own name; otherwise
 * the name typed into a visible "Your name" field (class `actor-name`), remembered in the browser
 * like the review form's.
 */
export function actorName() {
  if (state.session?.namedUser) return state.session.user;
  const typed = [...document.querySelectorAll('input.actor-name')].find(
    (i) => i.offsetParent !== null && i.value.trim(),
  );
  const name = (typed ? typed.value : localStorage.getItem('blastwatch.reviewer') || '').trim();
  if (name) localStorage.setItem('blastwatch.reviewer', name);
  return name;
}
