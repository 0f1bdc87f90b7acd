/**
 * Text another process chose (its argv, its name) made safe to print to a terminal. A process
 * can put anything in its argv: `\x1b[2J` clears the operator's screen, an OSC sequence sets the
 * window title or writes the clipboard, a bidi override makes `evil` read as `live`. Every C0
 * and C1 control (ESC included, so no escape sequence survives), DEL, and the Unicode format
 * characters that reorder or hide text are shown as `\xHH` / `\uHHHH` instead.
 */
const UNPRINTABLE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

function escapeOne(char: string): string {
  const code = char.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, escapeOne);
}

/**
 * JSON.stringify escapes C0 controls only: DEL, C1 and the format characters above pass through
 * raw, and a terminal shows JSON too. The same characters as `\uHHHH`: the parsed value is
 * unchanged, so a script still gets the argv as the process gave it.
 */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    UNPRINTABLE,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
