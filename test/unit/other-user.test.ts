/**
 * Another user's instance: `status`, `stop`, `reset` say whose it is and what to do, rather than
 * print a raw EACCES (issue 22). The built CLI runs as user nobody against root's state folder.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { cliPath } from '../helpers.js'

const NOBODY = 65534
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'se-other-'))
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))

/** Root's instance "theirs", with a state file, as a running one leaves it. */
function rootInstance(stateMode: number): void {
  const dir = path.join(home, 'state', 'theirs')
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
  fs.writeFileSync(path.join(dir, 'state.json'), JSON.stringify({ pid: process.pid, nonce: 'x' }), { mode: 0o600 })
  fs.chmodSync(home, 0o755)
  fs.chmodSync(path.join(home, 'state'), stateMode)
}

const asNobody = (command: string) =>
  execa(process.execPath, [cliPath, command, '--name', 'theirs'], {
    uid: NOBODY,
    gid: NOBODY,
    env: { STACK_EMULATOR_HOME: home },
    reject: false,
    timeout: 60_000,
  })

describe("another user's instance", () => {
  it.each([
    ['its folder is theirs', 0o755, /Instance "theirs" belongs to another user: its folder \S+\/state\/theirs is user 0's, not yours \(user 65534\)/],
    [
      'a folder above it is closed',
      0o700,
      /Instance "theirs" belongs to another user: its folder \S+\/state\/theirs is inside \S+\/state, which is user 0's and closed to you \(user 65534\)/,
    ],
  ])('%s: status, stop and reset name the owner and the fix', async (_, stateMode, message) => {
    if (process.getuid?.() !== 0) throw new Error('this test runs the CLI as user nobody: run it as root (CI does)')
    rootInstance(stateMode)
    for (const command of ['status', 'stop', 'reset']) {
      const result = await asNobody(command)
      expect(result.stderr, command).toMatch(message)
      expect(result.stderr, command).toMatch(/run the command as user 0 \(e\.g\. sudo -u '#0' stack-emulator \.\.\.\)/)
      expect(result.stderr, command).not.toMatch(/EACCES/)
      expect(result.exitCode, command).not.toBe(0)
    }
    expect(fs.readdirSync(path.join(home, 'state', 'theirs'))).toEqual(['state.json']) // nothing of theirs touched
  })
})
