/**
 * The share with the guest: only what the guest needs, at its absolute path; guest changes to a
 * config file copied back; links the guest may plant never followed. Real files in a temp folder.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { HostShare } from '../../src/drivers/host-share.js'
import { runtimeEnvText } from '../../src/stack/runtime-env.js'

/** A folder holding an instance folder (which the supervisor makes before the driver runs). */
const temp = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'share-'))
  fs.mkdirSync(path.join(dir, 'instance'), { mode: 0o700 })
  return dir
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
    expect(fs.readFileSync(share.internalKeyFile!, 'utf8')).toBe('key')
    expect(share.internalKeyFile).toBe(path.join(share.root, dir, 'instance', 'vm', 'internal-pck'))
    expect(fs.statSync(share.internalKeyFile!).mode & 0o777).toBe(0o600)
  })

  it('copies back only what the guest changed', async () => {
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
  })

  it('never follows a link the guest planted', async () => {
    const dir = temp()
    const outside = path.join(dir, 'outside.txt')
    fs.writeFileSync(outside, 'host data')
    const file = path.join(dir, 'app', 'stack.config.ts')
    fs.mkdirSync(path.dirname(file))
    fs.writeFileSync(file, 'x')
    const share = new HostShare(path.join(dir, 'instance'))
    await share.prepare()
    await share.expose(file)
    // The guest swaps the mirror for a link to a host file: nothing is read through it.
    fs.rmSync(path.join(share.root, file))
    fs.symlinkSync(outside, path.join(share.root, file))
    await share.syncBack()
    expect(fs.readFileSync(file, 'utf8')).toBe('x')
    // A folder replaced by a link: exposing through it is refused, nothing is written outside.
    fs.rmSync(path.join(share.root, dir, 'app'), { recursive: true })
    fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(share.root, dir, 'app'))
    fs.mkdirSync(path.join(dir, 'elsewhere'))
    await expect(share.expose(file)).rejects.toThrow(/is not a folder/)
    expect(fs.readdirSync(path.join(dir, 'elsewhere'))).toEqual([])
  })
})

describe('runtimeEnvText', () => {
  it('writes the fixed lines, each service host port and the VM folder, as Stack Auth names them', () => {
    expect(runtimeEnvText({ hostPorts: { dashboard: 26700, backend: 26701, 'mock-oauth': 8114 }, vmDir: '', env: { STACK_EMULATOR_PORT_PREFIX: '81' } })).toBe(
      'STACK_EMULATOR_PORT_PREFIX=81\nSTACK_EMULATOR_DASHBOARD_HOST_PORT=26700\nSTACK_EMULATOR_BACKEND_HOST_PORT=26701\nSTACK_EMULATOR_MOCK_OAUTH_HOST_PORT=8114\nSTACK_EMULATOR_VM_DIR_HOST=\n',
    )
  })
})
