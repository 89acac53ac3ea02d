// The live dashboard: one SDK client, its state, messages, counters, a rate chart, patterns, publishing, recipients.
import { type Client, type ClientState, createClient, type Message, type Subscription } from '@durable-pubsub/client-sdk';
import { SseSocket } from '@durable-pubsub/client-sdk/sse';
import { RateChart } from './chart';
import './style.css';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const recipient =
  params.get('recipient') ?? localStorage.getItem('dps.demo.recipient') ?? `dashboard-${Math.random().toString(36).slice(2, 8)}`;
if (!params.has('recipient')) localStorage.setItem('dps.demo.recipient', recipient);
const patternsKey = `dps.demo.patterns.${recipient}`;
let patterns: string[] = JSON.parse(localStorage.getItem(patternsKey) ?? 'null') ?? ['orders.*', 'prices.*', 'alerts.*'];
/** "Block WebSocket": the page's WebSocket throws, as behind a proxy that blocks upgrades (kept across reloads) */
let wsBlocked = sessionStorage.getItem('dps.demo.blockWs') === '1';
class BlockedWebSocket {
  constructor() {
    throw new Error('WebSocket blocked by the dashboard toggle');
  }
}
/** ?record: every id shown is also logged in sessionStorage, so a test can check across reloads */
const record = params.has('record');
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const MAX_ROWS = 200;

const counts = { received: 0, replayed: 0, gaps: 0, dupsBefore: 0 };
const subs = new Map<string, Subscription>();
const chart = new RateChart($('chart'));
let client: Client | null = null;
let catchUp: { since: number; n: number } | null = null;

$('who').textContent = recipient;

function showState(state: ClientState | 'offline'): void {
  const el = $('state');
  el.textContent = state;
  el.className = `badge ${state}`;
}

function showTransport(): void {
  $('transport').textContent = client?.transport ?? '—';
  $('block-ws').classList.toggle('on', wsBlocked);
  $('block-ws').textContent = wsBlocked ? 'Allow WebSocket' : 'Block WebSocket';
}

function renderCounters(): void {
  $('c-received').textContent = String(counts.received);
  $('c-replayed').textContent = String(counts.replayed);
  $('c-gaps').textContent = String(counts.gaps);
  $('c-dups').textContent = String(counts.dupsBefore + (client?.duplicatesDropped ?? 0));
}

function cell(tr: HTMLTableRowElement, content: string | Node, cls?: string): void {
  const td = tr.insertCell();
  if (cls) td.className = cls;
  td.append(content);
}

function addRow(cells: (string | Node)[], cls?: string): void {
  const tr = document.createElement('tr');
  if (cls) tr.className = cls;
  for (const [i, c] of cells.entries()) cell(tr, c, i === 2 ? 'data' : i === 3 ? 'time' : undefined);
  const rows = $('rows');
  rows.prepend(tr);
  while (rows.children.length > MAX_ROWS) rows.lastElementChild?.remove();
}

function tag(text: string): HTMLElement {
  const s = document.createElement('span');
  s.className = `tag ${text}`;
  s.textContent = text;
  return s;
}

function onMessage(m: Message): void {
  counts.received++;
  if (m.replayed) counts.replayed++;
  if (catchUp && m.replayed) catchUp.n++;
  const tr = [String(m.id), m.ch, JSON.stringify(m.data), new Date(m.ts).toLocaleTimeString(), tag(m.replayed ? 'replayed' : 'live')];
  addRow(tr);
  $('rows').firstElementChild?.setAttribute('data-id', String(m.id));
  chart.add(m.ch, m.ts);
  if (record) sessionStorage.setItem('dps.shown', `${sessionStorage.getItem('dps.shown') ?? ''}${m.id},`);
  renderCounters();
}

function renderPatterns(): void {
  const box = $('patterns');
  box.replaceChildren();
  for (const p of patterns) {
    const chip = document.createElement('span');
    chip.className = 'chip';
    chip.textContent = p;
    const x = document.createElement('button');
    x.type = 'button';
    x.textContent = '×';
    x.title = `unsubscribe ${p}`;
    x.onclick = () => unsubscribe(p);
    chip.append(x);
    box.append(chip);
  }
}

function subscribe(p: string): void {
  if (patterns.includes(p)) return;
  patterns = [...patterns, p];
  localStorage.setItem(patternsKey, JSON.stringify(patterns));
  if (client) subs.set(p, client.subscribe(p, onMessage));
  renderPatterns();
}

function unsubscribe(p: string): void {
  patterns = patterns.filter((x) => x !== p);
  localStorage.setItem(patternsKey, JSON.stringify(patterns));
  subs.get(p)?.unsubscribe();
  subs.delete(p);
  renderPatterns();
}

function connect(): void {
  // SSE when no WebSocket opens (a proxy that blocks them, or the toggle): the same stream, over plain HTTP.
  const c = createClient({ url: wsUrl, recipient, sse: SseSocket, WebSocket: wsBlocked ? (BlockedWebSocket as never) : undefined });
  client = c;
  catchUp = { since: performance.now(), n: 0 };
  for (const p of patterns) subs.set(p, c.subscribe(p, onMessage));
  c.on('state', ({ newState }) => {
    showState(newState);
    showTransport();
    if (newState === 'live' && catchUp) {
      if (catchUp.n) $('caught').textContent = `caught up ${catchUp.n} messages in ${Math.round(performance.now() - catchUp.since)} ms`;
      catchUp = null;
      void refreshRecipients();
    }
  });
  c.on('gap', ({ ch, after, upTo }) => {
    counts.gaps++;
    addRow(['', ch, `ids ${after + 1}…${upTo} were removed by retention before this dashboard read them`, '', ''], 'gap');
    renderCounters();
  });
  c.on('reset', () => addRow(['', '', 'the server lost its log (new epoch): history starts again', '', ''], 'gap'));
  c.on('error', (e) => console.info('durable-pubsub:', e.code, e.message));
}

function disconnect(): void {
  counts.dupsBefore += client?.duplicatesDropped ?? 0;
  client?.close();
  client = null;
  subs.clear();
  showState('offline');
}

$('offline').onclick = () => {
  const goOffline = client !== null;
  if (goOffline) disconnect();
  else connect();
  $('offline').classList.toggle('on', goOffline);
  $('offline').textContent = goOffline ? 'Go online' : 'Go offline';
};

$('block-ws').onclick = () => {
  wsBlocked = !wsBlocked;
  sessionStorage.setItem('dps.demo.blockWs', wsBlocked ? '1' : '0');
  // A new client: it resumes from the position the old one saved, over what the page now allows.
  if (client) {
    disconnect();
    connect();
  }
  showTransport();
};

$('sub-form').onsubmit = (e) => {
  e.preventDefault();
  const input = $<HTMLInputElement>('sub-pattern');
  const p = input.value.trim();
  if (p) subscribe(p);
  input.value = '';
};

$('pub-form').onsubmit = async (e) => {
  e.preventDefault();
  const note = $('pub-note');
  let data: unknown;
  try {
    data = JSON.parse($<HTMLInputElement>('pub-data').value);
  } catch {
    note.textContent = 'data is not valid JSON';
    return;
  }
  if (!client) {
    note.textContent = 'offline: go online to publish';
    return;
  }
  try {
    const id = await client.publish($<HTMLInputElement>('pub-ch').value.trim(), data as never);
    note.textContent = `stored as id ${id}`;
  } catch (err) {
    note.textContent = `not published: ${(err as Error).message}`;
  }
};

async function refreshRecipients(): Promise<void> {
  try {
    const res = await fetch('/v1/recipients');
    if (!res.ok) return;
    type SetRow = { patterns: string[]; lastAckedId: number; lag: number; connections: number };
    const { recipients } = (await res.json()) as { recipients: { name: string; sets: SetRow[] }[] };
    // A row per pattern set: each device or view of a recipient has its own position.
    const rows = recipients.flatMap((r) => r.sets.map((s) => ({ name: r.name, ...s })));
    const body = $('recipients');
    body.replaceChildren();
    for (const r of rows.sort((a, b) => b.connections - a.connections || a.name.localeCompare(b.name)).slice(0, 12)) {
      const tr = document.createElement('tr');
      const who = document.createElement('div');
      who.textContent = r.name === recipient ? `${r.name} (this)` : r.name;
      const set = document.createElement('div');
      set.className = 'dim set';
      set.textContent = r.patterns.join(' ');
      const name = document.createDocumentFragment();
      name.append(who, set);
      cell(tr, name);
      for (const v of [String(r.lastAckedId), String(r.lag), String(r.connections)]) cell(tr, v);
      body.append(tr);
    }
  } catch {
    // the server is away; the state badge says so
  }
}

renderPatterns();
connect();
showTransport();
void refreshRecipients();
setInterval(() => void refreshRecipients(), 2000);
