/**
 * `stack-emulator/vitest`: one line in vitest.config.ts.
 *
 *   export default defineConfig({ plugins: [stackEmulator()] })
 *
 * Adds the package's globalSetup, which acquires a lease, provides the emulator to inject() and
 * sets the environment variables, resets before each watch-mode rerun, and releases at the end.
 */
import { fileURLToPath } from 'node:url'
import type { EmulatorOptions } from '../../client/options.js'
import { validateOptions } from '../../client/options.js'
import type { StackEmulatorContext } from '../context.js'
import type {} from 'vitest'

export type { StackEmulatorContext } from '../context.js'

/** Plugin options: acquire()'s, less the callbacks (they cannot cross into the globalSetup). */
export type StackEmulatorPluginOptions = Omit<EmulatorOptions, 'onProgress' | 'onLog'>

declare module 'vitest' {
  interface ProvidedContext {
    stackEmulator: StackEmulatorContext
  }
}

const globalSetup = fileURLToPath(new URL('./global-setup.js', import.meta.url))

export function stackEmulator(options: StackEmulatorPluginOptions = {}) {
  validateOptions(options)
  return {
    name: 'stack-emulator',
    // The `config` hook works on every Vitest from 3.2 on; Vite merges arrays, so a user's own
    // globalSetup entries stay. The options travel untyped: they are no test's business.
    config: () => ({ test: { globalSetup: [globalSetup], provide: { stackEmulatorOptions: options } } }),
  }
}
