/**
 * Where a run's time goes, as JSON (vitest.config.ts adds it when STACK_EMULATOR_TEST_TIMINGS
 * names the file; `.ci/run` prints the slowest with .ci/timings.mjs). A file's time counts its
 * import, collection and hooks, which Vitest's json reporter leaves out (a VM boots in beforeAll).
 * Written after every file, so a run that is killed still leaves what it did.
 */
import fs from 'node:fs'
import path from 'node:path'
import type { Reporter, TestCase, TestModule } from 'vitest/node'

interface Timed {
  file: string
  name?: string
  project: string
  ms: number
  state: string
}

export default class TimingsReporter implements Reporter {
  private readonly files: Timed[] = []
  private readonly tests: Timed[] = []

  constructor(private readonly options: { outputFile: string }) {}

  onTestCaseResult(test: TestCase): void {
    this.tests.push({
      file: relative(test.module),
      name: test.fullName,
      project: test.project.name,
      ms: Math.round(test.diagnostic()?.duration ?? 0),
      state: test.result().state,
    })
  }

  onTestModuleEnd(module: TestModule): void {
    const d = module.diagnostic()
    const ms = d.environmentSetupDuration + d.prepareDuration + d.collectDuration + d.setupDuration + d.duration
    this.files.push({ file: relative(module), project: module.project.name, ms: Math.round(ms), state: module.state() })
    fs.mkdirSync(path.dirname(this.options.outputFile), { recursive: true })
    fs.writeFileSync(this.options.outputFile, JSON.stringify({ files: this.files, tests: this.tests }, null, 1))
  }
}

const relative = (module: TestModule) => path.relative(process.cwd(), module.moduleId)
