import { describe, expect, it } from 'vitest'
import { LeaseBook } from '../../src/supervisor/leases.js'

const client = (pid: number) => ({ pid, command: 'test' })

describe('LeaseBook isolation rules', () => {
  it('resets for a lone suite only after a previous suite used the VM', () => {
    const book = new LeaseBook()
    const first = book.open(client(1))
    expect(book.needsReset(first)).toBe(false) // fresh VM
    first.acquired = true
    book.close(first)
    const second = book.open(client(2))
    expect(book.needsReset(second)).toBe(true)
  })

  it('shares the VM between overlapping suites under "suite" and never resets under "none"', () => {
    const book = new LeaseBook()
    book.dirty = true
    const a = book.open(client(1))
    a.acquired = true
    const b = book.open(client(2))
    expect(book.mustWait(b)).toBe(false)
    expect(book.needsReset(b)).toBe(false)
    const c = book.open(client(3))
    c.isolation = 'none'
    book.close(a)
    expect(book.needsReset(c)).toBe(false)
  })

  it('makes an exclusive suite wait for the others, and others wait for it', () => {
    const book = new LeaseBook()
    const a = book.open(client(1))
    a.acquired = true
    const b = book.open(client(2))
    b.isolation = 'exclusive'
    expect(book.mustWait(b)).toBe(true)
    book.close(a)
    expect(book.mustWait(b)).toBe(false)
    expect(book.needsReset(b)).toBe(true)
    b.acquired = true
    const c = book.open(client(3))
    expect(book.mustWait(c)).toBe(true)
    expect(book.list().map((l) => l.pid)).toEqual([2, 3])
  })
})
