/**
 * Watching multipart uploads in tests: which uploads a client started, and which of them the
 * server still holds open (neither completed nor aborted). A write that fails must abort its
 * upload; this is how a test proves it did. The server is asked twice: `ListMultipartUploads`
 * (which some emulators, fauxqs included, answer with an empty list whatever is open), and, for
 * each upload the client started, an empty `UploadPart`, which only an open upload accepts.
 *
 * @example
 * ```ts
 * import { pendingMultipartUploads, trackMultipartUploads } from '@s3exchange/testing'
 *
 * const started = trackMultipartUploads(client)
 * // ... run the code under test ...
 * expect(await pendingMultipartUploads(client, bucket, started, { prefix: 'my/prefix/' })).toEqual([])
 * ```
 */
import { ListMultipartUploadsCommand, type S3Client, UploadPartCommand } from '@aws-sdk/client-s3'

/** A multipart upload. */
export interface MultipartUpload {
  key: string
  uploadId: string
}

/** Records every multipart upload `client` starts from now on; returns the live list. */
export function trackMultipartUploads(client: S3Client): MultipartUpload[] {
  const started: MultipartUpload[] = []
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args)
      if (context.commandName === 'CreateMultipartUploadCommand') {
        const uploadId = (result.output as { UploadId?: string }).UploadId
        const key = (args.input as { Key?: string }).Key
        if (uploadId && key) started.push({ key, uploadId })
      }
      return result
    },
    { step: 'initialize', name: `s3x-track-multipart-${Math.random()}` },
  )
  return started
}

/**
 * The uploads that are still open: those `ListMultipartUploads` lists under `prefix`, and those of
 * `started` that still accept a part. Send it through a client without fault injection.
 */
export async function pendingMultipartUploads(
  client: S3Client,
  bucket: string,
  started: readonly MultipartUpload[] = [],
  options: { prefix?: string } = {},
): Promise<MultipartUpload[]> {
  const pending = new Map<string, MultipartUpload>()
  const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: options.prefix }))
  for (const upload of listed.Uploads ?? []) {
    if (upload.Key && upload.UploadId) pending.set(upload.UploadId, { key: upload.Key, uploadId: upload.UploadId })
  }
  for (const upload of started) {
    try {
      await client.send(
        new UploadPartCommand({ Bucket: bucket, Key: upload.key, UploadId: upload.uploadId, PartNumber: 10_000, Body: new Uint8Array(0) }),
      )
      pending.set(upload.uploadId, upload)
    } catch (error) {
      const name = (error as { name?: string }).name
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
      if (name !== 'NoSuchUpload' && status !== 404) throw error
    }
  }
  return [...pending.values()]
}
