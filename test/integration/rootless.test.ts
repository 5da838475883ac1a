/**
 * Issue 24, item 2: a user without root installs the packed package in a project of their own
 * and runs the README's commands on a fresh cache: `doctor`, `image build` (mmdebstrap in its
 * unshare mode: minutes), `start` (a cold boot and the snapshot's capture) and `stop`. The image
 * must hold what the root build holds (the global setup's, in the shared cache): the same files
 * with the same modes and owners, and the same packages. Run as root, the suite makes the user
 * (`se-nonroot`, with subordinate ids) when missing; run as a user, it is that user.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fixtureDir, fixtureFingerprint } from '../../src/image/fixture.js'
import { rootlessBlockers } from '../../src/image/rootless.js'
import { http, root, sharedCache } from '../helpers.js'

const USER = 'se-nonroot'
const asRoot = process.getuid?.() === 0
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-rootless-'))
const cache = path.join(dir, 'cache') // a fresh cache, as on a new machine
const project = path.join(dir, 'project')
let user: { username: string; uid: number; gid: number; home: string }

/** A command as the user, in the project, with a login's environment (no sbin on PATH) and nothing of this run's. */
function asUser(command: string[], timeout: number) {
  const env = {
    HOME: user.home,
    USER: user.username,
    LOGNAME: user.username,
    LANG: 'C.UTF-8',
    PATH: [path.dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
    STACK_EMULATOR_CACHE_DIR: cache,
    STACK_EMULATOR_HOME: path.join(dir, 'state'),
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => /^(https?|no)_proxy$/i.test(key))),
  }
  const [file, ...args] = asRoot
    ? ['runuser', '-u', user.username, '--', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...command]
    : command
  // As root, runuser is found on this run's PATH (sbin); `env -i` then gives the command only the user's.
  return execa(file!, args, { cwd: project, env: asRoot ? { PATH: process.env.PATH } : env, extendEnv: false, reject: false, all: true, timeout })
}

async function ensureUser(): Promise<typeof user> {
  if (!asRoot) {
    const me = os.userInfo()
    return { username: me.username, uid: me.uid, gid: me.gid, home: me.homedir }
  }
  if ((await execa('id', ['-u', USER], { reject: false })).exitCode !== 0) await execa('useradd', ['-m', '-s', '/bin/bash', USER])
  const [uid, gid] = await Promise.all([execa('id', ['-u', USER]), execa('id', ['-g', USER])])
  const found = { username: USER, uid: Number(uid.stdout), gid: Number(gid.stdout), home: (await execa('getent', ['passwd', USER])).stdout.split(':')[5]! }
  // useradd gives a new user subordinate ids; one made otherwise gets them as the doctor says.
  const grant = (await rootlessBlockers(undefined, { user: found })).find((b) => b.fix?.startsWith('sudo usermod '))
  if (grant) await execa('usermod', grant.fix!.split(' ').slice(2))
  return found
}

/** Every entry of the disk's root file system: path, mode (type and permissions), owner, group (debugfs, no mount). */
async function rootListing(disk: string): Promise<Map<string, string>> {
  const raw = path.join(fs.mkdtempSync(path.join(dir, 'listing-')), 'disk.raw') // both images' folders have the same name
  await execa('qemu-img', ['convert', '-O', 'raw', disk, raw])
  try {
    const table = JSON.parse((await execa('sfdisk', ['-J', raw])).stdout) as { partitiontable: { partitions: { start: number }[] } }
    const device = `${raw}?offset=${table.partitiontable.partitions[1]!.start * 512}`
    const entries = new Map<string, string>()
    for (let level = ['/']; level.length > 0; ) {
      // One debugfs per depth; it echoes each command ("debugfs: ls -p <dir>") before its output.
      const { stdout } = await execa('debugfs', ['-f', '-', device], { input: level.map((d) => `ls -p "${d}"`).join('\n'), stderr: 'ignore' })
      const next: string[] = []
      let parent = ''
      for (const line of stdout.split('\n')) {
        const command = /^debugfs: ls -p "(.*)"$/.exec(line)
        if (command) parent = command[1]!
        const entry = /^\/\d+\/(\d+)\/(\d+)\/(\d+)\/(.*)\/\d*\/$/.exec(line)
        if (!entry || entry[4] === '.' || entry[4] === '..') continue
        const [, mode, uid, gid, name] = entry
        const full = path.posix.join(parent, name!)
        entries.set(full, `${mode} ${uid}:${gid}`)
        if ((Number.parseInt(mode!, 8) & 0o170000) === 0o040000) next.push(full)
      }
      level = next
    }
    return entries
  } finally {
    fs.rmSync(path.dirname(raw), { recursive: true, force: true })
  }
}

beforeAll(async () => {
  user = await ensureUser()
  const blockers = await rootlessBlockers(undefined, { user })
  expect(blockers, `this host cannot build without root: ${blockers.map((b) => `${b.problem} (${b.fix ?? 'root only'})`).join('; ')}`).toEqual([])
  // From the built dist/ as it is (prepack's `rm -rf dist` would pull it from under other test files).
  expect(fs.existsSync(path.join(root, 'dist/cli/main.js')), 'run `npm run build` first').toBe(true)
  const pack = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: root })
  const tarball = path.join(dir, (JSON.parse(pack.stdout) as { filename: string }[])[0]!.filename)
  fs.mkdirSync(project)
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  fs.chmodSync(dir, 0o755)
  if (asRoot) await execa('chown', ['-R', `${user.uid}:${user.gid}`, dir])
  const install = await asUser(['npm', 'install', '--no-audit', '--no-fund', '--prefer-offline', tarball], 300_000)
  expect(install.exitCode, install.all).toBe(0)
}, 400_000)

afterAll(async () => {
  if (user) await asUser(['npx', 'stack-emulator', 'stop'], 120_000)
  fs.rmSync(dir, { recursive: true, force: true })
}, 180_000)

describe('a user without root, on a fresh cache', () => {
  it('doctor says the image builds without root, at the first start', async () => {
    const doctor = await asUser(['npx', 'stack-emulator', 'doctor', '--json'], 60_000)
    const findings = Object.fromEntries((JSON.parse(doctor.stdout) as { findings: { id: string }[] }).findings.map((f) => [f.id, f]))
    expect(findings.rootless, doctor.all).toMatchObject({ status: 'ok' })
    expect(findings.image).toMatchObject({ status: 'ok', message: expect.stringMatching(/not built yet; the first start builds it/) })
  })

  it('builds the fixture image into their own cache, all of it theirs', async () => {
    const started = Date.now()
    const build = await asUser(['npx', 'stack-emulator', 'image', 'build'], 1_200_000)
    expect(build.exitCode, build.all).toBe(0)
    console.log(`rootless.test.ts: image build as ${user.username} took ${Math.round((Date.now() - started) / 1000)} s`)
    const image = fixtureDir(cache, await fixtureFingerprint())
    expect(build.stdout).toContain(`Fixture image ready: ${path.join(image, 'manifest.json')}`)
    expect(fs.readdirSync(path.dirname(image)).filter((name) => name.includes('.fixture-build') || name.includes('staging'))).toEqual([])
    const notTheirs = (await execa('find', [cache, '!', '-uid', String(user.uid)])).stdout.trim()
    expect(notTheirs).toBe('')
  }, 1_260_000)

  it("holds what the root build holds: the same files (dpkg's package records too), modes and owners", async () => {
    const fingerprint = await fixtureFingerprint()
    const theirs = path.join(fixtureDir(cache, fingerprint), 'disk.qcow2')
    const roots = path.join(fixtureDir(sharedCache, fingerprint), 'disk.qcow2')
    expect(fs.existsSync(roots), `the global setup builds ${roots}`).toBe(true)
    const [mine, reference] = await Promise.all([rootListing(theirs), rootListing(roots)])
    expect(mine.size).toBeGreaterThan(5000)
    const differences = [...new Set([...mine.keys(), ...reference.keys()])].filter((p) => mine.get(p) !== reference.get(p))
    expect(differences.map((p) => `${p}: ${mine.get(p) ?? 'missing'} (root build: ${reference.get(p) ?? 'missing'})`)).toEqual([])
    // The database cluster and the journal folder keep their owners (postgres, systemd-journal); nothing is the user's.
    expect(mine.get('/var/lib/postgresql/15/fixture')).toMatch(/^040700 (?!0:)\d+:\d+$/)
    expect([...mine].filter(([, v]) => v.endsWith(` ${user.uid}:${user.gid}`))).toEqual([])
  }, 300_000)

  it('starts the VM from it and stops it', async () => {
    const start = await asUser(['npx', 'stack-emulator', 'start', '--json'], 600_000)
    expect(start.exitCode, start.all).toBe(0)
    const { backendUrl } = JSON.parse(start.stdout) as { backendUrl: string }
    expect((await http(`${backendUrl}/health?db=1`)).status).toBe(200)
    const stop = await asUser(['npx', 'stack-emulator', 'stop'], 120_000)
    expect(stop.exitCode, stop.all).toBe(0)
  }, 720_000)
})
