/**
 * Write options as pure logic, without a server: each check (a `ConfigurationError` naming the
 * option), how a call's options merge over a context's, the request fields they become, and an
 * SSE-C key that never prints. What servers receive and keep is tested in
 * write-options-requests.test.ts.
 */
import { createHash, randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import type { S3Client } from '@aws-sdk/client-s3'
import { describe, expect, it } from 'vitest'
import { ConfigurationError } from '../format/errors.js'
import type { S3Context } from './context.js'
import {
  checkWriteOptions,
  normalizeSseCustomerKey,
  objectWriteParams,
  sseCustomerParams,
  taggingHeader,
  type WriteOptions,
  withWriteOptions,
} from './write-options.js'

const KEY = randomBytes(32)
const KEY_MD5 = createHash('md5').update(KEY).digest('base64')
const ctx: S3Context = { client: {} as S3Client, bucket: 'b' }

function configurationError(run: () => unknown): ConfigurationError {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError)
    return error as ConfigurationError
  }
  throw new Error('expected a ConfigurationError')
}

describe('checkWriteOptions', () => {
  it.each<[string, WriteOptions, string, RegExp]>([
    ['an unknown encryption', { serverSideEncryption: 'aes' as never }, 'serverSideEncryption', /'AES256', 'aws:kms', 'aws:kms:dsse'/],
    ['sseKmsKeyId without aws:kms', { sseKmsKeyId: 'k' }, 'sseKmsKeyId', /needs serverSideEncryption: 'aws:kms'/],
    ['sseKmsKeyId with SSE-S3', { serverSideEncryption: 'AES256', sseKmsKeyId: 'k' }, 'sseKmsKeyId', /aws:kms/],
    ['bucketKeyEnabled without aws:kms', { bucketKeyEnabled: true }, 'bucketKeyEnabled', /needs serverSideEncryption: 'aws:kms'/],
    ['bucketKeyEnabled with DSSE', { serverSideEncryption: 'aws:kms:dsse', bucketKeyEnabled: true }, 'bucketKeyEnabled', /SSE-KMS/],
    [
      'bucketKeyEnabled not a boolean',
      { serverSideEncryption: 'aws:kms', bucketKeyEnabled: 'yes' as never },
      'bucketKeyEnabled',
      /boolean/,
    ],
    ['SSE-C with SSE-KMS', { serverSideEncryption: 'aws:kms', sseCustomerKey: { key: KEY } }, 'sseCustomerKey', /exclusive/],
    ['an SSE-C key of 16 bytes', { sseCustomerKey: { key: randomBytes(16) } }, 'sseCustomerKey', /32 bytes.*not 16/],
    [
      'an SSE-C key as a raw string',
      { sseCustomerKey: { key: 'a passphrase of thirty-two chars' } },
      'sseCustomerKey',
      /base64 of 32 bytes/,
    ],
    ['an SSE-C key as base64 of 31 bytes', { sseCustomerKey: { key: randomBytes(31).toString('base64') } }, 'sseCustomerKey', /base64/],
    [
      'an SSE-C key MD5 that does not match',
      { sseCustomerKey: { key: KEY, keyMd5: 'AAAAAAAAAAAAAAAAAAAAAA==' } },
      'sseCustomerKey',
      /keyMd5/,
    ],
    ['an SSE-C algorithm other than AES256', { sseCustomerKey: { key: KEY, algorithm: 'AES128' as never } }, 'sseCustomerKey', /AES256/],
    ['a storage class with a space', { storageClass: 'STANDARD IA' }, 'storageClass', /storage class/],
    ['an empty storage class', { storageClass: '' }, 'storageClass', /storage class/],
    ['metadata with a non-ASCII name', { metadata: { été: 'x' } }, 'metadata', /"été" is not an HTTP token/],
    ['metadata with a space in its name', { metadata: { 'a b': 'x' } }, 'metadata', /HTTP token/],
    ['metadata with the x-amz-meta- prefix', { metadata: { 'x-amz-meta-team': 'x' } }, 'metadata', /without the x-amz-meta- prefix/],
    ['metadata names that differ in case only', { metadata: { Team: 'a', team: 'b' } }, 'metadata', /differ only in case/],
    ['a non-ASCII metadata value', { metadata: { note: 'naïve' } }, 'metadata', /printable ASCII/],
    ['a metadata value with a newline', { metadata: { note: 'a\nb' } }, 'metadata', /printable ASCII/],
    ['a metadata value that is a number', { metadata: { n: 1 as never } }, 'metadata', /must be a string/],
    ['metadata over 2 KiB', { metadata: { big: 'x'.repeat(2046) } }, 'metadata', /2049 bytes.*2048/],
    ['metadata that is an array', { metadata: [] as never }, 'metadata', /object/],
    ['11 tags', { tagging: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`t${i}`, 'v'])) }, 'tagging', /11 tags; S3 allows 10/],
    ['11 tags as a string', { tagging: Array.from({ length: 11 }, (_, i) => `t${i}=v`).join('&') }, 'tagging', /11 tags/],
    ['a tag name of 129 characters', { tagging: { ['n'.repeat(129)]: 'v' } }, 'tagging', /1 to 128 characters/],
    ['an empty tag name', { tagging: { '': 'v' } }, 'tagging', /1 to 128 characters/],
    ['a tag value of 257 characters', { tagging: { n: 'v'.repeat(257) } }, 'tagging', /longer than 256/],
    ['a tag with a forbidden character', { tagging: { n: 'a&b' } }, 'tagging', /letters, digits, spaces/],
    ['a tag name given twice', { tagging: 'a=1&a=2' }, 'tagging', /"a" is given twice/],
    ['a reserved aws: tag', { tagging: { 'aws:x': '1' } }, 'tagging', /reserved/],
    ['tagging as a number', { tagging: 3 as never }, 'tagging', /object of tags or a URL-encoded string/],
    ['tagging as a string with a newline', { tagging: 'a=1\nb=2' }, 'tagging', /URL-encoded/],
    ['an empty Cache-Control', { cacheControl: ' ' }, 'cacheControl', /non-empty/],
    ['a Cache-Control with a newline', { cacheControl: 'max-age=1\r\nx-evil: 1' }, 'cacheControl', /printable ASCII/],
    ['a non-ASCII Content-Encoding', { contentEncoding: 'gzïp' }, 'contentEncoding', /printable ASCII/],
    ['an unknown canned ACL', { acl: 'everyone' as never }, 'acl', /canned ACL/],
  ])('%s is a ConfigurationError naming the option', (_, options, option, message) => {
    const error = configurationError(() => checkWriteOptions(options))
    expect(error.option).toBe(option)
    expect(error.message).toMatch(message)
  })

  it('accepts every option together (with SSE-KMS), and SSE-C with the rest', () => {
    const rest: WriteOptions = {
      storageClass: 'GLACIER_IR',
      metadata: { 'sample-rate': '16000', Team: 'asr' },
      tagging: { team: 'asr', 'two words': 'a/b:c@d' },
      cacheControl: 'max-age=3600',
      contentEncoding: 'identity',
      acl: 'bucket-owner-full-control',
    }
    expect(() =>
      checkWriteOptions({ ...rest, serverSideEncryption: 'aws:kms', sseKmsKeyId: 'alias/x', bucketKeyEnabled: false }),
    ).not.toThrow()
    expect(() => checkWriteOptions({ ...rest, serverSideEncryption: 'aws:kms:dsse', sseKmsKeyId: 'k' })).not.toThrow()
    expect(() => checkWriteOptions({ ...rest, sseCustomerKey: { key: KEY, keyMd5: KEY_MD5 } })).not.toThrow()
    expect(() => checkWriteOptions({ metadata: { m: 'x'.repeat(2047) } })).not.toThrow() // 2048 bytes exactly
    expect(() => checkWriteOptions({ sseCustomerKey: null })).not.toThrow()
  })

  it('never puts the SSE-C key in a message', () => {
    const key = randomBytes(31).toString('base64')
    const error = configurationError(() => checkWriteOptions({ sseCustomerKey: { key } }))
    expect(error.message).not.toContain(key)
  })
})

describe('taggingHeader', () => {
  it('URL-encodes names and values of an object; passes a string on as given', () => {
    expect(taggingHeader({ team: 'asr', 'two words': 'a/b:c@d', é: '+' })).toBe('team=asr&two%20words=a%2Fb%3Ac%40d&%C3%A9=%2B')
    expect(taggingHeader('a=1&b=two%20words')).toBe('a=1&b=two%20words')
    expect(taggingHeader({})).toBe('')
  })
})

describe('withWriteOptions', () => {
  const base = withWriteOptions(ctx, {
    storageClass: 'STANDARD_IA',
    serverSideEncryption: 'aws:kms',
    sseKmsKeyId: 'alias/ds',
    bucketKeyEnabled: true,
    metadata: { team: 'asr' },
    tagging: { a: '1' },
  })

  it('returns the same context when no write option is given (other fields are ignored)', () => {
    expect(withWriteOptions(ctx, undefined)).toBe(ctx)
    expect(withWriteOptions(ctx, { partSize: 5, id: 'x' } as WriteOptions)).toBe(ctx)
    expect(withWriteOptions(ctx, { storageClass: undefined })).toBe(ctx)
  })

  it("merges a call's options over the context's field by field; metadata and tags replace as a whole", () => {
    const call = withWriteOptions(base, { storageClass: 'GLACIER_IR', metadata: { run: '7' } })
    expect(call.writeOptions).toStrictEqual({
      storageClass: 'GLACIER_IR',
      serverSideEncryption: 'aws:kms',
      sseKmsKeyId: 'alias/ds',
      bucketKeyEnabled: true,
      metadata: { run: '7' },
      tagging: { a: '1' },
    })
    expect(base.writeOptions?.storageClass).toBe('STANDARD_IA') // the context is not changed
    expect(withWriteOptions(base, { sseKmsKeyId: 'alias/other' }).writeOptions?.sseKmsKeyId).toBe('alias/other')
  })

  it("a call that chooses an encryption replaces the context's (SSE-C in a store that uses SSE-KMS, and back)", () => {
    const sealed = withWriteOptions(base, { sseCustomerKey: { key: KEY } })
    expect(sealed.writeOptions).toStrictEqual({ storageClass: 'STANDARD_IA', metadata: { team: 'asr' }, tagging: { a: '1' } })
    expect(sealed.sseCustomerKey?.keyMd5).toBe(KEY_MD5)
    const s3Managed = withWriteOptions(sealed, { serverSideEncryption: 'AES256' })
    expect(s3Managed.writeOptions?.serverSideEncryption).toBe('AES256')
    expect(s3Managed.sseCustomerKey).toBeUndefined()
    expect(withWriteOptions(sealed, { sseCustomerKey: null }).sseCustomerKey).toBeUndefined()
    expect(withWriteOptions(sealed, { storageClass: 'STANDARD' }).sseCustomerKey).toBe(sealed.sseCustomerKey)
  })

  it('is idempotent: merging the same options again gives the same context (writers merge at each level)', () => {
    const options: WriteOptions = { sseCustomerKey: { key: KEY }, metadata: { m: '1' } }
    const once = withWriteOptions(base, options)
    const twice = withWriteOptions(once, options)
    expect(twice.writeOptions).toStrictEqual(once.writeOptions)
    expect(twice.sseCustomerKey?.keyMd5).toBe(once.sseCustomerKey?.keyMd5)
  })

  it('checks the merged options: sseKmsKeyId over a context without SSE-KMS is a ConfigurationError', () => {
    expect(configurationError(() => withWriteOptions(ctx, { sseKmsKeyId: 'k' })).option).toBe('sseKmsKeyId')
    expect(configurationError(() => withWriteOptions(ctx, { metadata: { é: '1' } })).option).toBe('metadata')
  })
})

describe('the request fields', () => {
  it('objectWriteParams: every option under its SDK name, tags encoded, the SSE-C key as bytes with its MD5', () => {
    const params = objectWriteParams(
      withWriteOptions(ctx, {
        storageClass: 'STANDARD_IA',
        sseCustomerKey: { key: KEY.toString('base64') },
        metadata: { team: 'asr' },
        tagging: { a: 'b c' },
        cacheControl: 'no-cache',
        contentEncoding: 'identity',
        acl: 'private',
      }),
    )
    expect(params).toStrictEqual({
      StorageClass: 'STANDARD_IA',
      Metadata: { team: 'asr' },
      Tagging: 'a=b%20c',
      CacheControl: 'no-cache',
      ContentEncoding: 'identity',
      ACL: 'private',
      SSECustomerAlgorithm: 'AES256',
      SSECustomerKey: new Uint8Array(KEY) as unknown as string,
      SSECustomerKeyMD5: KEY_MD5,
    })
    expect(
      objectWriteParams(withWriteOptions(ctx, { serverSideEncryption: 'aws:kms', sseKmsKeyId: 'k', bucketKeyEnabled: true })),
    ).toStrictEqual({
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'k',
      BucketKeyEnabled: true,
    })
    expect(objectWriteParams(ctx)).toStrictEqual({})
    expect(objectWriteParams(withWriteOptions(ctx, { metadata: {}, tagging: '' }))).toStrictEqual({})
  })

  it('sseCustomerParams: the SSE-C fields alone (for UploadPart, the completion, GET and HEAD), none without a key', () => {
    expect(sseCustomerParams({ sseCustomerKey: { key: KEY } })).toStrictEqual({
      SSECustomerAlgorithm: 'AES256',
      SSECustomerKey: new Uint8Array(KEY) as unknown as string,
      SSECustomerKeyMD5: KEY_MD5,
    })
    expect(sseCustomerParams({})).toStrictEqual({})
  })

  it('a context that holds SSE-KMS and an SSE-C key together is refused before a request is built', () => {
    const both: S3Context = { ...ctx, writeOptions: { serverSideEncryption: 'aws:kms' }, sseCustomerKey: { key: KEY } }
    expect(configurationError(() => objectWriteParams(both)).option).toBe('sseCustomerKey')
  })
})

describe('an SSE-C key never prints', () => {
  it('util.inspect, JSON.stringify and String give its algorithm and MD5, never the key', () => {
    const normalized = normalizeSseCustomerKey({ key: KEY })
    const base64 = KEY.toString('base64')
    const hex = KEY.toString('hex')
    const context = withWriteOptions(ctx, { sseCustomerKey: { key: KEY } })
    for (const shown of [
      inspect(normalized),
      inspect(context, { depth: 10 }),
      JSON.stringify(normalized),
      JSON.stringify({ ...context, client: undefined }),
      String(normalized),
    ]) {
      expect(shown).not.toContain(base64)
      expect(shown).not.toContain(hex)
      expect(shown).toContain(KEY_MD5)
    }
    expect(normalized.key).toStrictEqual(new Uint8Array(KEY))
    expect(normalizeSseCustomerKey(normalized)).toBe(normalized)
  })

  it('the key is copied: changing the caller’s buffer afterwards changes nothing', () => {
    const mine = Buffer.from(KEY)
    const normalized = normalizeSseCustomerKey({ key: mine })
    mine.fill(0)
    expect(Buffer.from(normalized.key).equals(KEY)).toBe(true)
  })
})
