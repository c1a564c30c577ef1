/** `s3://bucket/key` parsing and the operands of a command: which bucket, which keys, which mistakes. */
import { describe, expect, it } from 'vitest'
import { UsageError } from './args.js'
import { chooseBucket, locateOperands } from './operands.js'
import { InvalidS3UriError, parseS3Uri } from './s3-uri.js'

describe('parseS3Uri', () => {
  it('splits a URI into bucket and key, keeping the key as written', () => {
    expect(parseS3Uri('s3://data/jobs/1/manifest.jsonl', '<m>')).toStrictEqual({ bucket: 'data', key: 'jobs/1/manifest.jsonl' })
    expect(parseS3Uri('s3://data/jobs/1/', '<m>')).toStrictEqual({ bucket: 'data', key: 'jobs/1/' })
    expect(parseS3Uri('s3://data', '<m>')).toStrictEqual({ bucket: 'data', key: '' })
    expect(parseS3Uri('s3://data/', '<m>')).toStrictEqual({ bucket: 'data', key: '' })
    expect(parseS3Uri('s3://data//x', '<m>')).toStrictEqual({ bucket: 'data', key: '/x' })
    expect(parseS3Uri('s3://data/a.tar#m/1.wav', '<m>')).toStrictEqual({ bucket: 'data', key: 'a.tar#m/1.wav' })
    expect(parseS3Uri('s3://data/été%20x', '<m>')).toStrictEqual({ bucket: 'data', key: 'été%20x' })
    expect(parseS3Uri('s3://Legacy_Bucket.01/k', '<m>')).toStrictEqual({ bucket: 'Legacy_Bucket.01', key: 'k' })
  })

  it('leaves plain keys alone, URIs of other schemes included', () => {
    for (const key of ['jobs/1/manifest.jsonl', '', '/', 'https://x/y', 'a/s3://b/c', 'my-s3:key']) {
      expect(parseS3Uri(key, '<m>')).toBeUndefined()
    }
  })

  it('refuses what looks like a URI but is not one, naming the argument', () => {
    const cases: [string, string][] = [
      ['s3:/data/x', 'write it as s3://bucket/key'],
      ['S3://data/x', 'write it as s3://bucket/key'],
      ['s3a://data/x', 'write it as s3://bucket/key'],
      ['s3:data', 'write it as s3://bucket/key'],
      ['s3://', 'no bucket name after s3://'],
      ['s3:///x', 'no bucket name after s3://'],
      ['s3://my bucket/x', "'my bucket' is not a bucket name"],
      ['s3://ab/x', "'ab' is not a bucket name"],
      ['s3://-data/x', "'-data' is not a bucket name"],
      ['s3://data?x=1/k', "'data?x=1' is not a bucket name"],
    ]
    for (const [uri, reason] of cases) {
      let caught: unknown
      try {
        parseS3Uri(uri, '--manifest', 'rm')
      } catch (error) {
        caught = error
      }
      expect(caught, uri).toBeInstanceOf(InvalidS3UriError)
      expect(caught).toBeInstanceOf(UsageError)
      const error = caught as InvalidS3UriError
      expect(error.message).toContain(`--manifest: '${uri}' is not a valid S3 URI: ${reason}`)
      expect(error).toMatchObject({ argument: '--manifest', uri, command: 'rm', name: 'InvalidS3UriError' })
    }
  })
})

describe('locateOperands and chooseBucket', () => {
  const compact = {
    args: [
      ['<src>', 'key'],
      ['<dst>', 'key'],
    ],
  } as const

  it('replaces URIs by their keys and takes their bucket', () => {
    const located = locateOperands(compact, ['s3://data/a.jsonl', 's3://data/b.jsonl'], {})
    expect(located.args).toStrictEqual(['a.jsonl', 'b.jsonl'])
    expect(located.bucket).toBe('data')
    expect(chooseBucket(located, 'configured')).toBe('data')
    expect(chooseBucket(located, undefined)).toBe('data')
  })

  it('plain keys are in the configured bucket, or in the URIs bucket when none is configured', () => {
    const plain = locateOperands(compact, ['a.jsonl', 'b.jsonl'], {})
    expect(plain.args).toStrictEqual(['a.jsonl', 'b.jsonl'])
    expect(chooseBucket(plain, 'configured')).toBe('configured')
    expect(chooseBucket(plain, undefined)).toBeUndefined()
    const mixed = locateOperands(compact, ['s3://data/a.jsonl', 'b.jsonl'], {})
    expect(chooseBucket(mixed, undefined)).toBe('data')
    expect(chooseBucket(mixed, 'data')).toBe('data')
    expect(() => chooseBucket(mixed, 'other', 'compact')).toThrow(
      new UsageError(
        "<dst> 'b.jsonl' is a key in the configured bucket 'other', but <src> 's3://data/a.jsonl' is in 'data'; one command works in one bucket: give both as s3:// URIs",
        'compact',
      ),
    )
  })

  it('refuses two buckets, and a local path written as a URI', () => {
    expect(() => locateOperands(compact, ['s3://one/a.jsonl', 's3://two/b.jsonl'], {}, 'compact')).toThrow(
      "<src> 's3://one/a.jsonl' and <dst> 's3://two/b.jsonl' name two buckets; one command works in one bucket",
    )
    const put = {
      args: [
        ['<file | dir>', 'path'],
        ['<prefix>', 'prefix'],
      ],
      keyFlags: ['manifest'],
    } as const
    expect(() => locateOperands(put, ['s3://data/x', 'p'], {}, 'put')).toThrow(
      "<file | dir> is a local file or folder, not an S3 URI: 's3://data/x'",
    )
    const located = locateOperands(put, ['./dir', 's3://data/p'], { manifest: 's3://data/m.jsonl', json: true })
    expect(located.args).toStrictEqual(['./dir', 'p'])
    expect(located.flags).toStrictEqual({ manifest: 'm.jsonl', json: true })
    expect(() => locateOperands(put, ['./dir', 's3://data/p'], { manifest: 's3://else/m.jsonl' })).toThrow(
      "<prefix> 's3://data/p' and --manifest 's3://else/m.jsonl' name two buckets",
    )
  })

  it('a key operand needs a key; a prefix operand may be the whole bucket', () => {
    expect(() => locateOperands({ args: [['<key>', 'key']] }, ['s3://data/'], {}, 'cat')).toThrow(
      new InvalidS3UriError('s3://data/', '<key>', 'it names a bucket but no key', 'cat'),
    )
    expect(() => locateOperands({ keyFlags: ['manifest'] }, [], { manifest: 's3://data' })).toThrow(
      "--manifest: 's3://data' is not a valid S3 URI: it names a bucket but no key",
    )
    expect(
      locateOperands({ args: [['[prefix]', 'prefix']], prefixFlags: ['prefix'] }, ['s3://data'], { prefix: 's3://data/' }),
    ).toMatchObject({
      args: [''],
      flags: { prefix: '' },
      bucket: 'data',
    })
  })

  it('leaves absent operands and commands without operands alone', () => {
    expect(locateOperands({ args: [['[prefix]', 'prefix']] }, [], {})).toStrictEqual({
      args: [],
      flags: {},
      bucket: undefined,
      uri: undefined,
      plain: [],
    })
    expect(locateOperands(undefined, ['s3://x/y'], { bucket: 'b' }).args).toStrictEqual(['s3://x/y'])
  })
})
