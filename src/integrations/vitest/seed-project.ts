/**
 * The seedProject module under Vitest. Vitest's workers never load vitest.config.ts, and a module
 * imported from this package's own code is imported by Node, not by Vitest (so no TypeScript, no
 * aliases of the app). So the plugin writes a setup file of one import into the state folder;
 * Vitest runs it before each test file, and it hands the module's default export over here.
 */
import fs from 'node:fs'
import path from 'node:path'
import { sha256 } from '../../digest.js'
import { readSettings } from '../../settings.js'

const HANDED_OVER = Symbol.for('stack-emulator.vitest.seed-project')

/** Writes (once per module path) the setup file that imports `module`; returns its path. */
export function seedProjectSetupFile(module: string): string {
  const dir = path.join(readSettings().stateRoot, '.vitest')
  const file = path.join(dir, `seed-project-${sha256(module).slice(0, 16)}.mjs`)
  const text = [
    `// Written by stack-emulator's Vitest plugin: hands the seedProject module's default export to the worker.`,
    `import seedProject from ${JSON.stringify(module)}`,
    `globalThis[Symbol.for('stack-emulator.vitest.seed-project')] = { module: ${JSON.stringify(module)}, seedProject }`,
    '',
  ].join('\n')
  if (readOrNothing(file) !== text) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    const staging = `${file}.${process.pid}.tmp`
    fs.writeFileSync(staging, text, { mode: 0o600 })
    fs.renameSync(staging, file)
  }
  return file
}

/** In a worker, a loader for startProjectPool: the module the setup file imported, as if imported here. */
export async function importHandedOver(module: string): Promise<{ default?: unknown }> {
  const handedOver = (globalThis as Record<symbol, { module: string; seedProject: unknown } | undefined>)[HANDED_OVER]
  if (handedOver?.module !== module)
    throw new Error(`stack-emulator: the seedProject module ${module} was not loaded by the setup file the plugin adds (was setupFiles replaced?)`)
  return { default: handedOver.seedProject }
}

function readOrNothing(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}
