/**
 * A real S3 endpoint for tests, demos and benchmarks: fauxqs started in-process on a random
 * loopback port, or the external server named by `S3_ENDPOINT_URL` when that is set.
 *
 * @example
 * ```ts
 * import { startLocalS3 } from '@s3exchange/testing'
 * import { PutObjectCommand } from '@aws-sdk/client-s3'
 *
 * const s3 = await startLocalS3()
 * const bucket = await s3.createBucket()
 * await s3.client.send(new PutObjectCommand({ Bucket: bucket, Key: 'hello.txt', Body: 'hi' }))
 * await s3.stop()
 * ```
 */
import { randomBytes } from 'node:crypto'
import {
  AbortMultipartUploadCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3'

/** Where and how to reach an S3 server. */
export interface S3Connection {
  /** Base URL of the server, e.g. `http://127.0.0.1:40123`. */
  endpoint: string
  /** Region to sign requests for. */
  region: string
  /** Credentials to sign requests with. */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
  /** Address buckets as `endpoint/bucket` rather than `bucket.endpoint`. */
  forcePathStyle: boolean
  /**
   * A bucket that already exists and that tests should share instead of creating their own
   * (`S3_BUCKET` when an external server is used). Tests that share it must write under
   * unique prefixes.
   */
  sharedBucket?: string
}

/** A running (or borrowed) S3 server, with a client for it. */
export interface LocalS3 extends S3Connection {
  /** An S3 client for this server. Pass `clientConfig` to `startLocalS3` to tune it. */
  client: S3Client
  /** True when this is an external server named by `S3_ENDPOINT_URL`, not the embedded one. */
  external: boolean
  /**
   * Creates a bucket and resolves to its name: `name`, or a fresh random one. With an
   * external server and `S3_BUCKET` set, resolves to that bucket instead of creating one.
   */
  createBucket(name?: string): Promise<string>
  /**
   * Creates a new bucket of its own and resolves to its name, also on an external server (where
   * `createBucket()` gives the shared `S3_BUCKET`): for tests that list or delete a whole bucket.
   * On an external server `stop()` empties and deletes the buckets made this way. Rejects with the
   * server's error where creating buckets is not allowed.
   */
  createOwnBucket(): Promise<string>
  /** Builds another client for the same server, e.g. with different retry or checksum settings. */
  createClient(config?: S3ClientConfig): S3Client
  /**
   * Stops the embedded server, or, for an external one, empties and deletes the buckets
   * `createOwnBucket()` made; then destroys the client.
   */
  stop(): Promise<void>
}

/** Options for {@link startLocalS3}. */
export interface StartLocalS3Options {
  /**
   * Environment to look for `S3_ENDPOINT_URL` (and `S3_AWS_ACCESS_KEY_ID`,
   * `S3_AWS_SECRET_ACCESS_KEY`, `S3_REGION`, `S3_BUCKET`) in. Default: `process.env`.
   * Pass `{}` to always start the embedded server.
   */
  env?: Record<string, string | undefined>
  /** Extra configuration for the client that is returned. */
  clientConfig?: S3ClientConfig
  /**
   * Keep the embedded server's objects as plain files in this folder (fauxqs `s3StorageDir`),
   * handy for looking at what a demo wrote. Default: in memory.
   */
  storageDir?: string
}

/** The connection described by `S3_ENDPOINT_URL` and its companions, or undefined when unset. */
export function externalS3FromEnv(env: Record<string, string | undefined> = process.env): S3Connection | undefined {
  const endpoint = env.S3_ENDPOINT_URL
  if (!endpoint) return undefined
  // Credentials whole from one source (S3_AWS_*, else AWS_*), never a key of one with the secret of the other.
  const s3Pair = env.S3_AWS_ACCESS_KEY_ID !== undefined || env.S3_AWS_SECRET_ACCESS_KEY !== undefined
  const prefix = s3Pair ? 'S3_AWS_' : 'AWS_'
  return {
    endpoint,
    region: env.S3_REGION || 'us-east-1',
    credentials: {
      accessKeyId: env[`${prefix}ACCESS_KEY_ID`] ?? 'test',
      secretAccessKey: env[`${prefix}SECRET_ACCESS_KEY`] ?? 'test',
    },
    forcePathStyle: true,
    sharedBucket: env.S3_BUCKET || undefined,
  }
}

/** Builds an S3 client for a connection. */
export function clientFor(connection: S3Connection, config: S3ClientConfig = {}): S3Client {
  return new S3Client({
    endpoint: connection.endpoint,
    region: connection.region,
    credentials: connection.credentials,
    forcePathStyle: connection.forcePathStyle,
    ...config,
  })
}

/** A bucket name that is valid everywhere (lowercase, 3 to 63 characters) and unlikely to collide. */
export function randomBucketName(prefix = 's3x-test'): string {
  return `${prefix}-${randomBytes(6).toString('hex')}`
}

/** Creates `bucket` on the server behind `client`; an existing bucket of ours is fine. */
export async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }))
  } catch (error) {
    const name = (error as { name?: string }).name
    if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error
  }
}

/** Connects to an S3 server without starting one: the external one, or an embedded one started elsewhere. */
export function connectS3(connection: S3Connection, clientConfig?: S3ClientConfig): LocalS3 {
  const client = clientFor(connection, clientConfig)
  const external = connection.sharedBucket !== undefined || !isLoopback(connection.endpoint)
  const own: string[] = []
  return {
    ...connection,
    client,
    external,
    async createOwnBucket() {
      const bucket = randomBucketName()
      await client.send(new CreateBucketCommand({ Bucket: bucket }))
      own.push(bucket)
      return bucket
    },
    async createBucket(name?: string) {
      if (connection.sharedBucket && name === undefined) {
        await ensureBucket(client, connection.sharedBucket)
        return connection.sharedBucket
      }
      const bucket = name ?? randomBucketName()
      await ensureBucket(client, bucket)
      return bucket
    },
    createClient: (config?: S3ClientConfig) => clientFor(connection, { ...clientConfig, ...config }),
    async stop() {
      try {
        if (external) for (const bucket of own.splice(0)) await deleteBucket(client, bucket)
      } finally {
        client.destroy()
      }
    },
  }
}

/** Empties `bucket` (objects and open multipart uploads) and deletes it. */
export async function deleteBucket(client: S3Client, bucket: string): Promise<void> {
  for (let token: string | undefined, first = true; first || token; first = false) {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }))
    const keys = (page.Contents ?? []).flatMap((object) => (object.Key ? [{ Key: object.Key }] : []))
    if (keys.length > 0) await client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }))
    token = page.NextContinuationToken
  }
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
  for (const upload of uploads.Uploads ?? []) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: upload.Key, UploadId: upload.UploadId }))
  }
  await client.send(new DeleteBucketCommand({ Bucket: bucket }))
}

/**
 * Starts fauxqs in this process on `127.0.0.1` and a free port, or, when `S3_ENDPOINT_URL` is
 * set, connects to that server instead. Either way the result has a client and can create buckets.
 */
export async function startLocalS3(options: StartLocalS3Options = {}): Promise<LocalS3> {
  const external = externalS3FromEnv(options.env ?? process.env)
  if (external) return { ...connectS3(external, options.clientConfig), external: true }

  // fauxqs is ESM-only and needs node:sqlite (without a flag from Node 22.13): load it only when it is used.
  const { startFauxqs } = await import('fauxqs').catch((error: unknown) => {
    if ((error as { code?: string }).code !== 'ERR_UNKNOWN_BUILTIN_MODULE') throw error
    throw new Error(
      `The embedded S3 server (fauxqs) needs node:sqlite, which Node has without a flag from 22.13; this is Node ${process.versions.node}. ` +
        'Use a newer Node, or set S3_ENDPOINT_URL to another S3 server.',
      { cause: error },
    )
  })
  const server = await startFauxqs({
    port: 0,
    host: '127.0.0.1',
    logger: false,
    ...(options.storageDir ? { s3StorageDir: options.storageDir } : {}),
  })
  const connection: S3Connection = {
    endpoint: server.address,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    forcePathStyle: true,
  }
  const s3 = connectS3(connection, options.clientConfig)
  return {
    ...s3,
    external: false,
    async stop() {
      s3.client.destroy()
      await server.stop()
    },
  }
}

function isLoopback(endpoint: string): boolean {
  const host = new URL(endpoint).hostname
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || host === '::1'
}
