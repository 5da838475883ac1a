// Type tests for the public typings, checked by `npm run typecheck` (tsc), not run.
import { expectTypeOf, inject } from 'vitest'
import { defineConfig } from 'vitest/config'
import { stackEmulator } from 'stack-emulator/vitest'
import { test as vitestTest, useStackEmulator, type MailClient, type MailMessage, type StackEmulatorContext } from 'stack-emulator/vitest/test'
import { acquire, mailClient, type Emulator } from 'stack-emulator'
import { test } from 'stack-emulator/playwright'

export function typeTests(): void {
  // Undefined where each worker has a VM of its own (reset: 'test' | 'file'): the type says so.
  const maybe = inject('stackEmulator')
  expectTypeOf(maybe).toEqualTypeOf<StackEmulatorContext | undefined>()
  // @ts-expect-error: possibly undefined
  void maybe.backendUrl
  const emulator = maybe!
  expectTypeOf(emulator.backendUrl).toBeString()
  expectTypeOf(emulator.secretServerKey).toBeString()
  expectTypeOf(emulator.name).toBeString()
  // @ts-expect-error: a key the plugin does not provide
  inject('stackEmulatorr')
  // @ts-expect-error: the plugin's options reach its globalSetup, not the tests
  inject('stackEmulatorOptions')
  // @ts-expect-error: the plan the plugin hands its globalSetup and workers is internal
  inject('stackEmulatorPlan')

  // The injected context plus the mail helper, which cannot travel through inject() (JSON only).
  const emulatorWithMail = useStackEmulator()
  expectTypeOf(emulatorWithMail).toMatchTypeOf<StackEmulatorContext>()
  expectTypeOf(emulatorWithMail.mail).toEqualTypeOf<MailClient>()
  expectTypeOf(emulatorWithMail.mail.waitForMessage).returns.resolves.toEqualTypeOf<MailMessage>()
  expectTypeOf<MailMessage['links']>().toEqualTypeOf<string[]>()
  void emulatorWithMail.mail.waitForMessage('ada@example.com', { subject: /Verify/, timeoutMs: 5000, after: 'id', since: new Date() })
  // @ts-expect-error: a subject is a string or a RegExp
  void emulatorWithMail.mail.waitForMessage('ada@example.com', { subject: 5 })
  // @ts-expect-error: the mail helper is not part of the JSON that inject() hands over
  void inject('stackEmulator')!.mail
  expectTypeOf(mailClient).returns.toEqualTypeOf<MailClient>()

  expectTypeOf(acquire).returns.resolves.toEqualTypeOf<Emulator>()
  expectTypeOf<Emulator['mail']>().toEqualTypeOf<MailClient>()
  // @ts-expect-error: isolation is one of suite | exclusive | none
  void acquire({ isolation: 'strict' })

  test('fixture types', async ({ stackEmulator }) => {
    expectTypeOf(stackEmulator.reset).returns.resolves.toBeVoid()
    expectTypeOf(stackEmulator.projectId).toBeString()
    expectTypeOf(stackEmulator.name).toBeString()
    expectTypeOf(stackEmulator.mail).toEqualTypeOf<MailClient>()
  })

  // Vitest's test with the fixture: the context plus mail, reset per the plugin's option.
  vitestTest('vitest fixture types', async ({ stackEmulator: emulator }) => {
    expectTypeOf(emulator).toMatchTypeOf<StackEmulatorContext>()
    expectTypeOf(emulator.mail).toEqualTypeOf<MailClient>()
  })
  // The plugin's type fits Vite's plugins list.
  defineConfig({ plugins: [stackEmulator()] })
  stackEmulator({ reset: 'test', isolation: 'worker', seed: async (e) => void e.credentials?.projectId, seedVersion: 'v1' })
  // @ts-expect-error: reset is test | file | never
  stackEmulator({ reset: 'always' })
  // @ts-expect-error: a seed takes the emulator, not a string
  stackEmulator({ seed: 'seed.ts' })
}
