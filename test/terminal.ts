/** Test helper: what a terminal would show for a program's raw output (progress lines, clears). */

/** What a terminal shows for `raw`: \r goes back to the line's start, ESC[K clears to its end. */
export function screen(raw: string): string[] {
  return raw
    .split('\n')
    .map((line) => {
      let text = ''
      let cursor = 0
      for (const token of line.match(/\x1b\[[0-9;?]*[A-Za-z]|\r|[^\x1b\r]/g) ?? []) {
        if (token === '\r') cursor = 0
        else if (token === '\x1b[K') text = text.slice(0, cursor)
        else if (!token.startsWith('\x1b')) text = text.slice(0, cursor) + token + text.slice(++cursor)
      }
      return text
    })
    .filter(Boolean)
}
