// An app's server code as `stack-emulator exec` runs it: Stack Auth's SDK configured by the
// environment alone. Prints the project it talks to and the emails of that project's users.
import { StackServerApp } from '@stackframe/js'

const app = new StackServerApp({ tokenStore: 'memory' })
const users = await app.listUsers()
process.stdout.write(`${JSON.stringify({ projectId: app.projectId, emails: users.map((u) => u.primaryEmail) })}\n`)
// The SDK keeps timers for its caches; this program's work is done.
process.exit(0)
