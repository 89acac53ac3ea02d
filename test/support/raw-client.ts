// A bare protocol client over `ws`, speaking PROTOCOL.md frame by frame (the SDK is tested on its own).
import WebSocket from 'ws';
import { until } from './env';

export interface Frame {
  op: string;
  [k: string]: any;
}

export class RawClient {
  readonly frames: Frame[] = [];
  /** each frame's text exactly as it came (what byte-for-byte checks compare) */
  readonly texts: string[] = [];
  closeCode: number | null = null;
  closeReason = '';
  private readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(url: string, opts: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, { perMessageDeflate: false, ...opts });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.ws.on('message', (data) => {
      const text = String(data);
      this.texts.push(text);
      this.frames.push(JSON.parse(text));
    });
    this.ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = String(reason);
    });
    this.ws.on('error', () => {});
  }

  static async connect(url: string): Promise<RawClient> {
    const c = new RawClient(url);
    await c.opened;
    return c;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  sendRaw(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** Sends hello and waits for welcome. */
  async hello(fields: {
    recipient: string;
    subs: string[];
    epoch?: string;
    lastAckedId?: number;
    from?: 'head' | 'earliest';
    batch?: true;
  }): Promise<Frame> {
    this.send({ op: 'hello', v: 1, ...fields });
    return this.next('welcome');
  }

  /** The first frame with this op (waits for it). */
  async next(op: string, ms = 10_000): Promise<Frame> {
    await until(() => this.frames.some((f) => f.op === op) || this.closeCode !== null, ms, `a ${op} frame`);
    const f = this.frames.find((x) => x.op === op);
    if (!f) throw new Error(`connection closed (${this.closeCode} ${this.closeReason}) before a ${op} frame`);
    return f;
  }

  /** Waits for a frame matching `pred` that arrives after index `from`. */
  async waitFor(pred: (f: Frame) => boolean, ms = 10_000, what = 'frame'): Promise<Frame> {
    let found: Frame | undefined;
    await until(() => (found = this.frames.find(pred)) !== undefined || this.closeCode !== null, ms, what);
    if (!found) throw new Error(`connection closed (${this.closeCode} ${this.closeReason}) before ${what}`);
    return found;
  }

  async closed(ms = 10_000): Promise<number> {
    await until(() => this.closeCode !== null, ms, 'close');
    return this.closeCode as number;
  }

  msgIds(): number[] {
    return this.frames.filter((f) => f.op === 'msg').map((f) => f.id);
  }

  /** The last msg id received. */
  lastId(): number {
    const ids = this.msgIds();
    return ids[ids.length - 1] ?? 0;
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}
