/**
 * Settings from the environment: S3_* over AWS_*, the process over a .env file, the defaults,
 * the client configuration built from them, and S3ExchangeStore.fromEnv against the test server.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { useTestS3 } from '@s3exchange/testing/vitest'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { ConfigurationError, clientConfigFor, settingsFromEnv } from './index.js'
import { S3ExchangeStore } from './store.js'

const s3 = useTestS3()
let dir: string
const stores: S3ExchangeStore[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 's3x-env-'))
})

afterEach(() => {
  vi.unstubAllEnvs()
})

afterAll(async () => {
  for (const store of stores) store.client.destroy()
  await rm(dir, { recursive: true, force: true })
})

async function envFile(name: string, text: string): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, text)
  return path
}

describe('settingsFromEnv', () => {
  it('S3_* names win over AWS_* ones', () => {
    const settings = settingsFromEnv({
      env: {
        S3_ENDPOINT_URL: 'http://s3-endpoint:9000',
        AWS_ENDPOINT_URL_S3: 'http://aws-s3-endpoint:9000',
        AWS_ENDPOINT_URL: 'http://aws-endpoint:9000',
        S3_REGION: 'eu-west-3',
        AWS_REGION: 'us-west-2',
        AWS_DEFAULT_REGION: 'ap-south-1',
        S3_AWS_ACCESS_KEY_ID: 's3-key',
        AWS_ACCESS_KEY_ID: 'aws-key',
        S3_AWS_SECRET_ACCESS_KEY: 's3-secret',
        AWS_SECRET_ACCESS_KEY: 'aws-secret',
        S3_AWS_SESSION_TOKEN: 's3-token',
        AWS_SESSION_TOKEN: 'aws-token',
        S3_BUCKET: 'the-bucket',
      },
      envFile: false,
    })
    expect(settings).toEqual({
      endpoint: 'http://s3-endpoint:9000',
      region: 'eu-west-3',
      bucket: 'the-bucket',
      forcePathStyle: true,
      credentials: { accessKeyId: 's3-key', secretAccessKey: 's3-secret', sessionToken: 's3-token' },
    })
  })

  it('falls back to the AWS_* names, in order', () => {
    expect(
      settingsFromEnv({
        env: {
          AWS_ENDPOINT_URL_S3: 'http://aws-s3-endpoint:9000',
          AWS_ENDPOINT_URL: 'http://aws-endpoint:9000',
          AWS_REGION: 'us-west-2',
          AWS_DEFAULT_REGION: 'ap-south-1',
          AWS_ACCESS_KEY_ID: 'aws-key',
          AWS_SECRET_ACCESS_KEY: 'aws-secret',
        },
        envFile: false,
      }),
    ).toEqual({
      endpoint: 'http://aws-s3-endpoint:9000',
      region: 'us-west-2',
      bucket: undefined,
      forcePathStyle: true,
      credentials: { accessKeyId: 'aws-key', secretAccessKey: 'aws-secret' },
    })
    const last = settingsFromEnv({
      env: { AWS_ENDPOINT_URL: 'http://aws-endpoint:9000', AWS_DEFAULT_REGION: 'ap-south-1' },
      envFile: false,
    })
    expect(last.endpoint).toBe('http://aws-endpoint:9000')
    expect(last.region).toBe('ap-south-1')
  })

  it('an empty variable counts as unset', () => {
    const settings = settingsFromEnv({
      env: { S3_REGION: '', AWS_REGION: 'us-west-2', S3_ENDPOINT_URL: '', S3_BUCKET: '' },
      envFile: false,
    })
    expect(settings.region).toBe('us-west-2')
    expect(settings.endpoint).toBeUndefined()
    expect(settings.bucket).toBeUndefined()
  })

  it('defaults: us-east-1, AWS itself, virtual-hosted addressing, no credentials', () => {
    expect(settingsFromEnv({ env: {}, envFile: false })).toEqual({
      endpoint: undefined,
      region: 'us-east-1',
      bucket: undefined,
      forcePathStyle: false,
      credentials: undefined,
    })
  })

  it('credentials are taken whole from one source: an S3_* pair never gets AWS_SESSION_TOKEN (issue 12, case 10)', () => {
    // Inside AWS: the role's variables are set; a static S3_* pair for MinIO or R2 is given on top.
    const insideAws = { AWS_ACCESS_KEY_ID: 'role-key', AWS_SECRET_ACCESS_KEY: 'role-secret', AWS_SESSION_TOKEN: 'role-token' }
    expect(
      settingsFromEnv({ env: { ...insideAws, S3_AWS_ACCESS_KEY_ID: 'k', S3_AWS_SECRET_ACCESS_KEY: 's' }, envFile: false }).credentials,
    ).toEqual({
      accessKeyId: 'k',
      secretAccessKey: 's',
    })
    expect(
      settingsFromEnv({
        env: { ...insideAws, S3_AWS_ACCESS_KEY_ID: 'k', S3_AWS_SECRET_ACCESS_KEY: 's', S3_AWS_SESSION_TOKEN: 't' },
        envFile: false,
      }).credentials,
    ).toEqual({ accessKeyId: 'k', secretAccessKey: 's', sessionToken: 't' })
    // The AWS_* triple, whole, when no S3_* variable is set.
    expect(settingsFromEnv({ env: insideAws, envFile: false }).credentials).toEqual({
      accessKeyId: 'role-key',
      secretAccessKey: 'role-secret',
      sessionToken: 'role-token',
    })
  })

  it.each([
    [{ S3_AWS_ACCESS_KEY_ID: 'k' }, 'S3_AWS_SECRET_ACCESS_KEY'],
    [{ S3_AWS_ACCESS_KEY_ID: 'k', AWS_SECRET_ACCESS_KEY: 's', AWS_ACCESS_KEY_ID: 'a' }, 'S3_AWS_SECRET_ACCESS_KEY'],
    [{ S3_AWS_SECRET_ACCESS_KEY: 's', AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' }, 'S3_AWS_ACCESS_KEY_ID'],
    [{ S3_AWS_SESSION_TOKEN: 't' }, 'S3_AWS_ACCESS_KEY_ID and S3_AWS_SECRET_ACCESS_KEY'],
    [{ AWS_SECRET_ACCESS_KEY: 's' }, 'AWS_ACCESS_KEY_ID'],
    [{ AWS_ACCESS_KEY_ID: 'a', AWS_SESSION_TOKEN: 't' }, 'AWS_SECRET_ACCESS_KEY'],
  ])('half a pair, %o, is a ConfigurationError naming %s', (env, missing) => {
    let error: unknown
    try {
      settingsFromEnv({ env, envFile: false })
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigurationError)
    expect((error as Error).message).toContain(`${missing} ${missing.includes(' and ') ? 'are' : 'is'} not`)
    for (const name of Object.keys(env).filter((name) => name.startsWith(missing.startsWith('S3_') ? 'S3_' : 'AWS_'))) {
      expect((error as Error).message).toContain(name)
    }
    expect(() => S3ExchangeStore.fromEnv({ env: { ...env, S3_BUCKET: 'b' }, envFile: false })).toThrow(ConfigurationError)
  })

  it('a lone AWS_SESSION_TOKEN is no source: the default chain is used', () => {
    expect(settingsFromEnv({ env: { AWS_SESSION_TOKEN: 't' }, envFile: false }).credentials).toBeUndefined()
  })

  it('path-style addressing: on with an endpoint, S3_FORCE_PATH_STYLE overrides', () => {
    const endpoint = 'http://localhost:9000'
    expect(settingsFromEnv({ env: { S3_ENDPOINT_URL: endpoint }, envFile: false }).forcePathStyle).toBe(true)
    expect(settingsFromEnv({ env: { S3_ENDPOINT_URL: endpoint, S3_FORCE_PATH_STYLE: 'false' }, envFile: false }).forcePathStyle).toBe(false)
    expect(settingsFromEnv({ env: { S3_ENDPOINT_URL: endpoint, S3_FORCE_PATH_STYLE: '0' }, envFile: false }).forcePathStyle).toBe(false)
    expect(settingsFromEnv({ env: { S3_FORCE_PATH_STYLE: 'TRUE' }, envFile: false }).forcePathStyle).toBe(true)
    expect(settingsFromEnv({ env: { S3_FORCE_PATH_STYLE: '1' }, envFile: false }).forcePathStyle).toBe(true)
    expect(settingsFromEnv({ env: { S3_FORCE_PATH_STYLE: 'yes' }, envFile: false }).forcePathStyle).toBe(true)
  })

  it('reads a .env file; the variables given win over it, variable by variable', async () => {
    const path = await envFile(
      'a.env',
      [
        '# settings for the tests',
        'S3_ENDPOINT_URL=http://from-file:9000',
        'S3_REGION="eu-north-1"',
        'S3_BUCKET=file-bucket',
        'S3_AWS_ACCESS_KEY_ID=file-key',
        "S3_AWS_SECRET_ACCESS_KEY='file-secret'",
        '',
      ].join('\n'),
    )
    expect(settingsFromEnv({ env: {}, envFile: path })).toEqual({
      endpoint: 'http://from-file:9000',
      region: 'eu-north-1',
      bucket: 'file-bucket',
      forcePathStyle: true,
      credentials: { accessKeyId: 'file-key', secretAccessKey: 'file-secret' },
    })
    const mixed = settingsFromEnv({ env: { S3_BUCKET: 'env-bucket', S3_AWS_ACCESS_KEY_ID: 'env-key' }, envFile: path })
    expect(mixed.bucket).toBe('env-bucket')
    expect(mixed.region).toBe('eu-north-1')
    expect(mixed.credentials).toEqual({ accessKeyId: 'env-key', secretAccessKey: 'file-secret' })
  })

  it('S3_* in the .env file win over AWS_* in the process', async () => {
    const path = await envFile('b.env', 'S3_REGION=eu-north-1\n')
    expect(settingsFromEnv({ env: { AWS_REGION: 'us-west-2' }, envFile: path }).region).toBe('eu-north-1')
  })

  it('by default reads process.env, which wins over the .env file', async () => {
    const path = await envFile('c.env', 'S3_BUCKET=file-bucket\nS3_REGION=eu-north-1\n')
    vi.stubEnv('S3_BUCKET', 'process-bucket')
    vi.stubEnv('S3_REGION', 'sa-east-1')
    const settings = settingsFromEnv({ envFile: path })
    expect(settings.bucket).toBe('process-bucket')
    expect(settings.region).toBe('sa-east-1')
  })

  it('a .env file that does not exist is ignored; envFile: false reads none', async () => {
    expect(settingsFromEnv({ env: { S3_BUCKET: 'b' }, envFile: join(dir, 'no-such.env') }).bucket).toBe('b')
    const path = await envFile('d.env', 'S3_BUCKET=file-bucket\n')
    expect(settingsFromEnv({ env: {}, envFile: false }).bucket).toBeUndefined()
    expect(settingsFromEnv({ env: {}, envFile: path }).bucket).toBe('file-bucket')
  })
})

describe('clientConfigFor', () => {
  it('passes endpoint and credentials only when set', () => {
    const bare = clientConfigFor(settingsFromEnv({ env: {}, envFile: false }))
    expect(bare).toEqual({ region: 'us-east-1', forcePathStyle: false })
    expect('credentials' in bare).toBe(false)
    expect('endpoint' in bare).toBe(false)

    const full = clientConfigFor(
      settingsFromEnv({
        env: { S3_ENDPOINT_URL: 'http://h:1', S3_REGION: 'r', S3_AWS_ACCESS_KEY_ID: 'k', S3_AWS_SECRET_ACCESS_KEY: 's' },
        envFile: false,
      }),
    )
    expect(full).toEqual({
      region: 'r',
      forcePathStyle: true,
      endpoint: 'http://h:1',
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
    })
  })
})

describe('S3ExchangeStore.fromEnv', () => {
  it('without a bucket is ConfigurationError', () => {
    expect(() => S3ExchangeStore.fromEnv({ env: {}, envFile: false })).toThrow(ConfigurationError)
    expect(() => S3ExchangeStore.fromEnv({ env: { S3_BUCKET: '' }, envFile: false })).toThrow(ConfigurationError)
  })

  it('builds a client from the settings; options win over the environment', async () => {
    const store = S3ExchangeStore.fromEnv({
      env: {
        S3_ENDPOINT_URL: 'http://127.0.0.1:1',
        S3_REGION: 'eu-west-3',
        S3_BUCKET: 'env-bucket',
        S3_AWS_ACCESS_KEY_ID: 'k',
        S3_AWS_SECRET_ACCESS_KEY: 's',
      },
      envFile: false,
      bucket: 'option-bucket',
      basePrefix: 'prod',
      defaultVars: { service: 'asr' },
      clientConfig: { maxAttempts: 7 },
    })
    stores.push(store)
    expect(store.bucket).toBe('option-bucket')
    expect(store.basePrefix).toBe('prod')
    expect(store.resolveKey('{service}/x')).toBe('prod/asr/x')
    expect(await store.client.config.region()).toBe('eu-west-3')
    expect(store.client.config.forcePathStyle).toBe(true)
    expect(await store.client.config.maxAttempts()).toBe(7)
    const endpoint = await store.client.config.endpoint?.()
    expect(endpoint?.hostname).toBe('127.0.0.1')
    expect(endpoint?.port).toBe(1)
    const credentials = await store.client.config.credentials()
    expect(credentials.accessKeyId).toBe('k')
    expect(credentials.secretAccessKey).toBe('s')
  })

  it('takes the bucket from S3_BUCKET', () => {
    const store = S3ExchangeStore.fromEnv({ env: { S3_BUCKET: 'env-bucket' }, envFile: false })
    stores.push(store)
    expect(store.bucket).toBe('env-bucket')
    expect(store.client.config.forcePathStyle).toBe(false)
  })

  it('pointed at the test server with S3_ENDPOINT_URL, reads an object', async () => {
    const key = s3.key('env/hello.txt')
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'hello from env' }))
    const store = S3ExchangeStore.fromEnv({
      env: {
        S3_ENDPOINT_URL: s3.s3.endpoint,
        S3_REGION: s3.s3.region,
        S3_AWS_ACCESS_KEY_ID: s3.s3.credentials.accessKeyId,
        S3_AWS_SECRET_ACCESS_KEY: s3.s3.credentials.secretAccessKey,
        S3_BUCKET: s3.bucket,
      },
      envFile: false,
    })
    stores.push(store)
    expect(store.client).not.toBe(s3.client)
    expect(await (await store.getObject(key)).text()).toBe('hello from env')
  })

  it('reads its settings from a .env file too', async () => {
    const key = s3.key('env/from-file.txt')
    await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: 'via .env' }))
    const path = await envFile(
      'server.env',
      [
        `S3_ENDPOINT_URL=${s3.s3.endpoint}`,
        `S3_REGION=${s3.s3.region}`,
        `S3_AWS_ACCESS_KEY_ID=${s3.s3.credentials.accessKeyId}`,
        `S3_AWS_SECRET_ACCESS_KEY=${s3.s3.credentials.secretAccessKey}`,
        `S3_BUCKET=${s3.bucket}`,
        '',
      ].join('\n'),
    )
    const store = S3ExchangeStore.fromEnv({ env: {}, envFile: path })
    stores.push(store)
    expect(store.bucket).toBe(s3.bucket)
    expect(await store.exists(key)).toBe(true)
    expect(await (await store.getObject(key)).text()).toBe('via .env')
  })
})
