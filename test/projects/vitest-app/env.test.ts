import { expect, inject, test } from 'vitest'
import { isMainThread } from 'node:worker_threads'

const run = process.env.RUN_ID ?? 'local'
const headers = () => ({
  'content-type': 'application/json',
  'x-stack-project-id': process.env.STACK_PROJECT_ID!,
  'x-stack-access-type': 'server',
  'x-stack-secret-server-key': process.env.STACK_SECRET_SERVER_KEY!,
})

test('inject() and process.env agree, in this worker', () => {
  const emulator = inject('stackEmulator')! // provided: one VM for the run (no per-worker VMs here)
  // forks: a child process; threads: a worker thread. Either way the env is there.
  expect(isMainThread).toBe(process.env.EXPECTED_POOL !== 'threads')
  expect(emulator.backendUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  expect(process.env.STACK_API_URL).toBe(emulator.backendUrl)
  expect(process.env.NEXT_PUBLIC_STACK_API_URL).toBe(emulator.backendUrl)
  expect(process.env.STACK_PROJECT_ID).toBe(emulator.projectId)
  expect(process.env.STACK_SECRET_SERVER_KEY).toBe(emulator.secretServerKey)
  expect(emulator.env.STACK_EMULATOR_DASHBOARD_URL).toBe(emulator.dashboardUrl)
})

test('starts clean, then writes', async () => {
  const url = `${process.env.STACK_API_URL}/api/v1/users`
  const before = ((await (await fetch(url, { headers: headers() })).json()) as { items: unknown[] }).items
  expect(before).toEqual([])
  const created = await fetch(url, { method: 'POST', headers: headers(), body: JSON.stringify({ primary_email: `vitest-${run}@example.com` }) })
  expect(created.status).toBe(201)
  if (process.env.HOLD_MS) await new Promise((r) => setTimeout(r, Number(process.env.HOLD_MS)))
}, 120_000)
