/**
 * A loopback stand-in for GitHub's release API (test/integration/pull.test.ts): the release of
 * a tag, the asset's API URL answering 302 to the file on a second server (another origin), and
 * the file with Range support that can be switched off, slowed down, cut halfway, dripped, or
 * followed by bytes the release does not list. A release says which commit it was built from as
 * Stack Auth's workflow writes it (see `ReleaseInfo`).
 */
import { createReadStream, statSync } from 'node:fs'
import fs from 'node:fs/promises'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { SHIPPED_COMMIT } from '../src/image/pull.js'

/**
 * A release's notes and target. By default as Stack Auth's workflow makes them
 * (.github/workflows/qemu-emulator-build.yaml): `emulator-<branch>-latest` targets the commit
 * it was built from (here the one the shipped files describe, so pulls print no warning) with
 * notes that name none; an immutable tag's sha8 is in its name, its target is the branch.
 */
export interface ReleaseInfo {
  body?: string | null
  target_commitish?: string
}

/** The notes the workflow's "Prepare release assets" step writes for an immutable release. */
export const workflowNotes = (branch: string, sha: string) =>
  `## QEMU Emulator Images\n\nBuilt from \`${branch}\` @ \`${sha}\`\n\n### Images\n| File | Description |\n|------|-------------|\n| \`stack-emulator-arm64.qcow2\` | ARM64 disk image |\n`

export interface Served {
  server: 'api' | 'files'
  path: string
  status: number
  accept?: string
  range?: string
  ifRange?: string
  authorization?: string
  /** Body bytes sent (files). */
  bytes: number
}

interface Asset {
  id: number
  name: string
  file: string
  size: number
}

export interface ReleaseServer {
  /** Base URL of the API (what STACK_EMULATOR_RELEASES_URL takes). */
  api: string
  served: Served[]
  /**
   * Publishes `file` as the asset `name` of release `tag` (a new asset id each time, as a
   * re-upload); `info` sets the release's notes and target (kept for later uploads to the tag).
   */
  publish(tag: string, name: string, file: string, info?: ReleaseInfo): void
  mode: {
    /** Honour Range / If-Range (206) and say Accept-Ranges. */
    range: boolean
    /** Cut the next file response after this many bytes (then back to undefined). */
    dropAfter?: number
    /** Slow file responses to about this rate. */
    bytesPerSecond?: number
    /** Send the next file response without Content-Length, followed by this many bytes more than the file (then back to undefined). */
    extraBytes?: number
    /** After this many bytes of the next file response, send one byte per `everyMs` until the client goes (then back to undefined). */
    drip?: { after: number; everyMs: number }
  }
  /** Bytes of files served since `since` (an index into served). */
  fileBytes(since?: number): number
  close(): Promise<void>
}

export async function startReleaseServer(): Promise<ReleaseServer> {
  const releases = new Map<string, Asset[]>()
  const infos = new Map<string, ReleaseInfo>()
  const byId = new Map<number, Asset>()
  let nextId = 1000
  const served: Served[] = []
  const mode: ReleaseServer['mode'] = { range: true }
  const record = (server: Served['server'], req: http.IncomingMessage, status: number): Served => {
    const entry: Served = {
      server,
      path: req.url ?? '',
      status,
      bytes: 0,
      accept: req.headers.accept,
      range: req.headers.range,
      ifRange: req.headers['if-range'] as string | undefined,
      authorization: req.headers.authorization,
    }
    served.push(entry)
    return entry
  }
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(body))
  }

  const files = http.createServer(async (req, res) => {
    const asset = byId.get(Number(/^\/files\/(\d+)\//.exec(req.url ?? '')?.[1]))
    if (!asset) {
      record('files', req, 404)
      return json(res, 404, { message: 'Not Found' })
    }
    const etag = `"${asset.id}-${asset.size}"`
    const wanted = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
    const start = mode.range && wanted && (!req.headers['if-range'] || req.headers['if-range'] === etag) ? Number(wanted[1]) : 0
    const headers: http.OutgoingHttpHeaders = {
      'content-type': 'application/octet-stream',
      'content-length': asset.size - start,
      etag,
      'last-modified': 'Wed, 01 Apr 2026 00:00:00 GMT',
    }
    if (mode.range) headers['accept-ranges'] = 'bytes'
    if (start > 0) headers['content-range'] = `bytes ${start}-${asset.size - 1}/${asset.size}`
    const { dropAfter, extraBytes, drip } = mode
    Object.assign(mode, { dropAfter: undefined, extraBytes: undefined, drip: undefined })
    if (extraBytes !== undefined) delete headers['content-length'] // chunked: nothing tells the client where the file ends
    const entry = record('files', req, start > 0 ? 206 : 200)
    res.writeHead(entry.status, headers)
    if (drip) return dripFile(res, entry, asset.file, start, drip)
    const started = Date.now()
    for await (const chunk of createReadStream(asset.file, { start, highWaterMark: 256 * 1024 }) as AsyncIterable<Buffer>) {
      const part = dropAfter !== undefined ? chunk.subarray(0, Math.max(0, dropAfter - entry.bytes)) : chunk
      if (part.length > 0 && !res.write(part)) await new Promise((r) => res.once('drain', r))
      entry.bytes += part.length
      if (dropAfter !== undefined && entry.bytes >= dropAfter) {
        await new Promise((r) => setTimeout(r, 100)) // let the client read what was sent
        res.socket?.destroy()
        return
      }
      if (mode.bytesPerSecond) {
        const ahead = (entry.bytes / mode.bytesPerSecond) * 1000 - (Date.now() - started)
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead))
      }
      if (res.destroyed) return
    }
    if (extraBytes) {
      res.write(Buffer.alloc(extraBytes, 0x5a))
      entry.bytes += extraBytes
    }
    res.end()
  })
  await listen(files)
  const filesBase = `http://127.0.0.1:${(files.address() as AddressInfo).port}`

  const api = http.createServer((req, res) => {
    const url = req.url ?? ''
    const tag = /^\/repos\/stack-auth\/stack-auth\/releases\/tags\/([^/?]+)$/.exec(url)?.[1]
    if (tag !== undefined) {
      const assets = releases.get(decodeURIComponent(tag))
      record('api', req, assets ? 200 : 404)
      if (!assets) return json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' })
      const name = decodeURIComponent(tag)
      const [, branch = 'dev', latest] = /^emulator-(.+)-(?:(latest)|\d{8}-[0-9a-f]{8})$/.exec(name) ?? []
      const info = {
        body: latest ? `Latest emulator images from \`${branch}\`. Auto-updated on each build.` : null,
        target_commitish: latest ? SHIPPED_COMMIT : branch,
        ...infos.get(name),
      }
      return json(res, 200, {
        tag_name: tag,
        ...info,
        published_at: '2026-04-01T00:00:00Z',
        assets: assets.map((a) => ({
          id: a.id,
          name: a.name,
          size: a.size,
          updated_at: '2026-04-01T00:00:00Z',
          url: `${apiBase}/repos/stack-auth/stack-auth/releases/assets/${a.id}`,
          browser_download_url: `${filesBase}/files/${a.id}/${a.name}`,
        })),
      })
    }
    const asset = byId.get(Number(/^\/repos\/stack-auth\/stack-auth\/releases\/assets\/(\d+)$/.exec(url)?.[1]))
    if (asset && req.headers.accept === 'application/octet-stream') {
      record('api', req, 302)
      res.writeHead(302, { location: `${filesBase}/files/${asset.id}/${asset.name}` })
      return res.end()
    }
    // GitHub answers JSON metadata to an asset request without the octet-stream Accept.
    record('api', req, asset ? 200 : 404)
    json(res, asset ? 200 : 404, asset ? { id: asset.id, name: asset.name } : { message: 'Not Found' })
  })
  await listen(api)
  const apiBase = `http://127.0.0.1:${(api.address() as AddressInfo).port}`

  return {
    api: apiBase,
    served,
    mode,
    publish(tag, name, file, info) {
      if (info) infos.set(tag, { ...infos.get(tag), ...info })
      const asset = { id: nextId++, name, file, size: statSync(file).size }
      byId.set(asset.id, asset)
      releases.set(tag, [...(releases.get(tag) ?? []).filter((a) => a.name !== name), asset])
    },
    fileBytes: (since = 0) =>
      served
        .slice(since)
        .filter((s) => s.server === 'files')
        .reduce((sum, s) => sum + s.bytes, 0),
    async close() {
      for (const server of [api, files]) {
        server.closeAllConnections()
        await new Promise((r) => server.close(r))
      }
    },
  }
}

/** `drip.after` bytes at once, then a byte every `drip.everyMs` while the client stays. */
async function dripFile(res: http.ServerResponse, entry: Served, file: string, start: number, drip: { after: number; everyMs: number }): Promise<void> {
  const bytes = (await fs.readFile(file)).subarray(start)
  res.write(bytes.subarray(0, drip.after))
  entry.bytes = drip.after
  while (!res.destroyed && entry.bytes < bytes.length) {
    await new Promise((r) => setTimeout(r, drip.everyMs))
    if (!res.destroyed) res.write(bytes.subarray(entry.bytes, ++entry.bytes))
  }
  res.end()
}

function listen(server: http.Server): Promise<void> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
}
