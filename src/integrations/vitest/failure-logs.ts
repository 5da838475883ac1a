/**
 * In each test worker (the plugin's setup file): when a test fails, the emulator's log lines from
 * its time window go into the report. Not through `context.annotate`: Vitest (3.2 to 4.1) refuses
 * an annotation once the test body has ended ("Cannot annotate tests outside of the test run"),
 * and a failure is known only then. Instead: the task's `meta.stackEmulatorLogs` (the JSON
 * reporter and custom reporters have it), a test artifact with the text attached where Vitest has
 * `recordArtifact` (4 and later), and a printed block under the test's name.
 */
import * as vitest from 'vitest'
import type { RunnerTestCase } from 'vitest'
import { logsForFailedTest } from '../../client/test-logs.js'
import { currentContext } from './worker.js'

declare module 'vitest' {
  interface TaskMeta {
    /** stack-emulator: the emulator's log lines from this failed test's time window. */
    stackEmulatorLogs?: string
  }
}

/** Vitest 4's recordArtifact, for an artifact of our own type (absent from Vitest 3). */
type RecordArtifact = (task: RunnerTestCase, artifact: { type: string; attachments: { contentType: string; body: Uint8Array }[] }) => Promise<unknown>

export function attachLogsOnFailure(): void {
  // Destructured: Vitest reads a hook's first parameter for the fixtures it uses, and refuses any other form.
  vitest.beforeEach(({ task, onTestFailed }) => {
    const startMs = Date.now()
    onTestFailed(async () => {
      let text: string
      try {
        text = await logsForFailedTest(currentContext().name, { startMs, endMs: Date.now() })
      } catch (error) {
        text = `stack-emulator: no logs for this test: ${(error as Error).message.split('\n')[0]}\n`
      }
      task.meta.stackEmulatorLogs = text
      console.error(text.trimEnd())
      const record = (vitest as { recordArtifact?: RecordArtifact }).recordArtifact
      await record?.(task, { type: 'stack-emulator:logs', attachments: [{ contentType: 'text/plain', body: Buffer.from(text) }] }).catch(() => {})
    })
  })
}
