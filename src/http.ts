/**
 * Small JSON-over-HTTP calls to the VM's services (health probes, the clock, credentials), on
 * Node's own http module: it is already loaded, while undici costs about 140 ms of module
 * loading on the supervisor's start-up path (docs/benchmarks.md, "Start-up"). Downloads use undici.
 */
import http from 'node:http'

export interface HttpResult {
  status: number
  text: string
}

export function httpRequest(
  url: string,
  options: { method?: string; json?: unknown; headers?: Record<string, string>; timeoutMs: number },
): Promise<HttpResult> {
  const body = options.json === undefined ? undefined : JSON.stringify(options.json)
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: options.method ?? 'GET',
        agent: false, // one connection a call: a restored guest's old sockets are gone
        signal: AbortSignal.timeout(options.timeoutMs),
        headers: { ...options.headers, ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }) },
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        response.on('error', reject)
      },
    )
    request.on('error', reject)
    request.end(body)
  })
}
