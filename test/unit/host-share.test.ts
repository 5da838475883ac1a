/**
 * The share with the guest: only what the guest needs, at its absolute path; guest changes to a
 * config file copied back; links the guest may plant never followed, at rest or swapped in
 * between a check and a use (issue 22). Real files in a temp folder, no VM: a link is planted at
 * every depth below the share's root (its first folder, each folder after it, the file itself),
 * and a swap is injected at the moment the share's file is opened or written.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { HostShare } from '../../src/drivers/host-share.js'
import { mintCredentials } from '../../src/stack/credentials.js'
import { runtimeEnvText } from '../../src/stack/runtime-env.js'

afterEach(() => {
  vi.restoreAllMocks()
})

const realFs = { open: fsp.open, writeFile: fsp.writeFile }

/** A folder holding an instance folder (which the supervisor makes before the driver runs). */
const temp = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'share-'))
  fs.mkdirSync(path.join(dir, 'instance'), { mode: 0o700 })
  return dir
}

/** Every plain file under `dir`, with its content: what must not change outside the share. */
const filesUnder = (dir: string): Record<string, string> =>
  Object.fromEntries(
    fs
      .readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .map((name) => path.join(dir, name))
      .filter((file) => fs.lstatSync(file).isFile())
      .map((file) => [file, fs.readFileSync(file, 'utf8')]),
  )

/**
 * One case per depth of `hostFile`'s mirror: the share's path there, and an outside folder laid
 * out as the rest of the way (holding `planted` at the file's place when given), so that
 * following a link there would succeed.
 */
function depths(share: HostShare, hostFile: string, outside: string, planted?: string) {
  const parts = hostFile.split('/').filter(Boolean)
  return parts.map((_, i) => {
    const at = path.join(share.root, ...parts.slice(0, i + 1))
    const isFile = i === parts.length - 1
    const target = isFile ? path.join(outside, `file${i}`) : path.join(outside, `d${i}`)
    if (isFile) {
      if (planted !== undefined) fs.writeFileSync(target, planted)
    } else {
      fs.mkdirSync(path.join(target, ...parts.slice(i + 1, -1)), { recursive: true })
      if (planted !== undefined) fs.writeFileSync(path.join(target, ...parts.slice(i + 1)), planted)
    }
    const label = i === 0 ? 'the first folder of the share' : isFile ? 'the file itself' : `folder ${i + 1} (${parts[i]})`
    return {
      label,
      isFile,
      /** The guest replaces it with a link. */
      plant: () => {
        fs.rmSync(at, { recursive: true, force: true })
        fs.symlinkSync(target, at)
      },
      /** The guest moves it aside (still in the share) and puts a link in its place. */
      swap: () => {
        fs.renameSync(at, `${at}.moved`)
        fs.symlinkSync(target, at)
      },
    }
  })
}

/** Runs `swap` once, right before the call that opens (or writes) a share file named `name`. */
function swapOnAccess(share: HostShare, name: string, method: 'open' | 'writeFile', swap: () => void) {
  let swapped = false
  const real = realFs[method] as (...args: unknown[]) => Promise<unknown>
  const inShare = (p: unknown) => typeof p === 'string' && (p.startsWith(`${share.root}/`) || p.startsWith('/proc/self/fd/')) && path.basename(p).includes(name)
  vi.spyOn(fsp, method).mockImplementation(((p: unknown, ...rest: unknown[]) => {
    if (!swapped && inShare(p)) {
      swapped = true
      swap()
    }
    return real(p, ...rest)
  }) as never)
  return () => {
    vi.restoreAllMocks()
    return swapped
  }
}

/** The key file as the guest names it (its mirror is below the share's root). */
const keyPath = (share: HostShare) => path.join(share.vmDir, 'internal-pck')

/** A config file in an app folder, exposed once; a folder outside both. */
async function exposed() {
  const dir = temp()
  const file = path.join(dir, 'app', 'stack.config.ts')
  fs.mkdirSync(path.dirname(file))
  fs.writeFileSync(file, 'export const config = {}\n')
  const outside = path.join(dir, 'outside')
  fs.mkdirSync(outside)
  const share = new HostShare(path.join(dir, 'instance'), 'internal-pck')
  await share.prepare()
  await share.expose(file)
  return { dir, file, outside, share }
}

describe('HostShare', () => {
  it('mirrors the VM folder and an exposed file at their absolute paths, and nothing else', async () => {
    const dir = temp()
    const app = path.join(dir, 'app')
    fs.mkdirSync(app)
    fs.writeFileSync(path.join(app, 'stack.config.ts'), 'export const config = {}\n')
    fs.writeFileSync(path.join(app, 'secret.txt'), 'no')
    const share = new HostShare(path.join(dir, 'instance'), 'internal-pck')
    await share.prepare()
    await share.expose(path.join(app, 'stack.config.ts'))
    await share.writeVmFile('internal-pck', 'key')
    expect(fs.readdirSync(path.join(share.root, app))).toEqual(['stack.config.ts'])
    expect(fs.statSync(path.join(share.root, app, 'stack.config.ts')).mode & 0o777).toBe(0o600)
    expect(fs.readFileSync(share.internalKeyFile!, 'utf8')).toBe('key')
    expect(await share.readInternalKey()).toBe('key')
    expect(share.internalKeyFile).toBe(path.join(share.root, dir, 'instance', 'vm', 'internal-pck'))
    expect(fs.statSync(share.internalKeyFile!).mode & 0o777).toBe(0o600)
  })

  it('copies back only what the guest changed, and before it mirrors the file in again', async () => {
    const dir = temp()
    const file = path.join(dir, 'stack.config.ts')
    fs.writeFileSync(file, '')
    const share = new HostShare(path.join(dir, 'instance'))
    await share.prepare()
    await share.expose(file)
    fs.writeFileSync(file, 'edited by the user meanwhile')
    await share.syncBack()
    expect(fs.readFileSync(file, 'utf8')).toBe('edited by the user meanwhile') // the guest changed nothing
    fs.writeFileSync(path.join(share.root, file), 'export const config = {}\n') // the guest writes
    await share.syncBack()
    expect(fs.readFileSync(file, 'utf8')).toBe('export const config = {}\n')
    fs.writeFileSync(path.join(share.root, file), 'export const config = { a: 1 }\n') // the guest writes, then a mint
    await share.expose(file)
    expect(fs.readFileSync(file, 'utf8')).toBe('export const config = { a: 1 }\n')
  })

  it('mirrors in: a link at any depth is refused, and a folder swapped for a link mid-write changes nothing outside', async () => {
    for (const mode of ['plant', 'swap'] as const) {
      const first = await exposed()
      for (const [i] of depths(first.share, first.file, first.outside).entries()) {
        const { file, outside, share } = await exposed()
        const d = depths(share, file, outside)[i]!
        const before = filesUnder(outside)
        if (mode === 'plant') {
          d.plant()
          await expect(share.expose(file), d.label).rejects.toMatchObject({ code: 'STATE_UNSAFE' })
        } else {
          if (d.isFile) continue // the file is replaced by a rename, never opened: nothing to race
          const swapped = swapOnAccess(share, 'stack.config.ts', 'writeFile', d.swap)
          await share.expose(file) // into the folder that was checked, now moved aside in the share
          expect(swapped(), d.label).toBe(true)
        }
        expect(filesUnder(outside), `${mode} at ${d.label}`).toEqual(before)
        expect(fs.readFileSync(file, 'utf8')).toBe('export const config = {}\n')
      }
    }
  })

  it('copies back: never reads through a link the guest made, at rest or swapped in mid-read', async () => {
    for (const mode of ['plant', 'swap'] as const) {
      const first = await exposed()
      for (const [i] of depths(first.share, first.file, first.outside).entries()) {
        const s = await exposed()
        const d = depths(s.share, s.file, s.outside, 'HOST SECRET')[i]!
        fs.writeFileSync(path.join(s.share.root, s.file), 'written by the guest\n')
        const reached = mode === 'plant' ? (d.plant(), () => true) : swapOnAccess(s.share, 'stack.config.ts', 'open', d.swap)
        const synced = s.share.syncBack()
        if (mode === 'plant' || d.isFile) {
          await expect(synced, `${mode} at ${d.label}`).rejects.toThrow(/Not copied back from the VM's share: .*(a link|not a folder)/)
          expect(fs.readFileSync(s.file, 'utf8'), d.label).toBe('export const config = {}\n')
        } else {
          // A folder swapped after it was opened: what is read is still the guest's own file.
          await synced
          expect(fs.readFileSync(s.file, 'utf8'), d.label).toBe('written by the guest\n')
        }
        expect(reached(), d.label).toBe(true)
      }
    }
  })

  it("copies back: never writes through a link at the user's own path", async () => {
    const { dir, file, share } = await exposed()
    const victim = path.join(dir, 'victim.txt')
    fs.writeFileSync(victim, 'untouched')
    fs.rmSync(file)
    fs.symlinkSync(victim, file)
    fs.writeFileSync(path.join(share.root, file), 'written by the guest\n')
    await expect(share.syncBack()).rejects.toThrow(/is now a symbolic link; not written through it/)
    expect(fs.readFileSync(victim, 'utf8')).toBe('untouched')
    fs.rmSync(file) // what the user removed is not brought back
    await share.syncBack()
    expect(fs.existsSync(file)).toBe(false)
  })

  it("reads the internal key (and the VM folder's files) only from the share, at rest or swapped in mid-read", async () => {
    const keys: string[] = []
    const route = http.createServer((req, res) => {
      keys.push(String(req.headers['x-stack-publishable-client-key']))
      res.end(JSON.stringify({ project_id: 'p', publishable_client_key: 'pck', secret_server_key: 'ssk', super_secret_admin_key: 'sak' }))
    })
    await new Promise<void>((resolve) => route.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(route.address() as net.AddressInfo).port}/project`
    try {
      const { outside, share } = await exposed()
      await share.writeVmFile('internal-pck', 'the-guest-key')
      for (const mode of ['plant', 'swap'] as const) {
        for (const [i] of depths(share, keyPath(share), outside).entries()) {
          const s = await exposed()
          await s.share.writeVmFile('internal-pck', 'the-guest-key')
          const d = depths(s.share, keyPath(s.share), s.outside, 'HOST SECRET')[i]!
          const reached = mode === 'plant' ? (d.plant(), () => true) : swapOnAccess(s.share, 'internal-pck', 'open', d.swap)
          const minted = mintCredentials(url, s.file, s.share)
          if (mode === 'plant' || d.isFile) {
            await expect(minted, `${mode} at ${d.label}`).rejects.toMatchObject({ code: 'STATE_UNSAFE' })
            await expect(s.share.readVmFile('internal-pck'), d.label).rejects.toMatchObject({ code: 'STATE_UNSAFE' })
          } else {
            await minted // the key from the folder that was checked
          }
          expect(reached(), d.label).toBe(true)
        }
      }
      expect(keys.every((key) => key === 'the-guest-key')).toBe(true)
      expect(keys.length).toBeGreaterThan(0)
      // A FIFO in place of the key: refused at once, not read (which would hang).
      fs.rmSync(share.internalKeyFile!)
      execFileSync('mkfifo', [share.internalKeyFile!])
      await expect(share.readInternalKey()).rejects.toThrow(/is not a plain file/)
    } finally {
      route.close()
    }
  })

  it("writes the VM folder's files only into the share, at rest or swapped in mid-write", async () => {
    for (const mode of ['plant', 'swap'] as const) {
      const { outside, share } = await exposed()
      await share.writeVmFile('internal-pck', 'first')
      for (const [i] of depths(share, keyPath(share), outside).entries()) {
        const s = await exposed()
        await s.share.writeVmFile('internal-pck', 'first')
        const d = depths(s.share, keyPath(s.share), s.outside, 'HOST SECRET')[i]!
        const before = filesUnder(s.outside)
        if (mode === 'plant') {
          d.plant()
          const written = s.share.writeVmFile('internal-pck', 'second')
          if (d.isFile)
            await written // the link itself is replaced, not followed
          else await expect(written, d.label).rejects.toMatchObject({ code: 'STATE_UNSAFE' })
        } else {
          if (d.isFile) continue
          const swapped = swapOnAccess(s.share, 'internal-pck', 'writeFile', d.swap)
          await s.share.writeVmFile('internal-pck', 'second') // into the folder that was checked
          expect(swapped(), d.label).toBe(true)
        }
        expect(filesUnder(s.outside), `${mode} at ${d.label}`).toEqual(before)
      }
    }
  })

  it('empties the share at each start without following a link in it', async () => {
    const { dir, share } = await exposed()
    const outside = path.join(dir, 'outside')
    fs.writeFileSync(path.join(outside, 'keep'), 'host data')
    fs.symlinkSync(outside, path.join(share.root, 'link'))
    fs.symlinkSync(outside, path.join(share.root, dir, 'instance', 'vm', 'link'))
    await share.prepare()
    expect(fs.readFileSync(path.join(outside, 'keep'), 'utf8')).toBe('host data')
    expect(fs.readdirSync(share.root)).toEqual([dir.split('/')[1]])
  })
})

describe('HostShare.expose: what the credentials op may mirror into the share', () => {
  it('refuses anything but a plain config file, with the fix, and mirrors nothing of it', async () => {
    const dir = temp()
    const share = new HostShare(path.join(dir, 'instance'), 'internal-pck')
    await share.prepare()
    const at = (name: string) => path.join(dir, name)
    fs.writeFileSync(at('id_ed25519'), 'PRIVATE KEY')
    fs.writeFileSync(at('real.config.ts'), 'export const config = {}\n')
    fs.symlinkSync(at('real.config.ts'), at('stack.config.ts'))
    execFileSync('mkfifo', [at('fifo.config.ts')])
    fs.mkdirSync(at('folder.ts'))
    fs.writeFileSync(at('big.config.ts'), Buffer.alloc(2 * 1024 * 1024, 0x20))
    const cases: [string, RegExp][] = [
      ['/etc/shadow', /is not a Stack config file .*Pass your app's stack\.config\.ts as configFile/],
      ['/etc/passwd', /is not a Stack config file/],
      [at('id_ed25519'), /is not a Stack config file/],
      [
        at('stack.config.ts'),
        new RegExp(
          `is a symbolic link; only a plain file is shared with the VM\\. Pass the file it points to: configFile: '${fs.realpathSync(at('real.config.ts'))}'`,
        ),
      ],
      [at('fifo.config.ts'), /is not a plain file/],
      [at('folder.ts'), /is not a plain file/],
      [at('big.config.ts'), /is larger than 1 MiB/],
      [at('missing.config.ts'), /does not exist\. Create it/],
    ]
    for (const [file, message] of cases) {
      await expect(share.expose(file), file).rejects.toMatchObject({ code: 'CREDENTIALS', message: expect.stringMatching(message) })
    }
    expect(fs.existsSync(path.join(share.root, 'etc'))).toBe(false)
    expect(fs.readdirSync(path.join(share.root, dir))).toEqual(['instance']) // only the VM folder
    await share.expose(at('real.config.ts'))
    expect(fs.statSync(path.join(share.root, at('real.config.ts'))).mode & 0o777).toBe(0o600)
  })
})

describe('runtimeEnvText', () => {
  it('writes the fixed lines, each service host port and the VM folder, as Stack Auth names them', () => {
    expect(runtimeEnvText({ hostPorts: { dashboard: 26700, backend: 26701, 'mock-oauth': 8114 }, vmDir: '', env: { STACK_EMULATOR_PORT_PREFIX: '81' } })).toBe(
      'STACK_EMULATOR_PORT_PREFIX=81\nSTACK_EMULATOR_DASHBOARD_HOST_PORT=26700\nSTACK_EMULATOR_BACKEND_HOST_PORT=26701\nSTACK_EMULATOR_MOCK_OAUTH_HOST_PORT=8114\nSTACK_EMULATOR_VM_DIR_HOST=\n',
    )
  })
})
