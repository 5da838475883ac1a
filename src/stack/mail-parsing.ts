/**
 * The pure half of the mail helper: which Inbucket mailbox an address lands in, whether a
 * message was addressed to it, and the links a message holds.
 */
import { StackEmulatorError } from '../errors.js'

/** `Ada <ada@example.com>` -> `ada@example.com`; a bare address is only trimmed. */
export function bareAddress(address: string): string {
  return (/<([^>]*)>/.exec(address)?.[1] ?? address).trim()
}

/**
 * Inbucket's mailbox for an address (its default "local" naming, pkg/policy/address.go): the
 * local part, lower-cased, without a `+tag`. So `Ada+signup@example.com` lands in `ada`, with
 * every other `ada@...`: waitForMessage tells them apart by recipient.
 */
export function mailboxName(address: string): string {
  const bare = bareAddress(address)
  const at = bare.lastIndexOf('@')
  const name = (at === -1 ? bare : bare.slice(0, at)).toLowerCase().split('+')[0] ?? ''
  if (!name) {
    throw new StackEmulatorError(`"${address}" has no local part to name a mailbox`, { code: 'BAD_OPTION', fix: 'Pass an address such as ada@example.com.' })
  }
  return name
}

/**
 * Whether a message whose To header lists `to` was sent to `address`. A bare mailbox name
 * (no @) matches everything in its mailbox, and so does a message without a To list: there is
 * nothing to tell it by.
 */
export function isAddressedTo(to: readonly string[], address: string): boolean {
  if (!address.includes('@') || to.length === 0) return true
  const wanted = bareAddress(address).toLowerCase()
  // One To header can name several recipients: "a@x, B <b@x>".
  return to.flatMap((entry) => entry.split(',')).some((entry) => bareAddress(entry).toLowerCase() === wanted)
}

/**
 * The display name of a From header, unquoted: `"Local Emulator: a.ts" <noreply@x>` gives
 * `Local Emulator: a.ts`; a bare address gives ''.
 */
export function senderName(from: string): string {
  const lt = from.lastIndexOf('<')
  const name = (lt === -1 ? '' : from.slice(0, lt)).trim()
  return name.startsWith('"') && name.endsWith('"') && name.length >= 2 ? name.slice(1, -1).replace(/\\(.)/g, '$1') : name
}

/**
 * Whether a message was sent by the project named `displayName`: Stack Auth sends a project's
 * mail (on the shared mail server the emulator uses) as `"<project display name>" <sender>`
 * (apps/backend/src/lib/emails.tsx getSharedEmailConfig), and the fixture does the same.
 */
export function isFromProject(from: string | undefined, displayName: string): boolean {
  return senderName(from ?? '') === displayName
}

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' }

/** Decodes the entities an href can hold (`&amp;` between query parameters above all). */
export function decodeEntities(value: string): string {
  return value.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (entity, body: string) => {
    if (body[0] === '#') {
      const code = body[1] === 'x' || body[1] === 'X' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10)
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : entity
    }
    return NAMED_ENTITIES[body.toLowerCase()] ?? entity
  })
}

const HREF = /\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))/gi
const TEXT_URL = /\bhttps?:\/\/[^\s<>"']+/gi

/**
 * The http(s) links of a message, in order, each once: every href of the HTML part (entities
 * decoded), then every URL written out in the text part (trailing punctuation left off).
 */
export function extractLinks(html: string, text: string): string[] {
  const fromHtml = [...html.matchAll(HREF)].map((m) => decodeEntities(m[1] ?? m[2] ?? m[3] ?? '').trim())
  const fromText = [...text.matchAll(TEXT_URL)].map((m) => trimTrailingPunctuation(m[0]))
  return [...new Set([...fromHtml, ...fromText].filter((link) => /^https?:\/\/[^/\s]/i.test(link)))]
}

/** "See https://x.test/a." ends the URL before the period; a ")" only when no "(" opened it. */
function trimTrailingPunctuation(url: string): string {
  let end = url.length
  for (;;) {
    const last = url[end - 1]
    if (last && '.,;:!?\'"'.includes(last)) end--
    else if (last === ')' && !url.slice(0, end).includes('(')) end--
    else if (last === ']' && !url.slice(0, end).includes('[')) end--
    else return url.slice(0, end)
  }
}
