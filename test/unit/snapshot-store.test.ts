/**
 * The snapshot store's bookkeeping on real files: one slot per fingerprint, lookups that say why
 * a slot cannot be used, a RAM digest that proves a slot bad, abandoned staging cleaned, and
 * checkpoints no restore can use dropped.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import type { ImageManifest } from '../../src/image/manifest.js'
import { checkpointDir, sweepCheckpoints } from '../../src/drivers/qemu/checkpoint.js'
import {
  checkFiles, expectedFingerprint, listRefusals, lookupSnapshot, readRefusal, rememberRefusal, removeAbandoned, snapshotDir, snapshotFiles, writeRecord,
} from '../../src/drivers/qemu/snapshot.js'
import { pruneCache } from '../../src/image/cache.js'

const manifest = { name: 'img', fingerprint: 'f', memoryMb: 512, cpus: 2, boot: { kind: 'disk' }, services: [{ name: 'backend', guestPort: 8102 }] } as ImageManifest
const shape = (memoryMb: number) => ({ accel: 'tcg' as const, cpu: 'qemu64', machine: 'pc', memoryMb, cpus: 2 })
const fingerprint = (memoryMb = 512) => expectedFingerprint(manifest, shape(memoryMb), '7.2', 'seed', '')

async function slot(cache: string, memoryMb = 512): Promise<string> {
  const dir = snapshotDir(cache, manifest, fingerprint(memoryMb))
  const files = snapshotFiles(dir)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(files.ram, Buffer.alloc(64 * 1024, 7))
  fs.writeFileSync(files.state, 'device state')
  fs.writeFileSync(files.disk, '')
  fs.writeFileSync(files.emptyOverlay, '')
  await writeRecord(files, fingerprint(memoryMb), [8102])
  return dir
}

const cacheDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'se-store-'))

describe('the snapshot store', () => {
  it('keeps one slot per fingerprint: another memory size is another slot', async () => {
    const cache = cacheDir()
    const small = await slot(cache, 512)
    const large = await slot(cache, 640)
    expect(small).not.toBe(large)
    expect((await lookupSnapshot(small, fingerprint(512))).kind).toBe('usable')
    expect((await lookupSnapshot(large, fingerprint(640))).kind).toBe('usable')
  })

  it('says why a slot cannot be used', async () => {
    const cache = cacheDir()
    const dir = await slot(cache)
    expect(await lookupSnapshot(path.join(cache, 'none'), fingerprint())).toEqual({ kind: 'missing' })
    expect(await lookupSnapshot(dir, { ...fingerprint(), qemuVersion: '8.0' })).toEqual({ kind: 'unusable', reason: expect.stringMatching(/qemuVersion 7.2 -> 8.0/) })
    fs.writeFileSync(snapshotFiles(dir).state, 'device stat!')
    expect(await lookupSnapshot(dir, fingerprint())).toEqual({ kind: 'unusable', reason: expect.stringMatching(/device state file is corrupt/) })
    fs.truncateSync(snapshotFiles(dir).state, 3)
    expect(await lookupSnapshot(dir, fingerprint())).toEqual({ kind: 'unusable', reason: expect.stringMatching(/3 bytes, expected 12/) })
  })

  it('proves a slot bad only by its RAM digest, which the cheap lookup does not read', async () => {
    const dir = await slot(cacheDir())
    const files = snapshotFiles(dir)
    const found = await lookupSnapshot(dir, fingerprint())
    if (found.kind !== 'usable') throw new Error('expected a usable slot')
    expect(await checkFiles(files, found.record, true)).toBeUndefined()
    fs.writeFileSync(files.ram, Buffer.alloc(64 * 1024, 0)) // same size, wiped
    expect((await lookupSnapshot(dir, fingerprint())).kind).toBe('usable')
    expect(await checkFiles(files, found.record, true)).toMatch(/RAM file is corrupt/)
  })

  it('refuses an image name that is not a plain file name', () => {
    expect(() => snapshotDir('/cache', { ...manifest, name: '../x' }, fingerprint())).toThrow(/image name/)
  })

  it('removes staging and trash left by dead processes, never a live one\'s', async () => {
    const root = cacheDir()
    for (const name of ['a.staging-999999', 'b.trash-999998-17', `c.staging-${process.pid}`, 'd-0123456789abcdef']) fs.mkdirSync(path.join(root, name))
    await removeAbandoned(root)
    expect(fs.readdirSync(root).sort()).toEqual([`c.staging-${process.pid}`, 'd-0123456789abcdef'])
  })

  it('drops the checkpoints no restore can use: over an earlier capture, or retired; keeps the rest and one being saved', async () => {
    const readyDir = await slot(cacheDir())
    const ready = await lookupSnapshot(readyDir, fingerprint())
    if (ready.kind !== 'usable') throw new Error('expected a usable slot')
    const checkpoint = async (name: string, base: string, meta: unknown) => {
      const files = snapshotFiles(checkpointDir(ready.files, name))
      fs.mkdirSync(files.dir)
      for (const file of [files.ram, files.state, files.disk, files.emptyOverlay]) fs.writeFileSync(file, name)
      await writeRecord(files, fingerprint(), [8102], undefined, { base, meta })
    }
    await checkpoint('fits', ready.record.stateSha256, 'live')
    await checkpoint('current', ready.record.stateSha256, 'gone') // retired, but the VM is on it
    await checkpoint('recaptured', 'an earlier capture', 'live')
    await checkpoint('retired', ready.record.stateSha256, 'gone')
    fs.mkdirSync(checkpointDir(ready.files, 'saving')) // no record yet
    fs.mkdirSync(`${checkpointDir(ready.files, 'other')}.staging-${process.pid}`)
    await sweepCheckpoints({ kind: 'snapshot', files: ready.files, record: ready.record }, (meta) => meta === 'gone', 'current')
    const left = fs.readdirSync(path.dirname(readyDir)).map((entry) => entry.replace(`${path.basename(readyDir)}-checkpoint-`, '')).sort()
    expect(left).toEqual(['current', 'fits', `other.staging-${process.pid}`, 'saving', path.basename(readyDir)].sort())
  })
})

describe('a refused capture', () => {
  it('is remembered beside its slot, listed for doctor, kept apart from other slots, and dropped by a prune', async () => {
    const cache = cacheDir()
    const refused = snapshotDir(cache, manifest, fingerprint(512))
    const other = await slot(cache, 640)
    expect(await readRefusal(refused)).toBeUndefined()
    await rememberRefusal(refused, 'Migration is disabled when VirtFS export path is mounted')
    expect(await readRefusal(refused)).toMatchObject({ reason: 'Migration is disabled when VirtFS export path is mounted' })
    expect(await readRefusal(other)).toBeUndefined() // another fingerprint (a new image or QEMU) is another slot
    expect((fs.statSync(`${refused}.refused.json`).mode & 0o777).toString(8)).toBe('600')
    expect((await listRefusals(cache)).map((r) => r.slot)).toEqual([refused])
    const pruned = await pruneCache(cache, 7, () => {})
    expect(pruned.leftovers).toEqual([`${refused}.refused.json`])
    expect(await readRefusal(refused)).toBeUndefined()
    expect((await lookupSnapshot(other, fingerprint(640))).kind).toBe('usable') // a prune keeps slots used lately
  })
})
