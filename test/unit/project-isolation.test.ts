/** isolation 'project': the options and their plan, and a worker's pool over a fake emulator (no VM). */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  MAX_MINT_AHEAD,
  PROJECT_DEFAULTS,
  loadSeedProject,
  projectFrom,
  resolveProjectIsolation,
  startProjectPool,
  type MintedProject,
} from '../../src/client/projects.js'
import { assertResetFits, contextOf, planIntegration } from '../../src/integrations/context.js'
import type { Emulator } from '../../src/client/acquire.js'
import { stackEmulator } from '../../src/integrations/vitest/index.js'
import { importHandedOver } from '../../src/integrations/vitest/seed-project.js'

describe('project isolation options', () => {
  it('fill their defaults once: a project per test, two minted ahead', () => {
    expect(resolveProjectIsolation({})).toEqual({ per: 'test', mintAhead: 2, seedProject: undefined })
    expect(PROJECT_DEFAULTS).toEqual({ per: 'test', mintAhead: 2 })
    expect(resolveProjectIsolation({ per: 'file', mintAhead: 0, seedProject: 'test/seed.ts' }, '/app')).toEqual({
      per: 'file',
      mintAhead: 0,
      seedProject: '/app/test/seed.ts',
    })
  })

  it('refuse bad values, naming the option, the value and what it must be', () => {
    expect(() => resolveProjectIsolation({ per: 'suite' as 'test' })).toThrow('Option "per" must be one of test, file, got "suite" (string)')
    expect(() => resolveProjectIsolation({ mintAhead: MAX_MINT_AHEAD + 1 })).toThrow(`Option "mintAhead" must be an integer from 0 to ${MAX_MINT_AHEAD}`)
    expect(() => resolveProjectIsolation({ mintAhead: 1.5 })).toThrow('Option "mintAhead"')
    expect(() => resolveProjectIsolation({ seedProject: 42 as unknown as string })).toThrow('Option "seedProject" must be a function or the path of a module')
  })

  it('plan a shared VM with no reset and no VM per worker, for any number of workers', () => {
    const plan = planIntegration({ isolation: 'project', mintAhead: 3, name: 'x' })
    expect(plan).toMatchObject({ perWorker: false, reset: 'never', run: { name: 'x' }, projects: { per: 'test', mintAhead: 3 } })
    expect(plan.run.isolation).toBeUndefined() // the run's lease shares the VM as 'suite' does
    expect(() => assertResetFits(plan, 8)).not.toThrow()
  })

  it('refuse what cannot work with it, saying what to do', () => {
    expect(() => planIntegration({ isolation: 'project', reset: 'test' })).toThrow(/reset 'test' and isolation 'project' do not go together[\s\S]*Drop reset/)
    expect(() => planIntegration({ isolation: 'project', reset: 'never' })).not.toThrow()
    expect(() => planIntegration({ isolation: 'project', configFile: false })).toThrow(/configFile is false/)
    expect(() => planIntegration({ per: 'file' })).toThrow(`Option "per" only applies with isolation: 'project'`)
    expect(() => planIntegration({ isolation: 'worker', mintAhead: 1, seedProject: 's.ts' })).toThrow(
      `Options "mintAhead", "seedProject" only apply with isolation: 'project'`,
    )
  })
})

const credentials = (n: number) => ({ projectId: `p${n}`, publishableClientKey: `pck${n}`, secretServerKey: `ssk${n}`, superSecretAdminKey: `sak${n}` })

/** An emulator whose projects are numbered, and whose VM state the test changes. */
function fakeEmulator() {
  let n = 0
  const listeners = new Set<(g: number) => void>()
  let generation = 1
  return {
    newProject: async () =>
      projectFrom(
        'inst',
        { backend: 'http://127.0.0.1:1', inbucket: 'http://127.0.0.1:2' },
        {
          ...credentials(++n),
          configFile: `/s/projects/${generation}/stack.config.${n}.ts`,
          displayName: `Local Emulator: stack.config.${n}.ts`,
          generation,
        },
      ),
    onNewGeneration: (l: (g: number) => void) => (listeners.add(l), () => listeners.delete(l)),
    reset: () => {
      generation++
      listeners.forEach((l) => l(generation))
    },
    listeners,
    minted: () => n,
  }
}

describe("a worker's project pool", () => {
  it('gives each test a project of its own, with its env, seeded once, and never one from before a reset', async () => {
    const emulator = fakeEmulator()
    const seeded: string[] = []
    const pool = await startProjectPool(emulator, { per: 'test', mintAhead: 2, seedProject: 'seed.ts' }, async () => ({
      default: (p: MintedProject) => void seeded.push(p.projectId),
    }))
    const first = await pool.take()
    expect(first.projectId).toBe('p1')
    expect(first.env.STACK_PROJECT_ID).toBe('p1')
    expect(first.env.NEXT_PUBLIC_HEXCLAVE_PROJECT_ID).toBe('p1')
    expect(first.env.STACK_SECRET_SERVER_KEY).toBe('ssk1')
    expect(first.mail.url).toBe('http://127.0.0.1:2')
    await new Promise((r) => setTimeout(r, 0))
    emulator.reset()
    const second = await pool.take()
    expect(second.generation).toBe(2)
    expect(seeded).toContain(first.projectId)
    expect(new Set(seeded).size).toBe(seeded.length) // once each
    await pool.close()
    expect(emulator.listeners.size).toBe(0)
  })

  it("puts the project into the test's context", () => {
    const project = projectFrom(
      'inst',
      { backend: 'http://127.0.0.1:1' },
      { ...credentials(7), configFile: '/c.ts', displayName: 'Local Emulator: c.ts', generation: 1 },
    )
    const emulator = {
      name: 'inst',
      backendUrl: 'http://127.0.0.1:1',
      dashboardUrl: '',
      services: { backend: 'http://127.0.0.1:1' },
      credentials: credentials(1),
      env: { STACK_PROJECT_ID: 'p1' },
      lease: 3,
    } as unknown as Emulator
    expect(contextOf(emulator, project)).toMatchObject({
      projectId: 'p7',
      secretServerKey: 'ssk7',
      env: { STACK_PROJECT_ID: 'p7' },
      lease: 3,
      project: { displayName: 'Local Emulator: c.ts' },
    })
    expect(contextOf(emulator)).toMatchObject({ projectId: 'p1', env: { STACK_PROJECT_ID: 'p1' } })
  })

  it('says so when a seedProject module exports no function', async () => {
    await expect(loadSeedProject('/x/seed.ts', async () => ({}))).rejects.toMatchObject({ code: 'BAD_OPTION', message: expect.stringContaining('/x/seed.ts') })
  })
})

describe("the Vitest plugin's seedProject module", () => {
  it("is resolved from the project root and imported by a setup file in the state folder, put before the plugin's own", async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'se-seed-project-'))
    const before = process.env.STACK_EMULATOR_HOME
    process.env.STACK_EMULATOR_HOME = home
    try {
      const config = stackEmulator({ isolation: 'project', seedProject: './test/seed.ts' }).config({ root: '/app' }).test
      const [shim, own] = config.setupFiles as string[]
      expect(path.dirname(shim!)).toBe(path.join(home, 'state', '.vitest'))
      expect(own).toMatch(/setup-file\.js$/)
      expect(fs.readFileSync(shim!, 'utf8')).toContain('import seedProject from "/app/test/seed.ts"')
      expect((config.provide as { stackEmulatorPlan: { projects: { seedProject: string } } }).stackEmulatorPlan.projects.seedProject).toBe('/app/test/seed.ts')
      // Nothing handed over yet (the setup file did not run here): the worker says so.
      await expect(importHandedOver('/app/test/seed.ts')).rejects.toThrow('was not loaded by the setup file the plugin adds')
    } finally {
      process.env.STACK_EMULATOR_HOME = before
      fs.rmSync(home, { recursive: true, force: true })
    }
  })

  it('must be a path: a function is refused, saying why', () => {
    expect(() => stackEmulator({ isolation: 'project', seedProject: async () => {} })).toThrow(/must be a module path[\s\S]*do not load vitest\.config\.ts/)
  })
})
