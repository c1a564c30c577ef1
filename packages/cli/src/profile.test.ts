/**
 * The AWS profile and the layering of settings, read from temporary AWS config and credentials
 * files (no S3 server: what reaches a server is tested by spawning s3x in cli.test.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { settingsFromEnv } from 's3exchange'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { environmentWith } from './config.js'
import { loadAwsProfile, ProfileNotFoundError } from './profile.js'

let dir: string
let files: Record<string, string>

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 's3x-profile-'))
  files = { AWS_CONFIG_FILE: join(dir, 'config'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials') }
  await writeFile(
    files.AWS_CONFIG_FILE as string,
    `[default]
region = eu-west-1

[profile local]
region = eu-central-1
endpoint_url = http://127.0.0.1:9000
s3 =
  addressing_style = path

[profile svc]
services = lab
endpoint_url = http://ignored.invalid

[services lab]
s3 =
  endpoint_url = http://127.0.0.1:7480

[profile virtual]
endpoint_url = http://127.0.0.1:9001
ignore_configured_endpoint_urls = false
s3 =
  addressing_style = virtual

[profile broken]
services = missing
`,
  )
  await writeFile(
    files.AWS_SHARED_CREDENTIALS_FILE as string,
    `[keys-only]\naws_access_key_id = AKIDKEYSONLY\naws_secret_access_key = secret\n`,
  )
})

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('loadAwsProfile', () => {
  it('reads region, endpoint and addressing style of the profile --profile names', async () => {
    expect(await loadAwsProfile('local', files)).toStrictEqual({
      name: 'local',
      named: true,
      source: '--profile',
      region: 'eu-central-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
    })
    expect(await loadAwsProfile('virtual', files)).toMatchObject({ endpoint: 'http://127.0.0.1:9001', forcePathStyle: false })
  })

  it('takes the services section s3 endpoint over the profile endpoint_url', async () => {
    expect(await loadAwsProfile(undefined, { ...files, AWS_PROFILE: 'svc' })).toMatchObject({
      name: 'svc',
      source: 'AWS_PROFILE',
      endpoint: 'http://127.0.0.1:7480',
      region: undefined,
    })
  })

  it('--profile wins over AWS_PROFILE; default is used when neither names one, and may be missing', async () => {
    expect((await loadAwsProfile('local', { ...files, AWS_PROFILE: 'svc' }))?.name).toBe('local')
    expect(await loadAwsProfile(undefined, files)).toMatchObject({ name: 'default', named: false, source: 'default', region: 'eu-west-1' })
    expect(
      await loadAwsProfile(undefined, { AWS_CONFIG_FILE: join(dir, 'none'), AWS_SHARED_CREDENTIALS_FILE: join(dir, 'none') }),
    ).toBeUndefined()
  })

  it('a profile only in the credentials file exists', async () => {
    expect(await loadAwsProfile('keys-only', files)).toMatchObject({ name: 'keys-only', region: undefined, endpoint: undefined })
  })

  it('AWS_IGNORE_CONFIGURED_ENDPOINT_URLS drops the endpoint', async () => {
    expect((await loadAwsProfile('local', { ...files, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: 'true' }))?.endpoint).toBeUndefined()
  })

  it('an unknown profile is a typed error naming it and where it came from', async () => {
    await expect(loadAwsProfile('nope', files)).rejects.toThrow(ProfileNotFoundError)
    await expect(loadAwsProfile(undefined, { ...files, AWS_PROFILE: 'nope' })).rejects.toMatchObject({
      name: 'ProfileNotFoundError',
      profile: 'nope',
      source: 'AWS_PROFILE',
      message: expect.stringContaining("AWS profile 'nope' (from AWS_PROFILE) is in neither the AWS config file nor the credentials file"),
    })
    await expect(loadAwsProfile('broken', files)).rejects.toThrow(
      "AWS profile 'broken' names services 'missing', but there is no [services missing] section",
    )
  })
})

describe('environmentWith: flags, then the environment, then .env, then the profile', () => {
  const settings = (flags: Parameters<typeof environmentWith>[0], env: Record<string, string>, profile?: string) =>
    loadAwsProfile(profile, { ...files, ...env }).then((loaded) =>
      settingsFromEnv({
        env: environmentWith(flags, { ...files, ...env }, { profile: loaded, envFile: join(dir, 'dotenv') }),
        envFile: false,
      }),
    )

  beforeAll(async () => {
    await writeFile(join(dir, 'dotenv'), 'S3_BUCKET=from-dotenv\nAWS_REGION=\n')
  })

  it('the profile fills what nothing else gives: region, endpoint, path style', async () => {
    expect(await settings({}, {}, 'local')).toMatchObject({
      region: 'eu-central-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      bucket: 'from-dotenv',
    })
    expect(await settings({}, {}, 'virtual')).toMatchObject({ endpoint: 'http://127.0.0.1:9001', forcePathStyle: false })
    expect(await settings({}, {})).toMatchObject({ region: 'eu-west-1', endpoint: undefined })
  })

  it('variables win over the profile, S3_* over AWS_*, flags over all', async () => {
    expect(await settings({}, { AWS_DEFAULT_REGION: 'us-west-2' }, 'local')).toMatchObject({ region: 'us-west-2' })
    expect(await settings({}, { AWS_REGION: 'ap-south-1', S3_REGION: 'sa-east-1' }, 'local')).toMatchObject({ region: 'sa-east-1' })
    expect(await settings({}, { AWS_ENDPOINT_URL: 'http://127.0.0.1:1' }, 'local')).toMatchObject({ endpoint: 'http://127.0.0.1:1' })
    expect(await settings({}, { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:2' }, 'svc')).toMatchObject({ endpoint: 'http://127.0.0.1:2' })
    expect(await settings({}, { S3_FORCE_PATH_STYLE: 'false' }, 'local')).toMatchObject({ forcePathStyle: false })
    expect(
      await settings(
        { endpoint: 'http://127.0.0.1:3', region: 'flag-1', bucket: 'flagged' },
        { S3_ENDPOINT_URL: 'http://x', S3_BUCKET: 'env' },
        'local',
      ),
    ).toMatchObject({ endpoint: 'http://127.0.0.1:3', region: 'flag-1', bucket: 'flagged' })
  })

  it('--profile sets AWS_ACCESS_KEY_ID aside (as aws --profile does), not S3_AWS_ACCESS_KEY_ID; AWS_PROFILE does not', async () => {
    const keys = { AWS_ACCESS_KEY_ID: 'AKIDENV', AWS_SECRET_ACCESS_KEY: 'env-secret' }
    expect((await settings({}, keys, 'local')).credentials).toBeUndefined()
    expect((await settings({}, { ...keys, AWS_PROFILE: 'local' })).credentials).toMatchObject({ accessKeyId: 'AKIDENV' })
    expect(
      (await settings({}, { ...keys, S3_AWS_ACCESS_KEY_ID: 'AKIDS3', S3_AWS_SECRET_ACCESS_KEY: 's3-secret' }, 'local')).credentials,
    ).toStrictEqual({
      accessKeyId: 'AKIDS3',
      secretAccessKey: 's3-secret',
    })
  })
})
