// Loaded before each TypeScript or JavaScript block of the docs (`node --import`): the browser's WebSocket, from ws, for Node 20.
import WebSocket from 'ws';

const g = globalThis as { WebSocket?: unknown };
g.WebSocket ??= WebSocket;
