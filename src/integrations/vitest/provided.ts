/**
 * What the plugin hands to `inject()`, typed wherever either entry (`stack-emulator/vitest` or
 * `stack-emulator/vitest/test`) is read. Types only: nothing from `vitest` is loaded at run time.
 */
import type { StackEmulatorContext } from '../context.js'

export type { StackEmulatorContext }

declare module 'vitest' {
  interface ProvidedContext {
    stackEmulator: StackEmulatorContext
  }
}
