/**
 * What of a request's target may be shown: the scheme, host and path. Secrets ride in the rest
 * (an absolute-form upgrade target `http://user:PASSWORD@host/ws`, a `;jsessionid=` matrix
 * parameter, `?token=` in the query), and leak records travel far: logs, `'leak'` events,
 * `SocketLeakError` messages, health payloads, report files. So userinfo, matrix parameters and
 * the fragment are always removed, and the query too unless the app asks to keep it.
 */
export function redactTarget(target: string, keepQuery: boolean): string {
  let rest = target;
  const hash = rest.indexOf('#');
  if (hash !== -1) rest = rest.slice(0, hash);
  const question = rest.indexOf('?');
  const query = question === -1 ? '' : rest.slice(question);
  let path = question === -1 ? rest : rest.slice(0, question);
  // Userinfo: in the authority, after `//` and before the first `/` that follows it.
  const authorityStart = path.indexOf('//');
  if (
    authorityStart !== -1 &&
    /^([a-zA-Z][a-zA-Z0-9+.-]*:)?$/.test(path.slice(0, authorityStart))
  ) {
    const slash = path.indexOf('/', authorityStart + 2);
    const authorityEnd = slash === -1 ? path.length : slash;
    const at = path.lastIndexOf('@', authorityEnd - 1);
    if (at > authorityStart) path = path.slice(0, authorityStart + 2) + path.slice(at + 1);
  }
  // Matrix parameters: `;name=value` in any path segment.
  if (path.includes(';')) path = path.replace(/;[^/]*/g, '');
  return keepQuery ? path + query : path;
}
