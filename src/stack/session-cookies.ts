/**
 * The cookies Stack Auth's browser SDK takes a session from on page load, so that a browser
 * context holding them is signed in. Names and formats from @stackframe/js 2.8.108
 * (client-app-impl.js: `_refreshTokenCookieName`, `_formatRefreshCookieValue`,
 * `_accessTokenCookieName`, `_extractRefreshTokenFromCookieMap`), and the names of the SDKs
 * before the Hexclave rename (2.8.86, `stack-refresh-<project>--default`, `stack-access`), which
 * the newer SDK still reads after its own: both are written, so either generation signs in.
 */
import type { UserSession } from './test-users.js'

export interface SessionCookie {
  name: string
  value: string
}

/** The cookies of `session` in `projectId`, for a page served over `secure` (https) or not. */
export function sessionCookies(projectId: string, session: UserSession, secure: boolean): SessionCookie[] {
  // On https the SDK names its refresh cookie with the __Host- prefix (path /, no domain, secure).
  const host = secure ? '__Host-' : ''
  // The SDK URL-encodes values (js-cookie) and decodes them when it reads document.cookie.
  const refresh = encodeURIComponent(JSON.stringify({ refresh_token: session.refreshToken, updated_at_millis: Date.now() }))
  // Read only when its first element is the refresh token it goes with.
  const access = encodeURIComponent(JSON.stringify([session.refreshToken, session.accessToken]))
  return [
    { name: `${host}hexclave-refresh-${projectId}--default`, value: refresh },
    { name: 'hexclave-access', value: access },
    { name: `${host}stack-refresh-${projectId}--default`, value: refresh },
    { name: 'stack-access', value: access },
  ]
}

/** Every cookie either SDK generation keeps a session in (for signing out). */
export const SESSION_COOKIE_NAME = /^(__Host-)?(hexclave|stack)-(refresh|access)(-|$)/
