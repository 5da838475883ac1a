// The app's backend code: sign a user up and list users through the Stack Auth backend's REST
// API (server access), configured only by the environment variables Stack Auth's SDKs read.
const config = () => ({
  apiUrl: required('STACK_API_URL'),
  projectId: required('STACK_PROJECT_ID'),
  secretServerKey: required('STACK_SECRET_SERVER_KEY'),
})

function required(name) {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run under stack-emulator (plugin, fixture or exec)`)
  return value
}

async function call(path, init = {}) {
  const { apiUrl, projectId, secretServerKey } = config()
  const response = await fetch(`${apiUrl}${path}`, {
    ...init,
    headers: {
      'content-type': 'application/json',
      'x-stack-project-id': projectId,
      'x-stack-access-type': 'server',
      'x-stack-secret-server-key': secretServerKey,
    },
  })
  const body = await response.json()
  if (!response.ok) throw new Error(`${init.method ?? 'GET'} ${path}: HTTP ${response.status} ${JSON.stringify(body)}`)
  return body
}

export const signUp = (email, displayName) =>
  call('/api/v1/users', { method: 'POST', body: JSON.stringify({ primary_email: email, display_name: displayName }) })

export const listUsers = async () => (await call('/api/v1/users')).items
