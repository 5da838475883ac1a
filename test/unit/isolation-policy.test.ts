/** The rules of seeded snapshots and of the integrations' isolation, as pure functions. */
import { describe, expect, it } from 'vitest'
import { seededSnapshotMisfit, seededSnapshotSlot, type SeededSnapshotMeta } from '../../src/supervisor/seeded-snapshot-policy.js'
import { parseRequest, type SeededSnapshotRequest } from '../../src/supervisor/protocol.js'
import { assertResetFits, planIntegration, workerOptions } from '../../src/integrations/context.js'
import { seedIdentity } from '../../src/client/options.js'

const request: SeededSnapshotRequest = { configFile: '/app/stack.config.ts', configDigest: 'before', seedId: 'v1', seedFrom: 'self', seedTimeoutMs: 300_000 }
const meta: SeededSnapshotMeta = {
  configFile: '/app/stack.config.ts',
  configDigests: ['before', 'after'],
  seedId: 'v1',
  credentials: { projectId: 'p', publishableClientKey: 'pck', secretServerKey: 'ssk', superSecretAdminKey: 'sak' },
}

describe('seeded snapshots', () => {
  it('fit the same file, unchanged or as the guest rewrote it at the mint, with the same seed', () => {
    expect(seededSnapshotMisfit(request, meta)).toBeUndefined()
    expect(seededSnapshotMisfit({ ...request, configDigest: 'after' }, meta)).toBeUndefined()
  })

  it('fit a suite without a seed whatever seed they hold: it uses a seeded snapshot, never replaces one', () => {
    expect(seededSnapshotMisfit({ ...request, seedId: '' }, meta)).toBeUndefined()
    expect(seededSnapshotMisfit({ ...request, seedId: '' }, { ...meta, seedId: '' })).toBeUndefined()
    expect(seededSnapshotMisfit({ ...request, seedId: '', configDigest: 'edited' }, meta)).toBe('/app/stack.config.ts changed')
  })

  it('say why they do not fit', () => {
    expect(seededSnapshotMisfit({ ...request, seedId: 'v2' }, meta)).toBe('the seed changed')
    expect(seededSnapshotMisfit({ ...request, seedId: 'v1' }, { ...meta, seedId: '' })).toBe('it holds no seed')
    expect(seededSnapshotMisfit({ ...request, configDigest: 'edited' }, meta)).toBe('/app/stack.config.ts changed')
    expect(seededSnapshotMisfit({ ...request, configFile: '/other/stack.config.ts' }, meta)).toBe('it belongs to /app/stack.config.ts')
    expect(seededSnapshotMisfit(request, undefined)).toBe('it was taken by another version')
    expect(seededSnapshotMisfit(request, { configFile: '/app/stack.config.ts' })).toBe('it was taken by another version')
  })

  it('have one slot per config file, named safely', () => {
    expect(seededSnapshotSlot('/a/stack.config.ts')).toMatch(/^[0-9a-f]{16}$/)
    expect(seededSnapshotSlot('/a/stack.config.ts')).toBe(seededSnapshotSlot('/a/stack.config.ts'))
    expect(seededSnapshotSlot('/a/stack.config.ts')).not.toBe(seededSnapshotSlot('/b/stack.config.ts'))
  })

  it('are asked for and saved through checked requests', () => {
    expect(parseRequest({ id: 1, op: 'acquire', isolation: 'suite', keepAlive: false, idleTimeoutMs: 0, seededSnapshot: request }).request).toEqual({
      op: 'acquire',
      isolation: 'suite',
      keepAlive: false,
      idleTimeoutMs: 0,
      seededSnapshot: request,
    })
    expect(parseRequest({ id: 2, op: 'saveSeededSnapshot' }).request).toEqual({ op: 'saveSeededSnapshot' })
    expect(parseRequest({ id: 3, op: 'reset', force: false, lease: 4 }).request).toEqual({ op: 'reset', force: false, lease: 4 })
    for (const bad of [
      { ...request, configFile: 'relative.ts' },
      { ...request, seedFrom: 'maybe' },
      { ...request, seedTimeoutMs: 0 },
      { ...request, seedId: 'x'.repeat(200) },
      'text',
    ]) {
      expect(() => parseRequest({ id: 4, op: 'acquire', isolation: 'suite', keepAlive: false, idleTimeoutMs: 0, seededSnapshot: bad })).toThrow(
        /"seededSnapshot" must be/,
      )
    }
    expect(() => parseRequest({ id: 5, op: 'reset', force: false, lease: 'one' })).toThrow(/"lease" must be an integer/)
  })
})

describe('seed identity', () => {
  it('is the version when given, else a digest of the source, else empty', () => {
    const seed = async () => {}
    expect(seedIdentity({ seed, seedVersion: 'v3' })).toBe('v3')
    expect(seedIdentity({ seed })).toMatch(/^[0-9a-f]{16}$/)
    expect(
      seedIdentity({
        seed: async () => {
          await Promise.resolve(1)
        },
      }),
    ).not.toBe(seedIdentity({ seed }))
    expect(seedIdentity({})).toBe('')
  })
})

describe('integration plan', () => {
  it('resets never and shares the VM by default; a reset policy gives each worker its own unless isolation says otherwise', () => {
    expect(planIntegration({})).toMatchObject({ perWorker: false, reset: 'never' })
    expect(planIntegration({ reset: 'test' })).toMatchObject({ perWorker: true, reset: 'test' })
    expect(planIntegration({ reset: 'file', isolation: 'suite' })).toMatchObject({ perWorker: false, reset: 'file', run: { isolation: 'suite' } })
    expect(planIntegration({ isolation: 'worker' })).toMatchObject({ perWorker: true, reset: 'never', run: { isolation: undefined } })
  })

  it('refuses a reset of one VM that several workers share, and only that', () => {
    expect(() => assertResetFits(planIntegration({ reset: 'test', isolation: 'suite' }), 3)).toThrow(/reset 'test' on one VM that 3 workers share/)
    expect(() => assertResetFits(planIntegration({ reset: 'file', isolation: 'exclusive' }), 2)).toThrow(/reset 'file'/)
    expect(() => assertResetFits(planIntegration({ reset: 'test', isolation: 'suite' }), 1)).not.toThrow()
    expect(() => assertResetFits(planIntegration({ reset: 'test' }), 4)).not.toThrow()
    expect(() => assertResetFits(planIntegration({ isolation: 'suite' }), 4)).not.toThrow()
  })

  it('refuses a bad policy or option by name', () => {
    expect(() => planIntegration({ reset: 'always' as never })).toThrow(/reset/)
    expect(() => planIntegration({ isolation: 'strict' as never })).toThrow(/isolation/)
  })

  it("gives each worker an instance of its own that restores the run's seeded snapshot and never seeds", () => {
    const seed = async () => {}
    const plan = planIntegration({ name: 'e2e', reset: 'test', seed, memoryMb: 512 })
    const worker = workerOptions(plan, 2)
    expect(worker).toMatchObject({ name: 'e2e-worker-2', memoryMb: 512, seedVersion: seedIdentity({ seed }) })
    expect(worker.seed).toBeUndefined()
    expect(workerOptions(planIntegration({ name: 'e2e', isolation: 'worker' }), 0).seedVersion).toBeUndefined()
    expect(() => workerOptions(planIntegration({ isolation: 'worker', ports: { backend: 26701 } }), 0)).toThrow(/fixed ports/)
  })
})
