// Type tests for the public typings, checked by `npm run typecheck` (tsc), not run.
import { expectTypeOf, inject } from 'vitest'
import type { StackEmulatorContext } from 'stack-emulator/vitest'
import { acquire, type Emulator } from 'stack-emulator'
import { test } from 'stack-emulator/playwright'

export function typeTests(): void {
  const emulator = inject('stackEmulator')
  expectTypeOf(emulator).toEqualTypeOf<StackEmulatorContext>()
  expectTypeOf(emulator.backendUrl).toBeString()
  expectTypeOf(emulator.secretServerKey).toBeString()
  expectTypeOf(emulator.name).toBeString()
  // @ts-expect-error: a key the plugin does not provide
  inject('stackEmulatorr')
  // @ts-expect-error: the plugin's options reach its globalSetup, not the tests
  inject('stackEmulatorOptions')

  expectTypeOf(acquire).returns.resolves.toEqualTypeOf<Emulator>()
  // @ts-expect-error: isolation is one of suite | exclusive | none
  void acquire({ isolation: 'strict' })

  test('fixture types', async ({ stackEmulator }) => {
    expectTypeOf(stackEmulator.reset).returns.resolves.toBeVoid()
    expectTypeOf(stackEmulator.projectId).toBeString()
    expectTypeOf(stackEmulator.name).toBeString()
  })
}
