/** The backend's users API with server keys, as a test would call it. */
export interface Keys {
  projectId: string
  secretServerKey: string
}

export function serverHeaders(keys: Keys): Record<string, string> {
  return {
    'content-type': 'application/json',
    'x-stack-project-id': keys.projectId,
    'x-stack-access-type': 'server',
    'x-stack-secret-server-key': keys.secretServerKey,
  }
}

export async function userEmails(backendUrl: string, keys: Keys): Promise<string[]> {
  const response = await fetch(`${backendUrl}/api/v1/users`, { headers: serverHeaders(keys) })
  if (response.status !== 200) throw new Error(`list users: HTTP ${response.status} ${await response.text()}`)
  return ((await response.json()) as { items: { primary_email: string }[] }).items.map((u) => u.primary_email).sort()
}

export async function createUser(backendUrl: string, keys: Keys, email: string): Promise<void> {
  const response = await fetch(`${backendUrl}/api/v1/users`, { method: 'POST', headers: serverHeaders(keys), body: JSON.stringify({ primary_email: email }) })
  if (response.status !== 201) throw new Error(`create user: HTTP ${response.status} ${await response.text()}`)
}
