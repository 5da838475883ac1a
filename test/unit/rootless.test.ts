/**
 * What building the fixture image without root needs (src/image/rootless.ts), against files and
 * small fake programs in a temporary folder: no finding depends on this machine.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { handOver, rootBuildCommand, rootlessBlockers, USERNS_FILES } from '../../src/image/rootless.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-rootless-'))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const user = { username: 'alice', uid: 1234 }

/** A host: sysctl values, subuid/subgid lines, and the programs on its PATH. */
function host(
  name: string,
  setup: {
    sysctl?: Partial<Record<'usernsClone' | 'maxUserNamespaces' | 'apparmorUserns', string>>
    subuid?: string
    subgid?: string
    programs?: Record<string, string>
  },
) {
  const root = path.join(dir, name)
  const bin = path.join(root, 'bin')
  fs.mkdirSync(bin, { recursive: true })
  const files = Object.fromEntries(Object.keys(USERNS_FILES).map((key) => [key, path.join(root, key)])) as typeof USERNS_FILES
  for (const [key, value] of Object.entries(setup.sysctl ?? {})) fs.writeFileSync(files[key as keyof typeof USERNS_FILES], `${value}\n`)
  if (setup.subuid !== undefined) fs.writeFileSync(files.subuid, setup.subuid)
  if (setup.subgid !== undefined) fs.writeFileSync(files.subgid, setup.subgid)
  const programs = { newuidmap: 'exit 0', newgidmap: 'exit 0', ...setup.programs }
  for (const [program, script] of Object.entries(programs)) fs.writeFileSync(path.join(bin, program), `#!/bin/sh\n${script}\n`, { mode: 0o755 })
  return { files, PATH: bin }
}

describe('building the fixture image without root', () => {
  it('is possible with subordinate ids (by name or uid) and namespaces allowed', async () => {
    const h = host('ok', {
      sysctl: { usernsClone: '1', maxUserNamespaces: '1000', apparmorUserns: '0' },
      subuid: 'bob:100000:65536\nalice:165536:65536\n',
      subgid: '1234:165536:70000\n',
      programs: { unshare: 'exit 0' },
    })
    expect(await rootlessBlockers(h.files, { user, PATH: h.PATH })).toEqual([])
  })

  it('names each missing piece with its fix; a new range starts past every range given', async () => {
    const h = host('bare', {
      subuid: 'bob:100000:65536\nalice:300000:1000\n',
      subgid: 'carol:200000:65536\n',
      programs: { newuidmap: 'exit 0', newgidmap: '' },
    })
    fs.rmSync(path.join(h.PATH, 'newgidmap'))
    expect(await rootlessBlockers(h.files, { user, PATH: h.PATH })).toEqual([
      { problem: 'newgidmap not found', fix: 'sudo apt-get install uidmap' },
      {
        problem: `alice has no range of 65536 subordinate ids in ${h.files.subuid} and ${h.files.subgid}`,
        fix: 'sudo usermod --add-subuids 301000-366535 --add-subgids 301000-366535 alice',
      },
    ])
    const gidsOnly = host('gids', { subuid: 'alice:100000:65536\n' })
    expect(await rootlessBlockers(gidsOnly.files, { user, PATH: gidsOnly.PATH })).toEqual([
      { problem: `alice has no range of 65536 subordinate ids in ${gidsOnly.files.subgid}`, fix: 'sudo usermod --add-subgids 165536-231071 alice' },
    ])
  })

  it("says which kernel switch is off (Debian's, the count, Ubuntu's AppArmor)", async () => {
    const h = host('off', {
      sysctl: { usernsClone: '0', maxUserNamespaces: '0', apparmorUserns: '1' },
      subuid: 'alice:100000:65536\n',
      subgid: 'alice:100000:65536\n',
    })
    const blockers = await rootlessBlockers(h.files, { user, PATH: h.PATH })
    expect(blockers.map((b) => b.fix)).toEqual([
      'sudo sysctl -w kernel.unprivileged_userns_clone=1',
      'sudo sysctl -w user.max_user_namespaces=10000',
      'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0',
    ])
  })

  it('probes a namespace when all looks right (a container may forbid them): no fix but root then', async () => {
    const h = host('seccomp', {
      subuid: 'alice:100000:65536\n',
      subgid: 'alice:100000:65536\n',
      programs: { unshare: 'echo "unshare: unshare failed: Operation not permitted" >&2; exit 1' },
    })
    expect(await rootlessBlockers(h.files, { user, PATH: h.PATH })).toEqual([
      { problem: 'this host does not let users create user namespaces (unshare: unshare failed: Operation not permitted)' },
    ])
  })

  it('gives the root command for the cache, quoted for the shell', () => {
    expect(rootBuildCommand('/home/alice/.cache/stack-emulator')).toBe(
      'sudo env "PATH=$PATH" STACK_EMULATOR_CACHE_DIR=/home/alice/.cache/stack-emulator npx stack-emulator image build',
    )
    expect(rootBuildCommand("/home/al ice/it's")).toBe(`sudo env "PATH=$PATH" STACK_EMULATOR_CACHE_DIR='/home/al ice/it'\\''s' npx stack-emulator image build`)
  })
})

describe.runIf(process.getuid?.() === 0)("a root build into a user's cache (as root only)", () => {
  it("hands the image and the images folder to the cache folder's owner, links not followed", async () => {
    const cache = path.join(dir, 'their-cache')
    const built = path.join(cache, 'images', 'fixture-0123456789abcdef.staging-1')
    fs.mkdirSync(built, { recursive: true })
    fs.writeFileSync(path.join(built, 'disk.qcow2'), '')
    fs.symlinkSync('/etc/hostname', path.join(built, 'link'))
    fs.chownSync(cache, 4321, 4322)
    await handOver(cache, built)
    for (const p of [path.join(cache, 'images'), built, path.join(built, 'disk.qcow2')]) expect(fs.statSync(p)).toMatchObject({ uid: 4321, gid: 4322 })
    expect(fs.lstatSync(path.join(built, 'link'))).toMatchObject({ uid: 4321 })
    expect(fs.statSync('/etc/hostname').uid).toBe(0)
    // A cache of root's stays root's.
    const rootCache = path.join(dir, 'root-cache')
    fs.mkdirSync(path.join(rootCache, 'images', 'x'), { recursive: true })
    await handOver(rootCache, path.join(rootCache, 'images', 'x'))
    expect(fs.statSync(path.join(rootCache, 'images', 'x')).uid).toBe(0)
  })
})
