/** Shared helpers for the integration tier: a private state folder, the CLI, processes, HTTP. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { execa, type ResultPromise } from 'execa'
import { request } from 'undici'
import { afterAll } from 'vitest'
import { pollUntil } from '../src/poll.js'
import { readSettings } from '../src/settings.js'

export const root = path.resolve(import.meta.dirname, '..')
export const cliPath = path.join(root, 'dist/cli/main.js')

/** The image cache every test shares (built once by the global setup). */
export const sharedCache = readSettings().cacheRoot

/**
 * A private STACK_EMULATOR_HOME for this test file (this process and the processes it starts),
 * with the shared image cache. Returns the folder, which goes after the file's last hook: private
 * caches in it hold snapshots of hundreds of MB, and a run makes a dozen.
 */
export function useTempHome(prefix = 'se-'): string {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  process.env.STACK_EMULATOR_HOME = home
  process.env.STACK_EMULATOR_CACHE_DIR = sharedCache
  afterAll(() => fs.rmSync(home, { recursive: true, force: true })) // after hooks run last-registered first
  return home
}

/** A cache folder of its own (for snapshot tests) that reuses the shared built images. */
export function privateCache(home: string, cache = path.join(home, 'cache')): string {
  fs.mkdirSync(cache, { recursive: true })
  fs.symlinkSync(path.join(sharedCache, 'images'), path.join(cache, 'images'))
  return cache
}

/**
 * A private cache that starts with a copy of the shared cache's ready snapshots (not their seeded
 * ones): a test of seeded snapshots then saves its own without paying a cold boot and capture
 * (about 40 s) for a ready snapshot of its own. The shared one is captured first if it is missing.
 */
export async function privateCacheWithSnapshot(home: string, cache?: string): Promise<string> {
  const snapshots = path.join(sharedCache, 'snapshots')
  const ready = () =>
    (fs.existsSync(snapshots) ? fs.readdirSync(snapshots) : []).filter(
      (d) => /^[\w.-]+-[0-9a-f]{16}$/.test(d) && !d.includes('-checkpoint-') && fs.existsSync(path.join(snapshots, d, 'snapshot.json')),
    )
  if (ready().length === 0) {
    const env = { STACK_EMULATOR_HOME: fs.mkdtempSync(path.join(home, 'capture-')), STACK_EMULATOR_CACHE_DIR: sharedCache }
    const started = await cli(['start', '--name', 'capture', '--json'], env)
    if (started.exitCode !== 0) throw new Error(`capturing the shared ready snapshot failed: ${started.stderr}`)
    await cli(['stop', '--name', 'capture'], env)
  }
  const own = privateCache(home, cache)
  fs.mkdirSync(path.join(own, 'snapshots'), { recursive: true, mode: 0o700 })
  for (const dir of ready()) await execa('cp', ['-a', '--sparse=always', path.join(snapshots, dir), path.join(own, 'snapshots', dir)])
  return own
}

/**
 * The stress tier (docs/testing.md): how many rounds a storm of processes runs. All of them with
 * STACK_EMULATOR_STRESS=1 (`.ci/run` sets it when the code the storms guard changed since the last
 * green run), else `bounded`, enough to cover every moment the storm aims at once.
 */
export function stressRounds(full: number, bounded: number): number {
  return process.env.STACK_EMULATOR_STRESS === '1' ? full : bounded
}

export function cli(args: string[], env: Record<string, string | undefined> = {}) {
  return execa(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, reject: false, timeout: 300_000 })
}

/**
 * The instances under a STACK_EMULATOR_HOME: folders of its state root named as instances are
 * (the projects' generated config files sit beside them, in `.projects`, which no instance name can be).
 */
export function instanceNames(home: string): string[] {
  const state = path.join(home, 'state')
  return fs.existsSync(state)
    ? fs
        .readdirSync(state, { withFileTypes: true })
        .filter((e) => e.isDirectory() && /^[a-zA-Z0-9]/.test(e.name))
        .map((e) => e.name)
    : []
}

/** QEMU and supervisor processes whose command line mentions `needle` (a state folder). */
export function processesMentioning(needle: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ')
      if (cmdline.includes(needle) && !cmdline.includes('vitest')) found.push({ pid: Number(entry), cmdline })
    } catch {
      // the process ended while we looked
    }
  }
  return found
}

export const qemuProcesses = (needle: string) => processesMentioning(needle).filter((p) => p.cmdline.includes('qemu-system'))

/** Polls until `check` is true or the time is up (src/poll.ts); returns the last value of check. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  return (await pollUntil(check, { timeoutMs, intervalMs })) ?? false
}

export async function http(url: string, init: { method?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const response = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    headers: { ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  })
  const text = await response.body.text()
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return { status: response.statusCode, text, json: json as any }
}

/** Headers that authenticate Stack Auth's REST API as a project's server (access type and key). */
export function serverHeaders(env: Record<string, string>): Record<string, string> {
  return {
    'x-stack-project-id': env.STACK_PROJECT_ID!,
    'x-stack-access-type': 'server',
    'x-stack-secret-server-key': env.STACK_SECRET_SERVER_KEY!,
  }
}

/**
 * The internal project's publishable client key in the fixture VM: the placeholder Stack Auth's
 * snapshot-built emulator image uses (32 "0"s, then 32 "f"s), which the fixture's backend takes
 * unless its environment names another (STACK_SEED_INTERNAL_PROJECT_PUBLISHABLE_CLIENT_KEY).
 */
export const INTERNAL_PCK = '0'.repeat(32) + 'f'.repeat(32)

/** Headers of Stack Auth's CLI on the local-emulator credentials route: client access to `internal`. */
export function internalClientHeaders(pck = INTERNAL_PCK): Record<string, string> {
  return { 'x-stack-project-id': 'internal', 'x-stack-access-type': 'client', 'x-stack-publishable-client-key': pck }
}

/** POST /api/v1/users (server access): Stack Auth's create-user body. 201 on success. */
export async function createUser(backendUrl: string, env: Record<string, string>, email: string) {
  return http(`${backendUrl}/api/v1/users`, { method: 'POST', body: { primary_email: email }, headers: serverHeaders(env) })
}

export async function listUserEmails(backendUrl: string, env: Record<string, string>): Promise<string[]> {
  const res = await http(`${backendUrl}/api/v1/users`, { headers: serverHeaders(env) })
  return (res.json?.items ?? []).map((u: { primary_email: string }) => u.primary_email)
}

/**
 * What still runs under `dir` once a stopping supervisor had a moment to exit (it leaves
 * within ~100 ms of its last lease); [] when nothing leaked.
 */
export async function leftoversUnder(dir: string, timeoutMs = 2000): Promise<{ pid: number; cmdline: string }[]> {
  await eventually(() => processesMentioning(dir).length === 0, timeoutMs)
  return processesMentioning(dir)
}

export interface Acquirer {
  child: ResultPromise
  /** The next JSON line the acquirer printed (its handle, an error, or an answer). */
  next(): Promise<any>
  send(line: string): void
}

/** A test runner stand-in in its own process (test/programs/acquirer.mjs): acquires, prints, holds. */
export function spawnAcquirer(options: object, env: Record<string, string> = {}): Acquirer {
  const child = execa(process.execPath, [path.join(root, 'test/programs/acquirer.mjs'), JSON.stringify(options)], {
    env,
    reject: false,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  return {
    child,
    async next() {
      const { value, done } = await lines.next()
      if (done) throw new Error(`acquirer exited: ${(await child).stderr}`)
      return JSON.parse(value)
    },
    send: (line) => child.stdin!.write(`${line}\n`),
  }
}

/** Supervisors (not QEMU) serving the instance folder `dir`. */
export const supervisorProcesses = (dir: string) => processesMentioning(dir).filter((p) => p.cmdline.includes('supervisor/main.js'))

/**
 * A copy of the built fixture image under another manifest: links to its files (the disk and
 * the runtime volume's base.env) beside a manifest with `change` applied. Returns the manifest path.
 */
export async function fixtureVariant(dir: string, change: (manifest: Record<string, any>) => void): Promise<string> {
  const { fixtureDir, fixtureFingerprint } = await import('../src/image/fixture.js')
  const built = fixtureDir(sharedCache, await fixtureFingerprint())
  fs.mkdirSync(dir, { recursive: true })
  for (const file of ['disk.qcow2', 'base.env']) fs.symlinkSync(path.join(built, file), path.join(dir, file))
  const manifest = JSON.parse(fs.readFileSync(path.join(built, 'manifest.json'), 'utf8'))
  change(manifest)
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest))
  return path.join(dir, 'manifest.json')
}
