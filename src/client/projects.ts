/**
 * Isolation by tenant (issue 25): a fresh Stack Auth project per test or per test file, on the
 * shared VM. The supervisor mints each one as Stack Auth's CLI mints (a config file of its own,
 * copied from the app's, then the credential route: supervisor.ts `project`); this module asks
 * for one, gives it its env and a mail helper that sees only its mail, runs the per-project seed,
 * and resolves the options (defaults written here once).
 */
import path from 'node:path'
import { StackEmulatorError, badOption } from '../errors.js'
import { emulatorEnv, type StackCredentials } from '../stack/environment.js'
import { mailFor, type MailClient } from '../stack/mail.js'
import { signInHelpers, type SignInHelpers } from '../stack/test-users.js'
import type { MintedProjectResult } from '../supervisor/protocol.js'
import type { SupervisorConnection } from './connection.js'
import { ProjectPool } from './project-pool.js'

/** One project minted for one test (or file): its id and keys, its env, its mail. */
export interface MintedProject extends StackCredentials, SignInHelpers {
  /** Its config file (a copy of the app's, in the instance folder): the backend reads its config there. */
  readonly configFile: string
  /** The project's display name, "Local Emulator: <file name>": its mail's From name. */
  readonly displayName: string
  /** The environment variables for it (as Emulator.env, with this project's id and keys). */
  readonly env: Record<string, string>
  /** The mail helper, seeing only the mail this project sent. */
  readonly mail: MailClient
  /** The VM state it was minted in: a reset or restore (a higher generation) drops it. */
  readonly generation: number
}

/**
 * Fills a new project with what each test starts from (users, teams), through the SDK or HTTP
 * with `project`'s keys. Runs once per project, in the worker, while the project is minted ahead.
 */
export type SeedProject = (project: MintedProject) => Promise<void> | void

/** When a new project is taken: before each test, or before each test file. */
export type ProjectScope = 'test' | 'file'
const PROJECT_SCOPES: readonly ProjectScope[] = ['test', 'file']

export interface ProjectIsolationOptions {
  /** A fresh project before each test ('test') or each test file ('file'). @default 'test' */
  per?: ProjectScope
  /**
   * Projects each worker keeps minted (and seeded) ahead, in the background, so that a test waits
   * for none; 0 mints when a test asks. Left over ones are dropped with the VM or its next reset.
   * @default 2
   */
  mintAhead?: number
  /**
   * Runs once in each new project. A function (acquire(), Playwright: its config is loaded in each
   * worker), or the path of a module whose default export is one (the only form the Vitest plugin
   * takes: its workers do not load vitest.config.ts).
   */
  seedProject?: SeedProject | string
}

export interface ProjectIsolationPlan {
  per: ProjectScope
  mintAhead: number
  /** An absolute module path, a function, or undefined. */
  seedProject: SeedProject | string | undefined
}

export const PROJECT_DEFAULTS = { per: 'test' as ProjectScope, mintAhead: 2 }
/** More ahead than this costs the guest more than any test run gains (a mint is ~0.2 s under TCG). */
export const MAX_MINT_AHEAD = 8

/** Validates and fills the project options; `cwd` anchors a relative seedProject path. */
export function resolveProjectIsolation(options: ProjectIsolationOptions, cwd = process.cwd()): ProjectIsolationPlan {
  const { per, mintAhead, seedProject } = options
  if (per !== undefined && !PROJECT_SCOPES.includes(per)) throw badOption('per', per, `one of ${PROJECT_SCOPES.join(', ')}`)
  if (mintAhead !== undefined && (!Number.isInteger(mintAhead) || mintAhead < 0 || mintAhead > MAX_MINT_AHEAD)) {
    throw badOption('mintAhead', mintAhead, `an integer from 0 to ${MAX_MINT_AHEAD}`)
  }
  if (seedProject !== undefined && typeof seedProject !== 'function' && (typeof seedProject !== 'string' || !seedProject)) {
    throw badOption('seedProject', seedProject, 'a function or the path of a module whose default export is one')
  }
  return {
    per: per ?? PROJECT_DEFAULTS.per,
    mintAhead: mintAhead ?? PROJECT_DEFAULTS.mintAhead,
    seedProject: typeof seedProject === 'string' ? path.resolve(cwd, seedProject) : seedProject,
  }
}

/** The seed function a plan names: a module's default export is loaded (once per caller). */
export async function loadSeedProject(
  seed: SeedProject | string | undefined,
  load: (file: string) => Promise<unknown> = (f) => import(f),
): Promise<SeedProject | undefined> {
  if (typeof seed !== 'string') return seed
  const module = (await load(seed)) as { default?: unknown }
  if (typeof module?.default !== 'function') {
    throw new StackEmulatorError(`seedProject module ${seed} has no default export that is a function`, {
      code: 'BAD_OPTION',
      fix: 'export default async function seedProject(project) { ... } in that module.',
    })
  }
  return module.default as SeedProject
}

/** What a project is minted from: the supervisor connection of a lease, the app's config file, the VM's URLs. */
export interface ProjectSource {
  readonly name: string
  readonly configFile: string | undefined
  readonly services: Record<string, string>
  readonly connection: SupervisorConnection
}

/** Mints a fresh project on the VM (supervisor op `project`), with its env and mail helper. */
export async function mintProject(source: ProjectSource): Promise<MintedProject> {
  if (!source.configFile) {
    throw new StackEmulatorError(
      'isolation "project" needs credentials, but this emulator has none (configFile: false, or an image without a credential route)',
      {
        code: 'CREDENTIALS',
        fix: 'Drop configFile: false, or use isolation "worker" or reset: "test" instead.',
      },
    )
  }
  const result = await source.connection.request<MintedProjectResult>({ op: 'project', configFile: source.configFile }, MINT_TIMEOUT_MS)
  return projectFrom(source.name, source.services, result)
}

/** The route answers within 15 s (credentials.ts); the copy and the share add little. */
const MINT_TIMEOUT_MS = 30_000

export function projectFrom(name: string, services: Record<string, string>, result: MintedProjectResult): MintedProject {
  const { configFile, displayName, generation, ...credentials } = result
  return {
    ...credentials,
    configFile,
    displayName,
    generation,
    env: emulatorEnv(name, services, credentials),
    mail: mailFor(services, { project: displayName }),
    ...signInHelpers(() => ({ backendUrl: services.backend ?? '', ...credentials })),
  }
}

/** What a pool mints from: an acquired emulator (acquire.ts Emulator), or a fake in tests. */
export interface ProjectMinter {
  newProject(): Promise<MintedProject>
  onNewGeneration(listener: (generation: number) => void): () => void
}

/**
 * A worker's pool of fresh projects: each minted and seeded ahead in the background (bounded by
 * mintAhead), dropped unused when the VM changes state. Close it before releasing the emulator.
 */
export async function startProjectPool(
  emulator: ProjectMinter,
  plan: ProjectIsolationPlan,
  load?: (file: string) => Promise<unknown>,
): Promise<ProjectPool<MintedProject>> {
  const seed = await loadSeedProject(plan.seedProject, load)
  const pool = new ProjectPool<MintedProject>({
    ahead: plan.mintAhead,
    mint: async () => {
      const project = await emulator.newProject()
      await seed?.(project)
      return project
    },
  })
  const unsubscribe = emulator.onNewGeneration(() => pool.drain())
  const close = pool.close.bind(pool)
  pool.close = async () => {
    unsubscribe()
    await close()
  }
  return pool.start()
}
