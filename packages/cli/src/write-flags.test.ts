/**
 * The write flags of `s3x` and `--sse-c-key`, in process: each flag becomes its `WriteOptions`
 * field; a bad value is a `UsageError` naming the flag (never showing a key). What the server
 * receives from a real `s3x put`, `pack` and `cat` is tested in cli.test.ts.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseFlags, UsageError } from './args.js'
import { sseCustomerKeyFromFlags, WRITE_FLAGS, writeOptionsFromFlags } from './write-flags.js'

const dir = mkdtempSync(join(tmpdir(), 's3x-write-flags-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const options = (argv: string[]) => writeOptionsFromFlags(parseFlags(argv, WRITE_FLAGS, 'put').values, 'put')

function usageError(run: () => unknown): UsageError {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    return error as UsageError
  }
  throw new Error('expected a UsageError')
}

describe('writeOptionsFromFlags', () => {
  it('maps each flag to its option; --metadata repeats', () => {
    expect(
      options([
        '--storage-class',
        'STANDARD_IA',
        '--sse',
        'aws:kms',
        '--sse-kms-key-id',
        'alias/datasets',
        '--bucket-key-enabled',
        '--metadata',
        'team=asr',
        '--metadata',
        'note=a=b',
        '--tagging',
        'team=asr&stage=raw%20data',
        '--cache-control',
        'max-age=60',
        '--content-encoding',
        'identity',
        '--acl',
        'bucket-owner-full-control',
      ]),
    ).toStrictEqual({
      storageClass: 'STANDARD_IA',
      serverSideEncryption: 'aws:kms',
      sseKmsKeyId: 'alias/datasets',
      bucketKeyEnabled: true,
      metadata: { team: 'asr', note: 'a=b' },
      tagging: 'team=asr&stage=raw%20data',
      cacheControl: 'max-age=60',
      contentEncoding: 'identity',
      acl: 'bucket-owner-full-control',
    })
    expect(options([])).toStrictEqual({})
  })

  it.each([
    [['--sse-kms-key-id', 'k'], /^--sse-kms-key-id: .*needs serverSideEncryption/],
    [['--bucket-key-enabled'], /^--bucket-key-enabled: /],
    [['--sse', 'AES128'], /^--sse: serverSideEncryption must be/],
    [['--metadata', 'team'], /^--metadata needs NAME=VALUE, not 'team'$/],
    [['--metadata', '=x'], /^--metadata needs NAME=VALUE/],
    [['--metadata', 'a=1', '--metadata', 'a=2'], /^--metadata a is given twice$/],
    [['--metadata', 'été=1'], /^--metadata: metadata name "été" is not an HTTP token/],
    [['--tagging', 'a=1&a=2'], /^--tagging: tag name "a" is given twice$/],
    [['--acl', 'everyone'], /^--acl: acl must be a canned ACL/],
    [['--storage-class', 'NOT A CLASS'], /^--storage-class: /],
    [['--cache-control', ''], /^--cache-control needs a value$/],
  ])('%j is a usage error naming the flag', (argv, message) => {
    expect(usageError(() => options(argv)).message).toMatch(message)
  })
})

describe('sseCustomerKeyFromFlags', () => {
  const key = randomBytes(32)
  const base64 = key.toString('base64')

  it('takes the base64 of 32 bytes, or fileb://<path> of 32 bytes; the flag wins over S3X_SSE_C_KEY', () => {
    const file = join(dir, 'key.bin')
    writeFileSync(file, key)
    expect(sseCustomerKeyFromFlags(base64, {})).toStrictEqual({ key: base64 })
    expect(sseCustomerKeyFromFlags(`fileb://${file}`, {})).toStrictEqual({ key: key })
    expect(sseCustomerKeyFromFlags(undefined, { S3X_SSE_C_KEY: base64 })).toStrictEqual({ key: base64 })
    expect(sseCustomerKeyFromFlags(`fileb://${file}`, { S3X_SSE_C_KEY: 'ignored' })).toStrictEqual({ key: key })
    expect(sseCustomerKeyFromFlags(undefined, {})).toBeUndefined()
    expect(sseCustomerKeyFromFlags(undefined, { S3X_SSE_C_KEY: '' })).toBeUndefined()
  })

  it('a bad key is a usage error that names where it came from and never shows it', () => {
    const short = randomBytes(16).toString('base64')
    const fromFlag = usageError(() => sseCustomerKeyFromFlags(short, {}, 'cat'))
    expect(fromFlag.message).toBe('--sse-c-key must be the base64 of 32 bytes, or fileb://<path> of a file of 32 bytes')
    expect(fromFlag.command).toBe('cat')
    const fromEnv = usageError(() => sseCustomerKeyFromFlags(undefined, { S3X_SSE_C_KEY: short }))
    expect(fromEnv.message).toMatch(/^S3X_SSE_C_KEY must be/)
    for (const error of [fromFlag, fromEnv]) expect(error.message).not.toContain(short)
    const file = join(dir, 'short.bin')
    writeFileSync(file, randomBytes(31))
    expect(usageError(() => sseCustomerKeyFromFlags(`fileb://${file}`, {})).message).toMatch(/^--sse-c-key must be/)
    expect(usageError(() => sseCustomerKeyFromFlags(`fileb://${join(dir, 'missing.bin')}`, {})).message).toMatch(
      /^--sse-c-key: cannot read .*missing\.bin \(ENOENT\)$/,
    )
    expect(usageError(() => sseCustomerKeyFromFlags('', {})).message).toBe('--sse-c-key needs a value')
  })
})
