// System H of `pnpm bench --only http`: a bare node:http JSON server, the ceiling for P's POST /v1/publish.
// It reads the body, JSON.parses it, checks its shape lightly (a message is {ch: non-empty string, data}; a batch is
// {messages: [message…]}) and answers 200 with what P answers ({"id"} or {"ids"}), from a counter: no Redis, no
// storage, no auth, no idempotency. Anything else is a 400.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const port = Number(process.env.PORT ?? 0);
const MAX_BODY = 1024 * 1024;
let next = 1;

const isMessage = (m: unknown): boolean =>
  typeof m === 'object' &&
  m !== null &&
  typeof (m as { ch?: unknown }).ch === 'string' &&
  (m as { ch: string }).ch.length > 0 &&
  (m as { data?: unknown }).data !== undefined;

function answer(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function publish(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= MAX_BODY) chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_BODY) return answer(res, 413, '{"error":{"code":"too_large"}}');
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return answer(res, 400, '{"error":{"code":"bad_request","message":"not JSON"}}');
    }
    const list = (body as { messages?: unknown } | null)?.messages;
    if (Array.isArray(list)) {
      if (list.length === 0 || !list.every(isMessage)) return answer(res, 400, '{"error":{"code":"bad_request"}}');
      const ids = list.map(() => next++);
      return answer(res, 200, JSON.stringify({ ids }));
    }
    if (!isMessage(body)) return answer(res, 400, '{"error":{"code":"bad_request"}}');
    answer(res, 200, JSON.stringify({ id: next++ }));
  });
}

const server = createServer((req, res) => {
  if (req.url === '/v1/publish' && req.method === 'POST') return publish(req, res);
  answer(res, 404, '{"error":{"code":"not_found"}}');
});
server.listen(port, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
