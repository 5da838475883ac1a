/**
 * What the plugin hands to `inject()`, typed wherever either entry (`stack-emulator/vitest` or
 * `stack-emulator/vitest/test`) is read. Types only: nothing from `vitest` is loaded at run time.
 */
import type { StackEmulatorContext } from '../context.js'

export type { StackEmulatorContext }

declare module 'vitest' {
  interface ProvidedContext {
    /**
     * The run's shared emulator. `undefined` when each worker has a VM of its own (`isolation:
     * 'worker'`, the default under `reset: 'test'` or `'file'`): no one value describes them.
     * `useStackEmulator()` and the `test` fixture from `stack-emulator/vitest/test` work either way.
     */
    stackEmulator: StackEmulatorContext | undefined
  }
}
