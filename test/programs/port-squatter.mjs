// Another program that wants a host port: tries to listen on 127.0.0.1:<argv[2]> again and again
// until it gets it (so it takes the port the moment its holder lets go), prints "held", and holds
// it until killed.
import net from 'node:net'

const port = Number(process.argv[2])
const attempt = () => {
  const server = net.createServer((socket) => socket.end('squatter\n'))
  server.once('error', () => setImmediate(attempt))
  server.listen(port, '127.0.0.1', () => process.stdout.write('held\n'))
}
attempt()
