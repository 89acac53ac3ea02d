// Loads the items over the app's API, then follows their changes from the head taken before that load: nothing missed.
import { createClient, memoryStorage } from '@durable-pubsub/client-sdk';

/** id → { id, value, version }: what the page shows */
const items = new Map();
let repeated = 0;
const $ = (sel) => document.querySelector(sel);

/** A change applies once: a version the page has (from the state it loaded, or an earlier message) is ignored. */
function apply(item) {
  if ((items.get(item.id)?.version ?? 0) >= item.version) repeated++;
  else items.set(item.id, item);
}

function render() {
  const lis = [...items.values()]
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((i) => Object.assign(document.createElement('li'), { textContent: `${i.id}=${i.value} v${i.version}` }));
  $('#items').replaceChildren(...lis);
  $('#repeated').textContent = String(repeated);
}

async function main() {
  // GET /state answers the stream's head, read before the items: the position to resume from.
  const { position, items: loaded } = await (await fetch('/state')).json();
  for (const item of loaded) apply(item);
  render();
  // ?hold: wait for window.resume() between the load and the subscribe (the test lands changes there).
  if (new URLSearchParams(location.search).has('hold')) {
    $('#state').textContent = 'held';
    await new Promise((resolve) => {
      window.resume = resolve;
    });
  }
  const client = createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
    // A page load is a reader of its own; its start is the position, not a saved one.
    recipient: `items-page-${Math.random().toString(36).slice(2)}`,
    position,
    storage: memoryStorage(),
  });
  client.on('state', ({ newState }) => {
    $('#state').textContent = newState;
  });
  client.subscribe('items.*', (msg) => {
    apply(msg.data);
    render();
  });
}

main().catch((err) => {
  $('#state').textContent = `failed: ${err}`;
});
