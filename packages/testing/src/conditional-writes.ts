/**
 * Conditional writes, enforced by the S3 test proxy for servers that ignore them: which requests
 * carry a condition (PutObject, CompleteMultipartUpload), whether it holds against the object's
 * current ETag, read with a HEAD (signed with the target's credentials when it has them), and a
 * per-key lock that serializes writes to one object.
 */
import type { IncomingHttpHeaders } from 'node:http'
import { request } from 'node:http'
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import { clientFor, type S3Connection } from './local-s3.js'
import { header } from './proxy-http.js'
import type { ProxiedRequest } from './proxy-types.js'

/** PutObject (not UploadPart) or CompleteMultipartUpload carrying a condition. */
export function isConditionalWrite(seen: ProxiedRequest): boolean {
  if (!seen.headers['if-match'] && !seen.headers['if-none-match']) return false
  const query = new URL(seen.url, 'http://x').searchParams
  if (seen.method === 'PUT') return !query.has('partNumber') && !seen.headers['x-amz-copy-source']
  return seen.method === 'POST' && query.has('uploadId')
}

/** Whether `If-Match` / `If-None-Match` in `headers` fails against `current`, the object's ETag unquoted (undefined: no object). */
export function conditionFails(headers: IncomingHttpHeaders, current: string | undefined): boolean {
  const ifMatch = header(headers['if-match'])
  const ifNoneMatch = header(headers['if-none-match'])
  return (
    (ifNoneMatch === '*' && current !== undefined) || (ifMatch !== undefined && (current === undefined || unquote(ifMatch) !== current))
  )
}

/** Runs `work` once every earlier `work` on `path` has settled: writes to one object, one at a time. */
export async function underLock(locks: Map<string, Promise<void>>, path: string, work: () => Promise<void>): Promise<void> {
  const previous = locks.get(path) ?? Promise.resolve()
  let release = () => {}
  const mine = new Promise<void>((resolve) => {
    release = resolve
  })
  const chained = previous.then(() => mine)
  locks.set(path, chained)
  await previous
  try {
    await work()
  } finally {
    release()
    if (locks.get(path) === chained) locks.delete(path)
  }
}

/** Reads an object's current ETag for the proxy, by HEAD on the target; `destroy` frees its signing client. */
export class EtagReader {
  readonly #target: URL
  readonly #connection: S3Connection | undefined
  // Signs the proxy's own requests; built on first use, destroyed by destroy().
  #signer: S3Client | undefined

  constructor(target: URL, connection: S3Connection | undefined) {
    this.#target = target
    this.#connection = connection
  }

  /** The current ETag of the object at the path-style `/bucket/key`, unquoted, or undefined when there is none. */
  async headEtag(path: string): Promise<string | undefined> {
    const connection = this.#connection
    const target = this.#target
    if (connection) return this.#signedHeadEtag(path, connection)
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

  /** HEAD of a path-style `/bucket/key`, signed: the current ETag unquoted, or undefined when there is no object. */
  async #signedHeadEtag(path: string, connection: S3Connection): Promise<string | undefined> {
    const [, bucket = '', ...key] = path.split('/')
    this.#signer ??= clientFor(connection, { maxAttempts: 3 })
    try {
      const head = await this.#signer.send(
        new HeadObjectCommand({ Bucket: decodeURIComponent(bucket), Key: key.map(decodeURIComponent).join('/') }),
      )
      return head.ETag ? unquote(head.ETag) : undefined
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined
      throw error
    }
  }

  destroy(): void {
    this.#signer?.destroy()
  }
}

export function unquote(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '')
}
