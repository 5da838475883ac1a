import { StackEmulatorError } from '../errors.js'

/**
 * The generated file of Stack Auth's runtime volume (`runtime.env` on the `STACKCFG` ISO): the
 * host port of each service, which the guest turns into the URLs it hands to browsers, and the
 * VM folder through which it publishes its internal key (empty while a snapshot is captured, as
 * Stack Auth's own script does). Names from `write_runtime_config_iso` in its run-emulator.sh
 * (docs/stack-auth-contract.md).
 */
export function runtimeEnvText(options: {
  /** Host port per service name (dashboard, backend, minio, inbucket, mock-oauth). */
  hostPorts: Record<string, number>
  /** The VM folder as the guest sees it under the share, or '' for none. */
  vmDir: string
  /** Fixed lines from the manifest (STACK_EMULATOR_PORT_PREFIX). */
  env: Record<string, string>
}): string {
  const lines = Object.entries(options.env).map(([name, value]) => `${name}=${value}`)
  for (const [service, port] of Object.entries(options.hostPorts)) {
    lines.push(`STACK_EMULATOR_${service.toUpperCase().replace(/-/g, '_')}_HOST_PORT=${port}`)
  }
  lines.push(`STACK_EMULATOR_VM_DIR_HOST=${options.vmDir}`)
  return `${lines.join('\n')}\n`
}

/** The fixture image's manifest name: the one image whose guest reads STACK_EMULATOR_FIXTURE_HEADERS. */
export const FIXTURE_IMAGE_NAME = 'stack-auth-fixture'

/**
 * Which backend generation the fixture's guest answers as: `x-stack`, Stack Auth's dev at
 * 2f719903b, before the Hexclave rename (only `x-stack-*` headers; the local-emulator route as it
 * was there), or `both`, as after it (fixtures/image/README.md).
 */
export type FixtureHeaders = 'x-stack' | 'both'
const FIXTURE_HEADERS: FixtureHeaders[] = ['x-stack', 'both']

/**
 * The lines the user's environment adds to the fixture's runtime.env (no image rebuild):
 * STACK_EMULATOR_FIXTURE_HEADERS when set. Nothing for any other image. The value is checked here,
 * so a typo fails at once rather than as a guest whose server refuses to start.
 */
export function fixtureRuntimeEnv(manifestName: string, env: NodeJS.ProcessEnv): Record<string, string> {
  const value = env.STACK_EMULATOR_FIXTURE_HEADERS
  if (manifestName !== FIXTURE_IMAGE_NAME || !value) return {}
  if (!(FIXTURE_HEADERS as string[]).includes(value)) {
    throw new StackEmulatorError(`STACK_EMULATOR_FIXTURE_HEADERS must be one of ${FIXTURE_HEADERS.join(', ')}; got ${JSON.stringify(value)}`, {
      code: 'BAD_OPTION',
      fix: 'Unset it for both (the fixture answers as Stack Auth after the Hexclave rename), or set x-stack to answer as dev 2f719903b.',
    })
  }
  return { STACK_EMULATOR_FIXTURE_HEADERS: value }
}
