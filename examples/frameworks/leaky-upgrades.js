// The bug every framework example has on purpose: sockets taken over on 'upgrade' and never
// closed. http.Server sockets are half-open, so when the client hangs up each one sits in
// CLOSE_WAIT for good. Try it (curl hangs up after 1 s):
//   curl -s --max-time 1 -H 'Connection: Upgrade' -H 'Upgrade: leak' http://127.0.0.1:PORT/leak

/** Takes every upgrade request's socket, answers 101 and never closes it. */
export function holdUpgrades(server) {
  const taken = [];
  server.on('upgrade', (_request, socket) => {
    taken.push(socket);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: leak\r\n\r\n',
    );
    // Bug on purpose: no socket.on('end', () => socket.end()).
  });
  return taken;
}
