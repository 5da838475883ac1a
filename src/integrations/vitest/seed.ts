/**
 * The seed function goes from the plugin (vitest.config.ts) to its globalSetup, both in Vitest's
 * main process: provide() carries JSON only, and the two may load this package as different
 * module instances, so it is kept on globalThis under a registered symbol. Not exported.
 */
import type { EmulatorOptions } from '../../client/options.js'

type Seed = EmulatorOptions['seed']
const SEED_KEY = Symbol.for('stack-emulator.vitest.seed')

export function handOverSeed(seed: Seed): void {
  ;(globalThis as Record<symbol, unknown>)[SEED_KEY] = seed
}

export function handedOverSeed(): Seed {
  return (globalThis as Record<symbol, unknown>)[SEED_KEY] as Seed
}
