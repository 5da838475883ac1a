/**
 * The fixture server's own Python tests (fixtures/image/guest/tests: its pure modules, and the
 * server against a private PostgreSQL, which skips itself without one) and its lint (flake8, as
 * configured in fixtures/image/guest/.flake8), run with the host's python3 as `npm test` runs
 * everything. scripts/prerequisites.sh installs what they need (python3-psycopg2, python3-jwt,
 * python3-cryptography, python3-flake8, postgresql).
 */
import fs from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'

const GUEST = path.join(import.meta.dirname, '..', '..', 'fixtures', 'image', 'guest')
// Debian's python3, where apt puts psycopg2, PyJWT and flake8 (a pyenv or venv python3 on PATH lacks them).
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'
// No bytecode next to the sources: it would land in the image's inputs.
const run = (args: string[]) => execa(PYTHON, ['-B', ...args], { cwd: GUEST, reject: false, all: true, env: { PYTHONDONTWRITEBYTECODE: '1' } })

const hasFlake8 = (await run(['-c', 'import flake8'])).exitCode === 0
if (!hasFlake8) console.warn('fixture-server-python.test.ts: the lint is skipped (apt-get install python3-flake8)')

describe("the fixture server's Python", () => {
  it('passes its unit tests (python3 -m unittest discover)', async () => {
    const result = await run(['-m', 'unittest', 'discover', '-s', 'tests', '-t', '.', '-v'])
    expect(result.exitCode, result.all).toBe(0)
    const ran = /^Ran (\d+) tests? in/m.exec(result.all ?? '')
    expect(Number(ran?.[1]), result.all).toBeGreaterThan(30)
    const skipped = (result.all ?? '').split('\n').filter((line) => / skipped '/.test(line))
    if (skipped.length) console.warn(`fixture server tests skipped here:\n${skipped.join('\n')}`)
  }, 120_000)

  it.skipIf(!hasFlake8)('is clean under flake8 (apt-get install python3-flake8)', async () => {
    const result = await run(['-m', 'flake8', '.'])
    expect(result.all, 'flake8 findings').toBe('')
    expect(result.exitCode).toBe(0)
  })
})
