import { describe, expect, it } from 'vitest'
import { validateOptions } from '../../src/client/options.js'
import { StackEmulatorError, errorFromJSON } from '../../src/errors.js'

describe('StackEmulatorError across the supervisor socket', () => {
  it('keeps its code, message, fix and details', () => {
    const error = new StackEmulatorError('QEMU exited', { code: 'BOOT_FAILED', fix: 'See the console.', details: 'kernel panic' })
    const rebuilt = errorFromJSON(JSON.parse(JSON.stringify(error)))
    expect(rebuilt).toBeInstanceOf(StackEmulatorError)
    expect(rebuilt).toMatchObject({
      code: 'BOOT_FAILED',
      message: 'QEMU exited. See the console.\nkernel panic',
      fix: 'See the console.',
      details: 'kernel panic',
    })
  })

  it('leaves out a fix and details it does not have', () => {
    expect(new StackEmulatorError('Gone', { code: 'NOT_RUNNING' }).toJSON()).toEqual({ code: 'NOT_RUNNING', message: 'Gone.' })
  })
})

describe('option errors', () => {
  it('are StackEmulatorErrors (BAD_OPTION) naming the option, the value and its type', () => {
    const error = (() => {
      try {
        validateOptions({ isolation: 'strict' as never })
      } catch (e) {
        return e
      }
    })()
    expect(error).toBeInstanceOf(StackEmulatorError)
    expect(error).toMatchObject({ code: 'BAD_OPTION', message: 'Option "isolation" must be one of suite, exclusive, none, got "strict" (string).' })
    expect(() => validateOptions({ ports: { backend: 70000 } })).toThrow(/ports\.backend/)
  })
})
