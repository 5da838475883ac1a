/**
 * Signing a Playwright browser context in and out without a sign-in page: the session's cookies
 * (session-cookies.ts) put into the context for the app's origin, before its first page load.
 */
import { test, type BrowserContext, type Page } from '@playwright/test'
import { StackEmulatorError } from '../../errors.js'
import { SESSION_COOKIE_NAME, sessionCookies } from '../../stack/session-cookies.js'
import type { UserSession } from '../../stack/test-users.js'

export type BrowserTarget = Page | BrowserContext

export interface BrowserSignInOptions {
  /** The app's URL, whose origin gets the cookies. @default the project's `use.baseURL` */
  url?: string
}

const contextOf = (target: BrowserTarget): BrowserContext => ('addCookies' in target ? target : target.context())

export async function signInBrowser(target: BrowserTarget, projectId: string, session: UserSession, options: BrowserSignInOptions = {}): Promise<void> {
  const url = options.url ?? (test.info().project.use.baseURL as string | undefined)
  if (!url) {
    throw new StackEmulatorError("signIn(page, user) needs the app's URL to put the session's cookies on", {
      code: 'SIGN_IN',
      fix: "Set use.baseURL in playwright.config.ts, or pass it: signIn(page, user, { url: 'http://127.0.0.1:3000' })",
    })
  }
  const origin = new URL(url)
  const secure = origin.protocol === 'https:'
  await contextOf(target).addCookies(
    sessionCookies(projectId, session, secure).map((cookie) => ({
      ...cookie,
      url: new URL('/', origin).href,
      secure,
      httpOnly: false,
      sameSite: 'Lax' as const,
    })),
  )
}

/** Drops every session cookie of either SDK generation: the next page load is signed out. */
export async function signOutBrowser(target: BrowserTarget): Promise<void> {
  await contextOf(target).clearCookies({ name: SESSION_COOKIE_NAME })
}
