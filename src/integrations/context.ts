/** What tests get from both integrations: the Vitest `inject('stackEmulator')` and the Playwright fixture. */
import type { Emulator } from '../client/acquire.js'
import { instanceName, seedIdentity, validateOptions, type EmulatorOptions } from '../client/options.js'
import { StackEmulatorError, badOption } from '../errors.js'
import { resolveProjectIsolation, type MintedProject, type ProjectIsolationOptions, type ProjectIsolationPlan } from '../client/projects.js'
import type { Isolation } from '../supervisor/protocol.js'

export interface StackEmulatorContext {
  /** The instance name: `resetInstance(name)` and the CLI's `--name` act on this VM. */
  name: string
  backendUrl: string
  dashboardUrl: string
  /** Base URL per service. */
  services: Record<string, string>
  projectId: string
  publishableClientKey: string
  secretServerKey: string
  superSecretAdminKey: string
  /** The environment variables also set in process.env. */
  env: Record<string, string>
  /** The lease of the run that holds the VM: resets from test workers are made on its behalf. */
  lease: number
  /** Under isolation 'project': the test's own project (its mail is told apart by displayName). */
  project?: { displayName: string; configFile: string }
}

/** The emulator's context; under isolation 'project', with the test's project's id, keys and env. */
export function contextOf(emulator: Emulator, project?: MintedProject): StackEmulatorContext {
  const c = project ?? emulator.credentials
  return {
    name: emulator.name,
    backendUrl: emulator.backendUrl,
    dashboardUrl: emulator.dashboardUrl,
    services: emulator.services,
    projectId: c?.projectId ?? '',
    publishableClientKey: c?.publishableClientKey ?? '',
    secretServerKey: c?.secretServerKey ?? '',
    superSecretAdminKey: c?.superSecretAdminKey ?? '',
    env: project?.env ?? emulator.env,
    lease: emulator.lease,
    ...(project ? { project: { displayName: project.displayName, configFile: project.configFile } } : {}),
  }
}

/** The one line a run prints about the emulator: how it came up and how long it took. */
export function summaryLine(emulator: Emulator): string {
  const { durationMs, startedVm } = emulator.startup
  if (startedVm) return `VM "${emulator.name}" ready in ${durationMs} ms (${emulator.origin === 'snapshot' ? 'from snapshot' : 'cold boot'}, ${emulator.accel})`
  return `attached to the running VM "${emulator.name}" in ${durationMs} ms${emulator.wasReset ? ' (reset first)' : ''}`
}

/** When the integrations reset the VM: before each test, before each test file, or never. */
export type ResetPolicy = 'test' | 'file' | 'never'
const RESET_POLICIES: readonly ResetPolicy[] = ['test', 'file', 'never']

/** Options of both integrations: acquire()'s less its callbacks, plus how tests are kept apart. */
export interface IntegrationOptions extends Omit<EmulatorOptions, 'onProgress' | 'onLog' | 'isolation'>, ProjectIsolationOptions {
  /**
   * acquire()'s isolation between suites, or `'worker'`: each test worker gets a VM of its own,
   * restored from the same (seeded) snapshot, so parallel tests never see each other's data and a
   * reset touches one worker; or `'project'`: one shared VM, and each test (or file, `per`) gets a
   * fresh Stack Auth project of its own on it, minted ahead in the background (`mintAhead`), seeded
   * by `seedProject`: no reset, any number of workers. @default 'worker' with reset 'test' or 'file', else 'suite'
   */
  isolation?: Isolation | 'worker' | 'project'
  /** Reset before each test that uses the emulator ('test'), before each test file ('file'), or never. @default 'never' */
  reset?: ResetPolicy
}

/** The integration options, every default applied: what the run's lease asks for and what each worker does. */
export interface IntegrationPlan {
  /** The run's lease (globalSetup): it takes the seeded snapshot once for every worker. */
  run: EmulatorOptions
  perWorker: boolean
  reset: ResetPolicy
  /** Under isolation 'project': when a test takes a new project, how many are minted ahead, the per-project seed. */
  projects?: ProjectIsolationPlan
}

export function planIntegration(options: IntegrationOptions = {}): IntegrationPlan {
  const { isolation, reset: resetOption, per, mintAhead, seedProject, ...rest } = options
  if (resetOption !== undefined && !RESET_POLICIES.includes(resetOption)) throw badOption('reset', resetOption, `one of ${RESET_POLICIES.join(', ')}`)
  if (isolation === 'project') return planProjects(rest, resetOption, { per, mintAhead, seedProject })
  const given = Object.entries({ per, mintAhead, seedProject })
    .filter(([, v]) => v !== undefined)
    .map(([k]) => k)
  if (given.length > 0) {
    throw new StackEmulatorError(
      `Option${given.length > 1 ? 's' : ''} ${given.map((k) => `"${k}"`).join(', ')} only appl${given.length > 1 ? 'y' : 'ies'} with isolation: 'project'`,
      {
        code: 'BAD_OPTION',
        fix: "Add isolation: 'project' (a fresh Stack Auth project per test on the shared VM), or drop them.",
      },
    )
  }
  const reset = resetOption ?? 'never'
  const perWorker = isolation === 'worker' || (isolation === undefined && reset !== 'never')
  const run: EmulatorOptions = { ...rest, isolation: isolation === 'worker' ? undefined : isolation }
  validateOptions(run)
  return { run, perWorker, reset }
}

/** isolation 'project': the run's lease holds the shared VM as 'suite' does; each worker mints its projects on it. */
function planProjects(
  rest: Omit<IntegrationOptions, 'isolation' | 'reset' | keyof ProjectIsolationOptions>,
  reset: ResetPolicy | undefined,
  options: ProjectIsolationOptions,
): IntegrationPlan {
  if (reset !== undefined && reset !== 'never') {
    throw new StackEmulatorError(
      `reset '${reset}' and isolation 'project' do not go together: a reset of the shared VM would drop every worker's projects mid-test`,
      {
        code: 'BAD_OPTION',
        fix: "Drop reset (each test already starts in a fresh project: per 'test' or 'file'), or use isolation 'worker' with reset.",
      },
    )
  }
  if (rest.configFile === false) {
    throw new StackEmulatorError("isolation 'project' mints projects from the app's config file, but configFile is false", {
      code: 'BAD_OPTION',
      fix: 'Drop configFile: false (a generated config is used when the app has none).',
    })
  }
  const run: EmulatorOptions = { ...rest }
  validateOptions(run)
  return { run, perWorker: false, reset: 'never', projects: resolveProjectIsolation(options) }
}

/**
 * A reset of one VM that several workers share wipes what the others' running tests wrote: that
 * combination is refused before anything starts, with the ways out.
 */
export function assertResetFits(plan: IntegrationPlan, workers: number): void {
  if (plan.perWorker || plan.reset === 'never' || workers <= 1) return
  throw new StackEmulatorError(`reset '${plan.reset}' on one VM that ${workers} workers share would wipe the other workers' running tests at every reset`, {
    code: 'BAD_OPTION',
    fix: "Drop the isolation option (with a reset policy each worker gets a VM of its own: isolation 'worker'), run one worker (Vitest: fileParallelism: false; Playwright: workers: 1), or reset: 'never'.",
  })
}

/**
 * What one worker acquires under isolation 'worker': an instance of its own, named after the
 * run's and the worker's index, on ports chosen free. It restores the seeded snapshot the run's lease
 * took (same config file, the seed's identity in place of the seed), and never seeds itself.
 */
export function workerOptions(plan: IntegrationPlan, workerIndex: number): EmulatorOptions {
  const { seed, seedVersion, name, ports, ...rest } = plan.run
  if (ports && Object.values(ports).some((p) => p !== 0)) {
    throw new StackEmulatorError('isolation "worker" gives each worker a VM on ports of its own, so fixed ports cannot be honoured', {
      code: 'BAD_OPTION',
      fix: 'Drop the ports option, or use isolation "suite".',
    })
  }
  return { ...rest, name: `${instanceName(name)}-worker-${workerIndex}`, seedVersion: seedIdentity({ seed, seedVersion }) || undefined }
}

/**
 * What one worker acquires under isolation 'project': a lease of its own on the run's instance
 * (the same name, ports and config file), using the seeded snapshot the run's lease took.
 */
export function projectWorkerOptions(plan: IntegrationPlan): EmulatorOptions {
  const { seed, seedVersion, ...rest } = plan.run
  return { ...rest, seedVersion: seedIdentity({ seed, seedVersion }) || undefined }
}
