/**
 * `stack-emulator/vitest`: one line in vitest.config.ts.
 *
 *   export default defineConfig({ plugins: [stackEmulator()] })
 *
 * Adds the package's globalSetup, which acquires a lease, provides the emulator to inject() and
 * sets the environment variables, resets before each watch-mode rerun, and releases at the end.
 * In a test, `useStackEmulator()` adds what cannot travel through inject() (JSON only): `mail`.
 */
import { fileURLToPath } from 'node:url'
import { inject } from 'vitest'
import type { EmulatorOptions } from '../../client/options.js'
import { validateOptions } from '../../client/options.js'
import { mailFor, type MailClient } from '../../stack/mail.js'
import type { StackEmulatorContext } from '../context.js'

export type { StackEmulatorContext } from '../context.js'
export type { MailClient, MailMessage, WaitForMessageOptions } from '../../stack/mail.js'

/** `inject('stackEmulator')` plus the mail helper. */
export interface StackEmulatorTestContext extends StackEmulatorContext {
  /** The mail helper: the emails Stack Auth sent, read from the emulator's Inbucket. */
  mail: MailClient
}

/** In a test (or a hook): the injected emulator with its mail helper. */
export function useStackEmulator(): StackEmulatorTestContext {
  const context = inject('stackEmulator')
  if (!context) {
    throw new Error('useStackEmulator(): nothing was injected. Add stackEmulator() to the plugins of this vitest.config.ts (from stack-emulator/vitest).')
  }
  return { ...context, mail: mailFor(context.services) }
}

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
