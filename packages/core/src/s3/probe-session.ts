/**
 * The requests `probeServer`'s checks send, under a scratch prefix of their own: each returns its
 * {@link Answer} (success or HTTP error) and throws only on failures that say nothing about the
 * server's capabilities. It keeps the checks' records and the multipart uploads it started, and
 * empties the scratch prefix again (`cleanUp`). The checks themselves are in `probe-checks.ts`.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { S3RequestError } from '../format/errors.js'
import type { S3Context } from './context.js'
import { type Answer, unquote } from './probe-answers.js'
import type { ServerCapabilities } from './server-capabilities.js'

/** One check of the probe, for people: what was asked, and what the server answered. */
export interface ProbeCheck {
  /** The capability it measures (a field of `ServerCapabilities`). */
  id: keyof ServerCapabilities
  /** What was tried, e.g. `PutObject If-None-Match: * over an existing key`. */
  check: string
  /** What the server did, with the HTTP statuses seen, e.g. `honoured (412)`. */
  result: string
}

/** Sweeps of the scratch prefix after a cancelled probe, and the pause before each after the first. */
const CANCELLED_SWEEPS = 5
const CANCELLED_SWEEP_PAUSE_MS = 250

/** The scratch prefix, the requests sent under it and the checks' records; see the module comment. */
export class ProbeSession {
  readonly checks: ProbeCheck[] = []
  protected readonly ctx: S3Context
  readonly #prefix: string
  readonly #uploads = new Map<string, string>()
  #serial = 0

  constructor(ctx: S3Context, prefix: string) {
    this.ctx = ctx
    this.#prefix = prefix
  }

  /**
   * Aborts the uploads it started and deletes every object under the scratch prefix. After a
   * cancelled probe a request may still be on its way to the server (the SDK gives up on it, the
   * server may carry it out a moment later): the prefix is then swept again, a pause apart, until
   * a sweep finds nothing (at most `CANCELLED_SWEEPS` times).
   */
  async cleanUp(): Promise<void> {
    const { client, bucket } = this.ctx
    const failures: unknown[] = []
    const attempt = async (work: () => Promise<unknown>) => {
      try {
        await work()
      } catch (error) {
        failures.push(error)
      }
    }
    for (const [uploadId, key] of this.#uploads) {
      await attempt(() => client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })))
    }
    /** Aborts the open uploads and deletes the objects under the prefix; resolves to how many it found. */
    const sweep = async (): Promise<number> => {
      let found = 0
      await attempt(async () => {
        const open = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: this.#prefix }))
        for (const upload of open.Uploads ?? []) {
          found++
          await attempt(() => client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId })))
        }
      })
      await attempt(async () => {
        let token: string | undefined
        do {
          const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: this.#prefix, ContinuationToken: token }))
          for (const object of page.Contents ?? []) {
            found++
            if (object.Key) await attempt(() => client.send(new DeleteObjectCommand({ Bucket: bucket, Key: object.Key })))
          }
          token = page.NextContinuationToken
        } while (token)
      })
      return found
    }
    await sweep()
    if (this.ctx.signal?.aborted) {
      for (let round = 1; round < CANCELLED_SWEEPS; round++) {
        await sleep(CANCELLED_SWEEP_PAUSE_MS)
        if ((await sweep()) === 0) break
      }
    }
    if (failures.length > 0 && !this.ctx.signal?.aborted) {
      throw new S3RequestError('probe clean-up', this.#prefix, failures[0])
    }
  }

  // -------------------------------------------------------------------------------------- requests

  protected key(name: string): string {
    return `${this.#prefix}${String(++this.#serial).padStart(2, '0')}-${name}`
  }

  protected record(id: keyof ServerCapabilities, check: string, result: string): void {
    this.checks.push({ id, check, result })
  }

  /**
   * Sends a request and returns its answer, success or HTTP error. A failure that says nothing
   * about the server's capabilities (no access, the signal fired, no answer at all unless
   * `refusalsOnly` is false) is thrown as an `S3RequestError`.
   */
  protected async send<T extends { $metadata?: { httpStatusCode?: number } }>(
    operation: string,
    key: string,
    request: (options: { abortSignal: AbortSignal | undefined }) => Promise<T>,
    options: { refusalsOnly?: boolean } = {},
  ): Promise<Answer<T>> {
    try {
      const value = await request({ abortSignal: this.ctx.signal })
      return { ok: true, status: value.$metadata?.httpStatusCode ?? 200, value }
    } catch (error) {
      this.ctx.signal?.throwIfAborted()
      const detail = error as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number } }
      const code = detail.Code ?? detail.name
      const httpStatus = detail.$metadata?.httpStatusCode
      const noAnswer = httpStatus === undefined && (options.refusalsOnly ?? true)
      if (noAnswer || httpStatus === 401 || httpStatus === 403 || code === 'NoSuchBucket') throw new S3RequestError(operation, key, error)
      return { ok: false, status: httpStatus, code, error }
    }
  }

  protected async put(
    key: string,
    body: string | Uint8Array,
    conditions: { IfMatch?: string; IfNoneMatch?: string } = {},
    options?: { refusalsOnly?: boolean },
  ) {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body
    return this.send(
      'PutObject',
      key,
      (o) =>
        this.ctx.client.send(
          new PutObjectCommand({ Bucket: this.ctx.bucket, Key: key, Body: bytes, ContentLength: bytes.byteLength, ...conditions }),
          o,
        ),
      options,
    )
  }

  protected async mustPut(key: string, body: string | Uint8Array): Promise<void> {
    const answer = await this.put(key, body)
    if (!answer.ok) throw new S3RequestError('PutObject', key, answer.error)
  }

  /** The object's ETag, unquoted, from a HEAD. */
  protected async etag(key: string): Promise<string> {
    const head = await this.send('HeadObject', key, (o) =>
      this.ctx.client.send(new HeadObjectCommand({ Bucket: this.ctx.bucket, Key: key }), o),
    )
    if (!head.ok) throw new S3RequestError('HeadObject', key, head.error)
    return unquote(head.value.ETag)
  }

  protected async get(
    key: string,
    headers: { Range?: string; IfMatch?: string },
  ): Promise<Answer<{ body: Buffer; contentRange: string | undefined }>> {
    const answer = await this.send('GetObject', key, (o) =>
      this.ctx.client.send(new GetObjectCommand({ Bucket: this.ctx.bucket, Key: key, ...headers }), o),
    )
    if (!answer.ok) return answer
    const body = Buffer.from((await answer.value.Body?.transformToByteArray()) ?? new Uint8Array(0))
    return { ok: true, status: answer.status, value: { body, contentRange: answer.value.ContentRange } }
  }

  protected async list(prefix: string, maxKeys: number, token?: string) {
    const answer = await this.send('ListObjectsV2', prefix, (o) =>
      this.ctx.client.send(
        new ListObjectsV2Command({ Bucket: this.ctx.bucket, Prefix: prefix, MaxKeys: maxKeys, ContinuationToken: token }),
        o,
      ),
    )
    if (!answer.ok) throw new S3RequestError('ListObjectsV2', prefix, answer.error)
    return answer.value
  }

  protected async deleteObjects(keys: string[]) {
    return this.send('DeleteObjects', keys[0] ?? this.#prefix, (o) =>
      this.ctx.client.send(
        new DeleteObjectsCommand({ Bucket: this.ctx.bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true } }),
        o,
      ),
    )
  }

  /** A multipart upload of `parts` to `key`, completed with `conditions`; aborted when a part or the completion fails. */
  protected async multipart(
    key: string,
    parts: Uint8Array[],
    conditions: { IfMatch?: string; IfNoneMatch?: string } = {},
  ): Promise<Answer<{ ETag?: string }>> {
    const { bucket } = this.ctx
    const created = await this.send('CreateMultipartUpload', key, (o) =>
      this.ctx.client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }), o),
    )
    if (!created.ok || !created.value.UploadId)
      throw new S3RequestError('CreateMultipartUpload', key, created.ok ? new Error('no UploadId') : created.error)
    const uploadId = created.value.UploadId
    this.#uploads.set(uploadId, key)
    const done: { PartNumber: number; ETag: string | undefined }[] = []
    for (const [index, body] of parts.entries()) {
      const part = await this.send('UploadPart', key, (o) =>
        this.ctx.client.send(
          new UploadPartCommand({
            Bucket: bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: index + 1,
            Body: body,
            ContentLength: body.byteLength,
          }),
          o,
        ),
      )
      if (!part.ok) return this.#abort(key, uploadId, part)
      done.push({ PartNumber: index + 1, ETag: part.value.ETag })
    }
    const completed = await this.send('CompleteMultipartUpload', key, (o) =>
      this.ctx.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: done },
          ...conditions,
        }),
        o,
      ),
    )
    if (completed.ok) {
      this.#uploads.delete(uploadId)
      return completed
    }
    return this.#abort(key, uploadId, completed)
  }

  /** Aborts an upload whose completion failed (the clean-up tries again if this fails) and returns `answer`. */
  async #abort<T>(key: string, uploadId: string, answer: T): Promise<T> {
    const aborted = await this.send('AbortMultipartUpload', key, (o) =>
      this.ctx.client.send(new AbortMultipartUploadCommand({ Bucket: this.ctx.bucket, Key: key, UploadId: uploadId }), o),
    )
    if (aborted.ok) this.#uploads.delete(uploadId)
    return answer
  }
}
