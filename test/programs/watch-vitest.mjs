// Drives Vitest's watch mode through its node API (no TTY): one run, one rerun of every file,
// then close. Prints {runs: [{failed, passed}], ...} as one JSON line.
import { startVitest } from 'vitest/node'

const root = process.argv[2]
const vitest = await startVitest('test', [], { root, watch: true, reporters: [] })
const summary = () => {
  const files = vitest.state.getFiles()
  return { failed: vitest.state.getCountOfFailedTests(), passed: files.flatMap((f) => f.tasks).filter((t) => t.result?.state === 'pass').length }
}
const runs = [summary()]
await vitest.rerunFiles()
runs.push(summary())
await vitest.close()
process.stdout.write(`${JSON.stringify({ runs })}\n`)
process.exit(0)
