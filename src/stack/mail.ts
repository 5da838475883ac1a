/**
 * The mail helper: reads the emulator's Inbucket (the mail catcher Stack Auth sends its emails
 * to) over Inbucket's REST API, the same on the fixture image and on the real one.
 */
import { StackEmulatorError, badOption } from '../errors.js'
import { type HttpResult, httpRequest } from '../http.js'
import { pollUntil } from '../poll.js'
import { extractLinks, isAddressedTo, isFromProject, mailboxName } from './mail-parsing.js'

/** The manifest's name for the mail catcher's service. */
export const MAIL_SERVICE = 'inbucket'

const MAIL_DEFAULTS = {
  /** How long waitForMessage waits. */
  timeoutMs: 10_000,
  /** Pause between two looks at the mailbox. */
  intervalMs: 100,
  /** Longest wait for one answer from Inbucket. */
  requestTimeoutMs: 5_000,
}

export interface MailMessage {
  id: string
  from: string
  /** The To header's recipients, as Inbucket lists them (`<ada@example.com>`). */
  to: string[]
  subject: string
  date: Date
  text: string
  html: string
  /** The message's http(s) links, each once: the HTML's hrefs (entities decoded), then URLs in the text. */
  links: string[]
}

export interface WaitForMessageOptions {
  /** How long to wait, in ms. @default 10000 */
  timeoutMs?: number
  /** Only a message whose subject contains this string or matches this RegExp. */
  subject?: string | RegExp
  /** Only a message that came after this one (the id of a message still in the mailbox): the one after it. */
  after?: string
  /** Only a message received at or after this time. */
  since?: Date | number
  signal?: AbortSignal
}

export interface MailClient {
  /** Inbucket's base URL. */
  readonly url: string
  /** Every message to `address` now in its mailbox, oldest first. */
  messages(address: string): Promise<MailMessage[]>
  /**
   * The oldest message to `address` that fits the options, waiting for it to arrive. Throws a
   * StackEmulatorError (code TIMEOUT) listing the subjects it saw when none came in time.
   */
  waitForMessage(address: string, options?: WaitForMessageOptions): Promise<MailMessage>
  /** Deletes one message. */
  delete(address: string, id: string): Promise<void>
  /**
   * Empties the mailbox that `address` lands in (with every other address of that local part);
   * a project's helper deletes only that project's messages there.
   */
  clear(address: string): Promise<void>
}

/** Which messages a mail helper sees. */
export interface MailFilter {
  /**
   * Only the mail this project sent (isolation 'project'): its display name, which Stack Auth puts
   * in the From header. Parallel tests each in a project of their own then never read each
   * other's mail, even for the same address. A test that renames its project loses sight of it.
   */
  project?: string
}

/** A message as Inbucket lists it (GET /api/v1/mailbox/{name}). */
interface Summary {
  id: string
  from?: string
  to?: string[] | string
  subject?: string
  date?: string
  'posix-millis'?: number
}

/** A message as Inbucket gives it (GET /api/v1/mailbox/{name}/{id}). */
interface Detail extends Summary {
  body?: { text?: string; html?: string }
}

/** The mail client of an emulator's services; one that explains itself when there is no Inbucket. */
export function mailFor(services: Record<string, string>, filter: MailFilter = {}): MailClient {
  const url = services[MAIL_SERVICE]
  return url ? mailClient(url, filter) : missingMail(Object.keys(services))
}

export function mailClient(inbucketUrl: string, filter: MailFilter = {}): MailClient {
  const base = inbucketUrl.replace(/\/+$/, '')
  const mailboxUrl = (address: string) => `${base}/api/v1/mailbox/${encodeURIComponent(mailboxName(address))}`

  async function call(method: string, url: string): Promise<unknown> {
    let response: HttpResult
    try {
      response = await httpRequest(url, { method, timeoutMs: MAIL_DEFAULTS.requestTimeoutMs })
    } catch (cause) {
      throw new StackEmulatorError(`Could not reach Inbucket at ${url}: ${(cause as Error).message}`, {
        code: 'NOT_HEALTHY',
        fix: 'Check that the emulator is running and healthy (stack-emulator status).',
        cause,
      })
    }
    // An address that never got mail has no mailbox: the fixture answers 404 where Inbucket answers [].
    if (response.status === 404) return undefined
    if (response.status < 200 || response.status > 299) {
      throw new StackEmulatorError(`Inbucket answered ${method} ${url} with HTTP ${response.status}: ${response.text.slice(0, 200)}`, { code: 'NOT_HEALTHY' })
    }
    if (method !== 'GET') return undefined
    try {
      return JSON.parse(response.text)
    } catch {
      throw new StackEmulatorError(`Inbucket answered GET ${url} with something that is not JSON: ${response.text.slice(0, 200)}`, { code: 'NOT_HEALTHY' })
    }
  }

  /** The mailbox's messages to `address`, oldest first (a stable sort keeps Inbucket's order on ties). */
  async function list(address: string): Promise<Summary[]> {
    const summaries = ((await call('GET', mailboxUrl(address))) ?? []) as Summary[]
    return summaries
      .filter((s) => isAddressedTo(recipients(s), address) && (filter.project === undefined || isFromProject(s.from, filter.project)))
      .sort((a, b) => receivedAt(a) - receivedAt(b))
  }

  async function read(address: string, id: string): Promise<MailMessage> {
    const url = `${mailboxUrl(address)}/${encodeURIComponent(id)}`
    const detail = (await call('GET', url)) as Detail | undefined
    if (!detail) throw new StackEmulatorError(`Message ${id} is not in the mailbox ${url}`, { code: 'NOT_HEALTHY' })
    return toMessage(detail)
  }

  async function waitForMessage(address: string, options: WaitForMessageOptions = {}): Promise<MailMessage> {
    const { timeoutMs, intervalMs } = { ...MAIL_DEFAULTS, ...definedOnly(options) }
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) throw badOption('timeoutMs', timeoutMs, 'a number of ms, 0 or more')
    let seen: Summary[] = []
    let lastError: unknown
    return pollUntil(
      async () => {
        try {
          seen = await list(address)
          const match = nextMatch(seen, options)
          lastError = undefined
          return match && (await read(address, match.id))
        } catch (error) {
          if ((error as StackEmulatorError).code === 'BAD_OPTION') throw error
          lastError = error // Inbucket may be restarting: look again until the deadline
          return undefined
        }
      },
      {
        timeoutMs,
        intervalMs,
        signal: options.signal,
        timeoutError: () => timeoutError(address, mailboxUrl(address), timeoutMs, options, seen, lastError),
      },
    )
  }

  return {
    url: base,
    messages: async (address) => Promise.all((await list(address)).map((s) => read(address, s.id))),
    waitForMessage,
    delete: async (address, id) => void (await call('DELETE', `${mailboxUrl(address)}/${encodeURIComponent(id)}`)),
    clear: async (address) => {
      if (filter.project === undefined) return void (await call('DELETE', mailboxUrl(address)))
      // The mailbox is shared with other projects' tests: only this project's messages go.
      for (const s of await list(address)) await call('DELETE', `${mailboxUrl(address)}/${encodeURIComponent(s.id)}`)
    },
  }
}

/** The first message of `seen` (oldest first) that fits the options. */
function nextMatch(seen: Summary[], options: WaitForMessageOptions): Summary | undefined {
  let candidates = seen
  if (options.after !== undefined) {
    const index = seen.findIndex((s) => s.id === options.after)
    if (index === -1) {
      throw new StackEmulatorError(`Message ${options.after} (the "after" option) is not in the mailbox`, {
        code: 'BAD_OPTION',
        fix: 'Pass the id of a message still in the mailbox, or use "since" with its date.',
      })
    }
    candidates = seen.slice(index + 1)
  }
  const since = options.since === undefined ? undefined : Number(options.since)
  return candidates.find((s) => (since === undefined || receivedAt(s) >= since) && subjectFits(s.subject ?? '', options.subject))
}

function subjectFits(subject: string, wanted: string | RegExp | undefined): boolean {
  if (wanted === undefined) return true
  return typeof wanted === 'string' ? subject.includes(wanted) : wanted.test(subject)
}

function timeoutError(
  address: string,
  url: string,
  timeoutMs: number,
  options: WaitForMessageOptions,
  seen: Summary[],
  lastError: unknown,
): StackEmulatorError {
  const filters = [
    options.subject === undefined
      ? ''
      : ` with a subject matching ${String(options.subject instanceof RegExp ? options.subject : JSON.stringify(options.subject))}`,
    options.after === undefined ? '' : ` after message ${options.after}`,
    options.since === undefined ? '' : ` since ${new Date(options.since).toISOString()}`,
  ].join('')
  const subjects = seen.map((s) => JSON.stringify(s.subject ?? '')).join(', ')
  return new StackEmulatorError(`No mail to ${address}${filters} arrived within ${timeoutMs} ms`, {
    code: 'TIMEOUT',
    fix: 'Check that the app asked Stack Auth to send it (a sign-up with a verification callback URL, for one), or raise timeoutMs.',
    details: [
      `mailbox: ${url}`,
      seen.length ? `subjects seen there for this address: ${subjects}` : 'no message for this address was in the mailbox',
      lastError ? `last error: ${(lastError as Error).message}` : '',
    ]
      .filter(Boolean)
      .join('\n'),
    cause: lastError,
  })
}

function toMessage(detail: Detail): MailMessage {
  const text = detail.body?.text ?? ''
  const html = detail.body?.html ?? ''
  return {
    id: detail.id,
    from: detail.from ?? '',
    to: recipients(detail),
    subject: detail.subject ?? '',
    date: new Date(receivedAt(detail)),
    text,
    html,
    links: extractLinks(html, text),
  }
}

const recipients = (s: Summary): string[] => (Array.isArray(s.to) ? s.to : s.to ? [s.to] : [])
const receivedAt = (s: Summary): number => s['posix-millis'] ?? (s.date ? Date.parse(s.date) : 0)
const definedOnly = <T extends object>(value: T): Partial<T> => Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>

/** Every call rejects with the reason: the image has no mail catcher. */
function missingMail(services: string[]): MailClient {
  const fail = async (): Promise<never> => {
    throw new StackEmulatorError(
      `This emulator has no "${MAIL_SERVICE}" service (its services: ${services.join(', ') || 'none'}), so there is no mail to read`,
      {
        code: 'NO_SERVICE',
        fix: `Use an image whose manifest lists an "${MAIL_SERVICE}" service: the fixture image and Stack Auth's real image both do.`,
      },
    )
  }
  return { url: '', messages: fail, waitForMessage: fail, delete: fail, clear: fail }
}
