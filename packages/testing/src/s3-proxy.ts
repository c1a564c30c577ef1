/**
 * A loopback HTTP proxy in front of an S3 server, for tests: it can enforce `If-Match` /
 * `If-None-Match` on writes (PutObject and CompleteMultipartUpload) for servers that ignore them,
 * such as the embedded one, and it can answer chosen requests itself (a 412, a 503, …) instead of
 * forwarding them. Point a client at `proxy.endpoint`.
 *
 * @example
 * ```ts
 * import { startLocalS3, startS3Proxy } from '@s3exchange/testing'
 *
 * const s3 = await startLocalS3()
 * const proxy = await startS3Proxy({ target: s3.endpoint, enforceConditionalWrites: true })
 * const client = s3.createClient({ endpoint: proxy.endpoint })
 * // concurrent conditional writes through `client` now lose the race with HTTP 412, as on AWS S3
 * await proxy.stop()
 * ```
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** What the proxy saw of a request, for `intercept` and `requests`. */
export interface ProxiedRequest {
  method: string
  /** Path and query, e.g. `/bucket/key?uploadId=…`. */
  url: string
  headers: IncomingHttpHeaders
}

/** An answer the proxy gives instead of forwarding. */
export interface ProxyAnswer {
  status: number
  /** S3 error code for the XML body, e.g. `PreconditionFailed`. */
  code?: string
}

/** Options for {@link startS3Proxy}. */
export interface S3ProxyOptions {
  /** The S3 server to forward to, e.g. `http://127.0.0.1:40123`. */
  target: string
  /** Enforce `If-Match` / `If-None-Match` on PutObject and CompleteMultipartUpload. Default false. */
  enforceConditionalWrites?: boolean
  /**
   * Called for each request before it is forwarded: return an answer to send instead, or
   * undefined to forward it. Runs after conditional checks (when enabled) would let it through.
   */
  intercept?: (request: ProxiedRequest) => ProxyAnswer | undefined
}

/** A running proxy. */
export interface S3Proxy {
  /** Base URL to point clients at. */
  endpoint: string
  /** Every request seen, in order. */
  requests: ProxiedRequest[]
  /** Conditional writes refused with 412 so far. */
  conflicts: number
  stop(): Promise<void>
}

/** Starts the proxy on a free loopback port. */
export async function startS3Proxy(options: S3ProxyOptions): Promise<S3Proxy> {
  const target = new URL(options.target)
  const locks = new Map<string, Promise<void>>()
  const proxy: S3Proxy = { endpoint: '', requests: [], conflicts: 0, stop: async () => {} }

  const server = createServer((req, res) => {
    const seen: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers }
    proxy.requests.push(seen)
    handle(req, res, seen).catch((error: Error) => {
      if (!res.headersSent) answer(res, { status: 502, code: 'ProxyError' }, error.message)
      else res.destroy(error)
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse, seen: ProxiedRequest): Promise<void> {
    const conditional = options.enforceConditionalWrites && isConditionalWrite(seen)
    if (!conditional) {
      const intercepted = options.intercept?.(seen)
      if (intercepted) return void answer(res, intercepted)
      return forward(req, res)
    }
    // Serialize conditional writes per object, check the condition, then forward under the lock.
    const path = new URL(seen.url, 'http://x').pathname
    const previous = locks.get(path) ?? Promise.resolve()
    let release = () => {}
    const mine = new Promise<void>((resolve) => {
      release = resolve
    })
    const chained = previous.then(() => mine)
    locks.set(path, chained)
    await previous
    try {
      const current = await headEtag(path)
      const ifMatch = header(seen.headers['if-match'])
      const ifNoneMatch = header(seen.headers['if-none-match'])
      const fails =
        (ifNoneMatch === '*' && current !== undefined) || (ifMatch !== undefined && (current === undefined || unquote(ifMatch) !== current))
      if (fails) {
        proxy.conflicts++
        req.resume()
        return void answer(res, { status: 412, code: 'PreconditionFailed' })
      }
      const intercepted = options.intercept?.(seen)
      if (intercepted) return void answer(res, intercepted)
      await forward(req, res)
    } finally {
      release()
      if (locks.get(path) === chained) locks.delete(path)
    }
  }

  function forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    return new Promise((resolve, reject) => {
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
          upstreamRes.pipe(res)
          upstreamRes.on('end', () => resolve())
          upstreamRes.on('error', reject)
        },
      )
      upstream.on('error', reject)
      req.pipe(upstream)
    })
  }

  function headEtag(path: string): Promise<string | undefined> {
    return new Promise((resolve, reject) => {
      const head = request({ host: target.hostname, port: target.port, method: 'HEAD', path }, (headRes) => {
        headRes.resume()
        const etag = header(headRes.headers.etag)
        resolve(headRes.statusCode === 200 && etag ? unquote(etag) : undefined)
      })
      head.on('error', reject)
      head.end()
    })
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  proxy.stop = () =>
    new Promise((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return proxy
}

/** PutObject (not UploadPart) or CompleteMultipartUpload carrying a condition. */
function isConditionalWrite(seen: ProxiedRequest): boolean {
  if (!seen.headers['if-match'] && !seen.headers['if-none-match']) return false
  const query = new URL(seen.url, 'http://x').searchParams
  if (seen.method === 'PUT') return !query.has('partNumber') && !seen.headers['x-amz-copy-source']
  return seen.method === 'POST' && query.has('uploadId')
}

function answer(res: ServerResponse, reply: ProxyAnswer, message = ''): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${reply.code ?? 'InjectedError'}</Code><Message>${message || 'answered by the test proxy'}</Message></Error>`
  res.writeHead(reply.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '')
}
