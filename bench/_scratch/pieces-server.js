import http from 'node:http';
import dc from 'node:diagnostics_channel';
import { createSocketMonitor } from '../../dist/index.js';
const variant = process.argv[2];
const warmupMs = Number(process.argv[3] ?? 0);
const key = Symbol('k');
function onEnd() {}
function onClose() { this[key] = undefined; }
function onRemove(ev) { if (ev !== 'end' && ev !== 'data') return; const r = this.parser?.incoming; if (r?.upgrade === true) {} }
class Rec { constructor(s){ this.id=1; this.socket=s; this.a=0; this.b=0; this.c=0; this.d=0; this.e=undefined; this.f=undefined; this.g=undefined; this.h=undefined; this.i=undefined; this.j=undefined; this.k=undefined; this.l=undefined; } }
const set = new Set();
const lvl = { p1: 1, p2: 2, p3: 3, p4: 4 }[variant] ?? 0;
if (variant === 'full') createSocketMonitor({ stacks: 'none' }).start();
if (lvl >= 1) dc.subscribe('net.server.socket', ({ socket }) => {
  if (lvl >= 2) { const r = new Rec(socket); socket[key] = r; set.add(r); }
  if (lvl >= 3) { socket.on('end', onEnd); socket.on('close', function () { set.delete(this[key]); this[key] = undefined; }); }
  if (lvl >= 4) socket.on('removeListener', onRemove);
});
let requests = 0, mark;
const server = http.createServer((_q, res) => {
  if (requests++ === 0) setTimeout(() => { mark = { cpu: process.cpuUsage(), requests }; }, warmupMs);
  res.setHeader('content-type', 'text/plain'); res.end('hello');
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`));
process.on('SIGTERM', () => { const cpu = process.cpuUsage(mark?.cpu); process.stdout.write(`${JSON.stringify({ cpuMicrosPerRequest: (cpu.user + cpu.system) / (requests - mark.requests), size: set.size })}\n`); process.exit(0); });
