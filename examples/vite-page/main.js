// Shows every message on orders.* as it arrives; after a reload it first replays what was published meanwhile.
import { createClient } from '@durable-pubsub/client-sdk';

// The server's /ws on this page's host (`vite` proxies it to PORT), or another one with ?ws=ws://host:port/ws.
const url = new URLSearchParams(location.search).get('ws') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
// One recipient per browser: the SDK keeps its position in localStorage, so a reload resumes where it left off.
const recipient = localStorage.getItem('recipient') ?? `page-${Math.random().toString(36).slice(2)}`;
localStorage.setItem('recipient', recipient);

const client = createClient({ url, recipient });
client.on('state', ({ newState }) => {
  document.querySelector('#state').textContent = newState;
});
client.subscribe('orders.*', (msg) => {
  const li = document.createElement('li');
  li.dataset.id = String(msg.id);
  li.textContent = `${msg.ch} ${JSON.stringify(msg.data)}`;
  document.querySelector('#messages').append(li);
});
