/**
 * The snapshot store's bookkeeping on real files: one slot per fingerprint, lookups that say why
 * a slot cannot be used, a RAM digest that proves a slot bad, abandoned staging cleaned, and
 * seeded snapshots no restore can use dropped.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import type { ImageManifest } from '../../src/image/manifest.js'
import { seededSnapshotFolder, findSeededSnapshot, sweepSeededSnapshots } from '../../src/drivers/qemu/seeded-snapshot.js'
import {
  boundSeededSnapshots,
  checkFiles,
  expectedFingerprint,
  holdSnapshot,
  listRefusals,
  listStoredSnapshots,
  lookupSnapshot,
  readRefusal,
  rememberRefusal,
  removeAbandoned,
  snapshotDir,
  snapshotsRoot,
  storeLeftovers,
  snapshotFiles,
  snapshotStore,
  writeRecord,
  type SnapshotRecord,
} from '../../src/drivers/qemu/snapshot.js'
import { listImages, pruneCache } from '../../src/image/cache.js'
import { runCli } from '../../src/cli/commands.js'

const manifest = {
  name: 'img',
  fingerprint: 'f',
  memoryMb: 512,
  cpus: 2,
  boot: { kind: 'disk' },
  services: [{ name: 'backend', guestPort: 8102 }],
} as ImageManifest
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
    expect(await lookupSnapshot(dir, { ...fingerprint(), qemuVersion: '8.0' })).toEqual({
      kind: 'unusable',
      reason: expect.stringMatching(/qemuVersion 7.2 -> 8.0/),
    })
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

  it("removes staging and trash left by dead processes, never a live one's", async () => {
    const root = cacheDir()
    for (const name of ['a.staging-999999', 'b.trash-999998-17', `c.staging-${process.pid}`, 'd-0123456789abcdef']) fs.mkdirSync(path.join(root, name))
    await removeAbandoned(root)
    expect(fs.readdirSync(root).sort()).toEqual([`c.staging-${process.pid}`, 'd-0123456789abcdef'])
  })

  it("names what a prune removes at once from its own layout: dead processes' staging and trash, refusals; never a slot or a live staging", async () => {
    const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'se-leftovers-'))
    const root = snapshotsRoot(cache)
    for (const name of ['a.staging-999999', 'b.trash-999998-17', `c.staging-${process.pid}`, 'd-0123456789abcdef'])
      fs.mkdirSync(path.join(root, name), { recursive: true })
    fs.writeFileSync(path.join(root, 'd-0123456789abcdef.refused.json'), '{}')
    expect((await storeLeftovers(cache)).sort()).toEqual(
      ['a.staging-999999', 'b.trash-999998-17', 'd-0123456789abcdef.refused.json'].map((n) => path.join(root, n)),
    )
    expect(await storeLeftovers(path.join(cache, 'none'))).toEqual([])
  })

  it('drops the seeded snapshots no restore can use: over an earlier capture, or retired; keeps the rest and one being saved', async () => {
    const readyDir = await slot(cacheDir())
    const ready = await lookupSnapshot(readyDir, fingerprint())
    if (ready.kind !== 'usable') throw new Error('expected a usable slot')
    const seededSnapshot = async (name: string, base: string, meta: unknown) => {
      const files = snapshotFiles(seededSnapshotFolder(ready.files, name))
      fs.mkdirSync(files.dir)
      for (const file of [files.ram, files.state, files.disk, files.emptyOverlay]) fs.writeFileSync(file, name)
      await writeRecord(files, fingerprint(), [8102], undefined, { base, meta })
    }
    await seededSnapshot('fits', ready.record.stateSha256, 'live')
    await seededSnapshot('current', ready.record.stateSha256, 'gone') // retired, but the VM is on it
    await seededSnapshot('recaptured', 'an earlier capture', 'live')
    await seededSnapshot('retired', ready.record.stateSha256, 'gone')
    fs.mkdirSync(seededSnapshotFolder(ready.files, 'saving')) // no record yet
    fs.mkdirSync(`${seededSnapshotFolder(ready.files, 'other')}.staging-${process.pid}`)
    await sweepSeededSnapshots({ kind: 'snapshot', files: ready.files, record: ready.record }, (meta) => meta === 'gone', 'current')
    const left = fs
      .readdirSync(path.dirname(readyDir))
      .map((entry) => entry.replace(`${path.basename(readyDir)}-checkpoint-`, ''))
      .sort()
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
    const pruned = await pruneCache(cache, snapshotStore, 7, () => {})
    expect(pruned.leftovers).toEqual([`${refused}.refused.json`])
    expect(await readRefusal(refused)).toBeUndefined()
    expect((await lookupSnapshot(other, fingerprint(640))).kind).toBe('usable') // a prune keeps slots used lately
  })
})

/** A ready slot, and a function that adds seeded slots over it last used `minutesAgo`. */
async function store() {
  const cache = cacheDir()
  const readyDir = await slot(cache)
  const ready = await lookupSnapshot(readyDir, fingerprint())
  if (ready.kind !== 'usable') throw new Error('expected a usable slot')
  const mode = { kind: 'snapshot' as const, files: ready.files, record: ready.record }
  const seeded = async (name: string, minutesAgo: number) => {
    const files = snapshotFiles(seededSnapshotFolder(ready.files, name))
    fs.mkdirSync(files.dir)
    for (const file of [files.ram, files.state, files.disk, files.emptyOverlay]) fs.writeFileSync(file, name)
    await writeRecord(files, fingerprint(), [8102], undefined, { base: ready.record.stateSha256, meta: name })
    const when = new Date(Date.now() - minutesAgo * 60_000)
    fs.utimesSync(files.record, when, when)
    return files.dir
  }
  const left = () =>
    fs
      .readdirSync(path.dirname(readyDir))
      .filter((e) => e.includes('-checkpoint-'))
      .map((e) => e.replace(`${path.basename(readyDir)}-checkpoint-`, ''))
      .sort()
  return { cache, readyDir, mode, seeded, left }
}

describe('the bound on seeded snapshots', () => {
  it('drops the least recently used beyond the bound, never the one just saved nor one a live process holds', async () => {
    const { cache, seeded, left } = await store()
    const a = await seeded('a', 40) // the oldest, but held by a running VM (this process)
    const b = await seeded('b', 30) // held only by a process that is gone
    const c = await seeded('c', 20)
    const d = await seeded('d', 10)
    const saved = await seeded('saved', 50) // just saved: its record is old here, yet it stays
    const hold = await holdSnapshot(a)
    fs.writeFileSync(`${b}.hold-999999-0badf00d`, '')

    const dropped = await boundSeededSnapshots(cache, 3, saved)
    expect(dropped.map((s) => path.basename(s.dir))).toEqual([b, c].map((dir) => path.basename(dir)))
    expect(dropped[0]).toMatchObject({ kind: 'seeded', record: expect.objectContaining({ meta: 'b' }), bytes: expect.any(Number) })
    expect(left()).toEqual(['a', expect.stringMatching(new RegExp(`^a\\.hold-${process.pid}-[0-9a-f]{8}$`)), 'd', 'saved']) // b's dead hold is gone too
    expect(await boundSeededSnapshots(cache, 3, saved)).toEqual([]) // within the bound now

    // Held, it stays even over the bound; released, it is the first to go.
    expect(await boundSeededSnapshots(cache, 1, saved)).toEqual([expect.objectContaining({ dir: d })])
    expect(left()).toContain('a')
    await hold!.release()
    expect((await boundSeededSnapshots(cache, 1, saved)).map((s) => s.dir)).toEqual([a])
    expect(left()).toEqual(['saved'])
    expect(fs.existsSync(`${a}.dropping`)).toBe(false)
  })

  it('a slot being dropped is not restored; a drop left halfway by a dead process blocks nothing', async () => {
    const { mode, seeded } = await store()
    const dir = await seeded('x', 1)
    fs.writeFileSync(`${dir}.dropping`, String(process.pid)) // a live dropper (this process stands in)
    expect(await holdSnapshot(dir)).toBeUndefined()
    expect(await findSeededSnapshot(dir, mode, () => undefined)).toEqual({ reason: 'it is being dropped' })
    expect(fs.readdirSync(path.dirname(dir)).filter((e) => e.includes('.hold-'))).toEqual([]) // its hold went with it
    fs.writeFileSync(`${dir}.dropping`, '999999')
    const found = await findSeededSnapshot(dir, mode, () => undefined)
    expect(found).toMatchObject({ meta: 'x', hold: expect.anything() })
    // A misfit is not held.
    expect(await findSeededSnapshot(dir, mode, () => 'the seed changed')).toEqual({ reason: 'the seed changed' })
    expect(fs.readdirSync(path.dirname(dir)).filter((e) => e.includes('.hold-'))).toHaveLength(1)
  })

  it('the sweep of unusable ones keeps one a live process still holds', async () => {
    const { mode, seeded, left } = await store()
    const held = await seeded('retired-held', 5)
    await seeded('retired', 5)
    await holdSnapshot(held)
    await sweepSeededSnapshots(mode, (meta) => String(meta).startsWith('retired'), undefined)
    expect(left().filter((e) => !e.includes('.hold-'))).toEqual(['retired-held'])
  })

  it("image list shows each image's ready and seeded snapshots: how many, and the blocks they take (RAM files are sparse)", async () => {
    const { cache, readyDir, seeded } = await store()
    // A RAM file of 64 MiB of which the guest touched 4 kB.
    const record = JSON.parse(fs.readFileSync(snapshotFiles(readyDir).record, 'utf8')) as SnapshotRecord
    fs.truncateSync(snapshotFiles(readyDir).ram, 64 * 2 ** 20)
    fs.writeFileSync(snapshotFiles(readyDir).record, JSON.stringify({ ...record, ramBytes: 64 * 2 ** 20 }))
    await seeded('one', 2)
    await seeded('two', 1)
    fs.mkdirSync(path.join(cache, 'images', 'fixture-0123456789abcdef'), { recursive: true })
    fs.writeFileSync(
      path.join(cache, 'images', 'fixture-0123456789abcdef', 'manifest.json'),
      JSON.stringify({ name: manifest.name, fingerprint: manifest.fingerprint }),
    )
    const slots = await listStoredSnapshots(cache)
    expect(slots.map((s) => s.kind).sort()).toEqual(['ready', 'seeded', 'seeded'])
    const [image] = await listImages(cache, snapshotStore)
    expect(image!.snapshots.seeded).toEqual({ count: 2, bytes: expect.any(Number) })
    expect(image!.snapshots.ready.count).toBe(1)
    expect(image!.snapshots.ready.bytes).toBeGreaterThan(0)
    expect(image!.snapshots.ready.bytes).toBeLessThan(2 ** 20) // blocks, not the RAM file's 64 MiB

    const out: string[] = []
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true))
    const env = process.env.STACK_EMULATOR_CACHE_DIR
    process.env.STACK_EMULATOR_CACHE_DIR = cache
    try {
      expect(await runCli(['image', 'list'])).toBe(0)
    } finally {
      spy.mockRestore()
      if (env === undefined) delete process.env.STACK_EMULATOR_CACHE_DIR
      else process.env.STACK_EMULATOR_CACHE_DIR = env
    }
    expect(out.join('').split('\n').filter(Boolean)).toEqual([
      expect.stringMatching(/^IMAGE +ARCH +SIZE +SNAPSHOTS +SEEDED +SHA256/),
      expect.stringMatching(/^fixture +\S+ +\S+ \S+ +1 \((\d+(\.\d)? kB|\d+ B)\) +2 \(\d+(\.\d)? kB\) +- /),
    ])
  })
})
