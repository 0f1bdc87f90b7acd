// Child process of unread-body-size.js: does a body of `size` bytes, never read by `client`,
// leave the FIN read by Node but unconsumed ("unconsumed-fin")? Prints one JSON line, then reads
// the body late and exits 0. Run in a child because some bundled undici versions crash the
// process (`assert(!this.paused)`) on a paused body of some sizes (seen: 64 KiB on Node 22/24).
import dc from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const [client, sizeText, keyFile, certFile] = process.argv.slice(2);
const size = Number(sizeText);

let socket;
const remember = (message) => {
  socket = message.socket ?? message.request?.socket ?? socket;
  message.request?.once?.('socket', (s) => {
    socket = s;
  });
};
dc.subscribe('undici:client:connected', remember);
dc.subscribe('http.client.request.start', remember);

const answer = (_request, res) => {
  res.setHeader('connection', 'close');
  res.end(Buffer.alloc(size, 0x61));
};
const server =
  client === 'https'
    ? https.createServer({ key: readFileSync(keyFile), cert: readFileSync(certFile) }, answer)
    : http.createServer(answer);
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `${client === 'https' ? 'https' : 'http'}://127.0.0.1:${server.address().port}/`;

let consume;
if (client === 'fetch') {
  const response = await fetch(url);
  consume = () => response.arrayBuffer();
} else if (client === 'undici') {
  const { request } = await import('undici');
  const { body } = await request(url);
  consume = () => body.arrayBuffer();
} else {
  const get = client === 'https' ? https.get : http.get;
  const response = await new Promise((resolve) => get(url, { rejectUnauthorized: false }, resolve));
  consume = () => new Promise((resolve) => response.on('end', resolve).resume());
}

// The FIN is read within a few loop turns of the last byte; wait for the state to settle.
const deadline = Date.now() + 2000;
let state = 'no-socket';
while (Date.now() < deadline) {
  const readable = socket?._readableState;
  if (readable !== undefined) {
    state = readable.endEmitted ? 'ended' : readable.ended ? 'fin-unconsumed' : 'fin-unread';
    if (state !== 'fin-unread') break;
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await consume();
server.close();
console.log(JSON.stringify({ client, size, state }));
