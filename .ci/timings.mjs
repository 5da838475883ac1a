// Prints where a CI run's time went: the steps of .ci/run (a file of "<seconds> <step>" lines),
// then the ten slowest test files and the ten slowest tests of the JSON that
// test/timings-reporter.ts writes. Usage: node .ci/timings.mjs <timings.json> [<steps file>]
import fs from 'node:fs'

const [timingsFile, stepsFile] = process.argv.slice(2)
// Rounded to the second first, so 239.6 s reads 4:00, not 3:60.
const clock = (ms) => {
  const seconds = Math.round(ms / 1000)
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`
}
const read = (file) => (file && fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined)

const steps = read(stepsFile)
if (steps) {
  console.log('\n.ci/run, step by step (m:ss):')
  for (const line of steps.trim().split('\n')) {
    const [seconds, ...step] = line.split(' ')
    console.log(`  ${clock(Number(seconds) * 1000).padStart(6)}  ${step.join(' ')}`)
  }
}

const text = read(timingsFile)
if (!text) {
  console.log(`\nNo test timings: no test file ended (${timingsFile} is not there).`)
} else {
  const { files, tests } = JSON.parse(text)
  const show = (title, rows, label) => {
    console.log(`\n${title}:`)
    for (const row of [...rows].sort((a, b) => b.ms - a.ms).slice(0, 10)) {
      console.log(`  ${clock(row.ms).padStart(6)}  ${label(row)}${row.state === 'passed' ? '' : ` (${row.state})`}`)
    }
  }
  const total = files.reduce((sum, f) => sum + f.ms, 0)
  show(`The ten slowest of ${files.length} test files (m:ss, with imports and hooks; ${clock(total)} in all)`, files, (f) => `${f.file} [${f.project}]`)
  show(`The ten slowest of ${tests.length} tests (m:ss)`, tests, (t) => `${t.file} > ${t.name}`)
}
