// Two heap snapshots compared per object kind (type and constructor name): the bytes and objects per connection that
// the first has beyond the second, biggest first. For mem-probe.ts: P's snapshot against B's, or after a change
// against before. usage: tsx test/bench/heap-diff.ts <a.heapsnapshot> <b.heapsnapshot> [connections=10000]
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

function byKind(file: string): { kinds: Map<string, { count: number; bytes: number }>; total: number } {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const [iType, iName, iSize] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const kinds = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType] as number] as string;
    // A string's or code's name is its content: one kind each.
    const name = /string|code/.test(type) ? '' : String(s.strings[s.nodes[i + iName] as number]).slice(0, 60);
    const size = s.nodes[i + iSize] as number;
    const k = kinds.get(`${type} ${name}`) ?? { count: 0, bytes: 0 };
    k.count++;
    k.bytes += size;
    kinds.set(`${type} ${name}`, k);
    total += size;
  }
  return { kinds, total };
}

const [fileA, fileB, perArg] = process.argv.slice(2);
if (!fileA || !fileB) throw new Error('usage: tsx test/bench/heap-diff.ts <a.heapsnapshot> <b.heapsnapshot> [connections]');
const per = Number(perArg ?? 10_000);
const a = byKind(fileA);
const b = byKind(fileB);
console.log(`live heap: ${a.total} vs ${b.total} bytes, ${((a.total - b.total) / per).toFixed(1)} B per connection`);
const rows = [...new Set([...a.kinds.keys(), ...b.kinds.keys()])].map((kind) => {
  const x = a.kinds.get(kind) ?? { count: 0, bytes: 0 };
  const y = b.kinds.get(kind) ?? { count: 0, bytes: 0 };
  return { kind, bytes: (x.bytes - y.bytes) / per, objects: (x.count - y.count) / per };
});
rows.sort((p, q) => q.bytes - p.bytes);
for (const r of [...rows.slice(0, 25), ...rows.slice(-15)])
  if (Math.abs(r.bytes) >= 1) console.log(`${r.bytes.toFixed(1).padStart(8)} B ${r.objects.toFixed(2).padStart(6)} objects  ${r.kind}`);
