/** The cookies a browser context gets from signIn(page, user): what Stack Auth's browser SDK reads. */
import { describe, expect, it } from 'vitest'
import { SESSION_COOKIE_NAME, sessionCookies } from '../../src/stack/session-cookies.js'

const session = { accessToken: 'eyJ.access', refreshToken: 'refresh-token' }

describe('session cookies', () => {
  it("over http: the SDK's refresh cookie (JSON with the time) and access cookie ([refresh, access]), in both SDK generations, URL-encoded", () => {
    const cookies = sessionCookies('p1', session, false)
    expect(cookies.map((c) => c.name)).toEqual(['hexclave-refresh-p1--default', 'hexclave-access', 'stack-refresh-p1--default', 'stack-access'])
    const refresh = JSON.parse(decodeURIComponent(cookies[0]!.value))
    expect(refresh).toEqual({ refresh_token: 'refresh-token', updated_at_millis: expect.any(Number) })
    expect(JSON.parse(decodeURIComponent(cookies[1]!.value))).toEqual(['refresh-token', 'eyJ.access'])
    expect(cookies.every((c) => !/[";,\s]/.test(c.value))).toBe(true)
  })

  it('over https: the refresh cookies carry the __Host- prefix, as the SDK names them there', () => {
    expect(sessionCookies('p1', session, true).map((c) => c.name)).toEqual([
      '__Host-hexclave-refresh-p1--default',
      'hexclave-access',
      '__Host-stack-refresh-p1--default',
      'stack-access',
    ])
  })

  it('signing out matches every session cookie of either generation and no other', () => {
    for (const { name } of [...sessionCookies('p1', session, false), ...sessionCookies('p1', session, true)]) expect(name).toMatch(SESSION_COOKIE_NAME)
    expect('stack-refresh-p1').toMatch(SESSION_COOKIE_NAME) // the SDK's plain legacy form
    for (const other of ['session', 'stack-theme', 'my-stack-access', 'hexclave-accessible']) expect(other).not.toMatch(SESSION_COOKIE_NAME)
  })
})
