/**
 * A resumable download: the bytes go to a part file beside a record of what they are (asset
 * URL, size, ETag, Last-Modified); an interrupted download continues with `Range` + `If-Range`
 * when the server allows it, and starts over, saying why, when it does not. The sha256 is
 * computed on the way (over the kept part first when resuming). Never more than the release's
 * size is written, and a stalled transfer fails (keeping the part) instead of waiting forever.
 */
import crypto from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { IncomingHttpHeaders } from 'node:http'
import { StackEmulatorError } from '../errors.js'
import { localFailure } from '../local-failure.js'
import { formatBytes, readJson } from '../files.js'
import { get, type Api, type ReleaseAsset } from './release.js'

export interface PullProgress {
  /** Bytes in the part file, including those kept from an interrupted pull. */
  receivedBytes: number
  totalBytes: number
  /** This pull's average rate. */
  bytesPerSecond: number
}

/** The part file's sidecar: what the bytes are, and the validators to resume against. */
export interface PartRecord {
  assetUrl: string
  size: number
  etag?: string
  lastModified?: string
}

export interface ResumePlan {
  /** First byte to ask for: 0 starts over; the size means the part is complete. */
  from: number
  /** The validator for If-Range. */
  ifRange?: string
  /** Why a part on disk cannot be continued. */
  reason?: string
}

export function planResume(record: PartRecord | undefined, partBytes: number, asset: Pick<ReleaseAsset, 'url' | 'size'>): ResumePlan {
  if (partBytes === 0) return { from: 0 }
  if (!record || record.assetUrl !== asset.url || record.size !== asset.size) return { from: 0, reason: 'the partial download is of another file' }
  if (partBytes > asset.size) return { from: 0, reason: 'the partial download is longer than the file' }
  if (partBytes === asset.size) return { from: partBytes } // complete: only its digest is left to compute
  // A weak ETag cannot be used with If-Range (RFC 9110, 13.1.5).
  const ifRange = record.etag && !record.etag.startsWith('W/') ? record.etag : record.lastModified
  if (!ifRange) return { from: 0, reason: 'the server does not support resuming (it sent no ETag or Last-Modified)' }
  return { from: partBytes, ifRange }
}

/** Undefined when a response to `Range: bytes=<from>-` continues the part; else why it does not. */
export function resumeRefused(from: number, size: number, status: number, headers: IncomingHttpHeaders): string | undefined {
  if (status === 206) {
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(String(headers['content-range'] ?? ''))
    if (range && Number(range[1]) === from && Number(range[2]) === size - 1 && (range[3] === '*' || Number(range[3]) === size)) return undefined
    return `the server sent another range (${headers['content-range'] ?? 'no Content-Range'})`
  }
  if (status !== 200) return undefined // an error, reported as such
  return /\bbytes\b/.test(String(headers['accept-ranges'] ?? ''))
    ? 'the file changed on the server since the partial download'
    : 'the server does not support resuming (no Range)'
}

export interface DownloadResult {
  sha256: string
  /** Bytes kept from an interrupted pull. */
  resumedFrom: number
  /** Bytes transferred by this pull. */
  transferredBytes: number
}

/** Downloads `asset` into `part` (resuming it when it can); the part is complete and hashed on return. */
export async function download(options: {
  asset: ReleaseAsset
  part: string
  api: Api
  /** Fail as stalled when fewer than STALL_BYTES arrive within this long (Settings.pullIdleTimeoutMs). */
  idleTimeoutMs: number
  onProgress: (progress: PullProgress) => void
  onLog: (line: string) => void
}): Promise<DownloadResult> {
  const { asset, part, api, idleTimeoutMs, onLog } = options
  const sidecar = `${part}.json`
  const record = await readJson<PartRecord>(sidecar)
  let plan = planResume(
    record,
    await fs.stat(part).then(
      (s) => s.size,
      () => 0,
    ),
    asset,
  )
  if (plan.reason) onLog(`${plan.reason}; starting over`)
  // The kept part is hashed before asking for the rest: a response left unread meanwhile could time out.
  const kept = plan.from > 0 ? crypto.createHash('sha256') : undefined
  if (kept) await hashFile(part, kept)
  if (plan.from === asset.size) return { sha256: kept!.digest('hex'), resumedFrom: plan.from, transferredBytes: 0 }

  const fetchFrom = (p: ResumePlan) =>
    get(asset.url, { accept: 'application/octet-stream', ...(p.from > 0 ? { range: `bytes=${p.from}-`, 'if-range': p.ifRange! } : {}) }, api, idleTimeoutMs)
  let response = await fetchFrom(plan)
  if (plan.from > 0) {
    const refused = resumeRefused(plan.from, asset.size, response.statusCode, response.headers)
    if (refused) {
      onLog(`${refused}; starting over`)
      if (response.statusCode !== 200) {
        await response.body.dump()
        response = await fetchFrom({ from: 0 })
      }
      plan = { from: 0 }
    } else {
      onLog(`resuming the download of ${asset.name} at ${formatBytes(plan.from)} of ${formatBytes(asset.size)}`)
    }
  }
  const expected = asset.size - plan.from
  const length = response.headers['content-length']
  if (response.statusCode !== (plan.from > 0 ? 206 : 200) || (length !== undefined && Number(length) !== expected)) {
    await response.body.dump().catch(() => {})
    const what = response.statusCode >= 300 ? `answered ${response.statusCode}` : `sends ${length} bytes where ${expected} were expected`
    throw new StackEmulatorError(`The download of ${asset.name} (${asset.url}) ${what}`, {
      code: 'PULL_FAILED',
      fix: 'Try again later; if it persists, pull another release (--tag) or check STACK_EMULATOR_RELEASES_URL.',
    })
  }

  const hash = plan.from > 0 ? kept! : crypto.createHash('sha256')
  if (plan.from === 0) {
    const validators = { etag: header(response.headers.etag), lastModified: header(response.headers['last-modified']) }
    await writeJson(sidecar, { assetUrl: asset.url, size: asset.size, ...validators } satisfies PartRecord)
  }
  let transferred = 0
  const started = performance.now()
  let reportedAt = 0
  const report = (force: boolean) => {
    const now = performance.now()
    if (!force && now - reportedAt < 250) return
    reportedAt = now
    const seconds = Math.max((now - started) / 1000, 0.001)
    options.onProgress({ receivedBytes: plan.from + transferred, totalBytes: asset.size, bytesPerSecond: Math.round(transferred / seconds) })
  }
  let failed: { error: StackEmulatorError; keepPart: boolean } | undefined
  const stall = watchStall(idleTimeoutMs, expected, () => {
    failed = { error: stalled(asset, plan.from + transferred, idleTimeoutMs), keepPart: true }
    response.body.destroy(failed.error)
  })
  try {
    await pipeline(
      response.body,
      async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          // Checked before writing: a server that sends more (no Content-Length) never grows the part past the size (#22).
          if (transferred + chunk.length > expected) {
            failed = { error: oversized(asset, expected), keepPart: false }
            throw failed.error
          }
          hash.update(chunk)
          transferred += chunk.length
          stall.received(chunk.length)
          report(false)
          yield chunk
        }
      },
      createWriteStream(part, { flags: plan.from > 0 ? 'a' : 'w' }),
    )
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'UND_ERR_BODY_TIMEOUT')
      failed ??= { error: stalled(asset, plan.from + transferred, idleTimeoutMs), keepPart: true }
    if (failed) {
      if (!failed.keepPart) await discardPart(part) // its bytes are not the release's file
      throw failed.error
    }
    throw (
      localFailure(error, path.dirname(part)) ??
      new StackEmulatorError(
        `The download of ${asset.name} was interrupted after ${formatBytes(plan.from + transferred)} of ${formatBytes(asset.size)} (${errorText(error)})`,
        { code: 'PULL_FAILED', fix: 'Run the pull again: it resumes where it stopped.', cause: error },
      )
    )
  } finally {
    stall.stop()
  }
  report(true)
  if (plan.from + transferred !== asset.size) {
    throw new StackEmulatorError(`The download of ${asset.name} ended after ${plan.from + transferred} of ${asset.size} bytes`, {
      code: 'PULL_FAILED',
      fix: 'Run the pull again: it resumes where it stopped.',
    })
  }
  return { sha256: hash.digest('hex'), resumedFrom: plan.from, transferredBytes: transferred }
}

/** Fewer bytes than this within the idle deadline is a stall: a drip of a byte a second never ends otherwise (#22). */
export const STALL_BYTES = 64_000

/**
 * Calls `onStall` when fewer than STALL_BYTES (or the rest, when less) arrive within `idleMs`:
 * undici's bodyTimeout only sees silence, not a drip.
 */
function watchStall(idleMs: number, expected: number, onStall: () => void) {
  let remaining = expected
  let sinceRefresh = 0
  const timer = setTimeout(onStall, idleMs).unref()
  return {
    received(bytes: number) {
      remaining -= bytes
      sinceRefresh += bytes
      if (sinceRefresh < Math.min(STALL_BYTES, remaining)) return
      sinceRefresh = 0
      timer.refresh()
    },
    stop: () => clearTimeout(timer),
  }
}

function stalled(asset: ReleaseAsset, received: number, idleMs: number): StackEmulatorError {
  return new StackEmulatorError(
    `The download of ${asset.name} stalled at ${formatBytes(received)} of ${formatBytes(asset.size)}: less than ${formatBytes(STALL_BYTES)} arrived in ${idleMs / 1000} s`,
    { code: 'PULL_FAILED', fix: 'Run the pull again: it resumes where it stopped. On a slow link, raise STACK_EMULATOR_PULL_IDLE_TIMEOUT (seconds).' },
  )
}

function oversized(asset: ReleaseAsset, expected: number): StackEmulatorError {
  return new StackEmulatorError(
    `The download of ${asset.name} (${asset.url}) sent more than the ${expected} bytes expected (the release lists ${asset.size}); the partial download was removed`,
    { code: 'PULL_FAILED', fix: 'Try again later; if it persists, pull another release (--tag) or check what STACK_EMULATOR_RELEASES_URL serves.' },
  )
}

/** Removes the part file and its record. */
export async function discardPart(part: string): Promise<void> {
  await Promise.all([fs.rm(part, { force: true }), fs.rm(`${part}.json`, { force: true })])
}

async function hashFile(file: string, hash: crypto.Hash): Promise<void> {
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 2 ** 20 })) hash.update(chunk as Buffer)
}

async function writeJson(file: string, value: unknown): Promise<void> {
  await fs.writeFile(`${file}.tmp`, JSON.stringify(value, null, 2))
  await fs.rename(`${file}.tmp`, file)
}

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value) || undefined

function errorText(error: unknown): string {
  const e = error as NodeJS.ErrnoException
  return e.code ? `${e.code}: ${e.message}` : String(e.message ?? error)
}

export { formatBytes } from '../files.js'

/** One progress phase: `downloading x.qcow2 (41.2 of 78.3 MB, 35.1 MB/s, 2 s left)`. */
export function describeDownload(name: string, p: PullProgress): string {
  const total = formatBytes(p.totalBytes)
  const received = formatBytes(p.receivedBytes).replace(new RegExp(` ${total.split(' ')[1]}$`), '')
  if (p.bytesPerSecond <= 0) return `downloading ${name} (${received} of ${total})`
  const left = Math.ceil((p.totalBytes - p.receivedBytes) / p.bytesPerSecond)
  const eta = left < 90 ? `${left} s` : `${Math.round(left / 60)} min`
  return `downloading ${name} (${received} of ${total}, ${formatBytes(p.bytesPerSecond)}/s, ${eta} left)`
}
