/**
 * The option rules as pure logic: every rule's edges, nested options, what the messages say, and
 * that each option's rule is one (the same name means the same range in every call).
 */
import { describe, expect, it } from 'vitest'
import { ConfigurationError } from './errors.js'
import { checkOption, checkOptions, describeRule, MAX_CONNECTIONS_PER_OPTION, OPTION_RULES } from './options.js'

function caught(run: () => void): ConfigurationError | undefined {
  try {
    run()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError)
    return error as ConfigurationError
  }
  return undefined
}

describe('checkOptions', () => {
  it('accepts undefined options, unknown options and undefined values', () => {
    expect(caught(() => checkOptions('call', undefined))).toBeUndefined()
    expect(caught(() => checkOptions('call', {}))).toBeUndefined()
    expect(caught(() => checkOptions('call', { whatever: Number.NaN, concurrency: undefined }))).toBeUndefined()
  })

  it('refuses options that are not an object', () => {
    for (const options of [null, 5, 'x', true]) expect(caught(() => checkOptions('call', options))?.call).toBe('call')
  })

  it.each([
    ['concurrency', [1, MAX_CONNECTIONS_PER_OPTION], [0, MAX_CONNECTIONS_PER_OPTION + 1, 1.5, Number.NaN, '4', -1]],
    ['shardConcurrency', [1, 64], [0, Number.POSITIVE_INFINITY]],
    ['limit', [0, 1, 2 ** 53 - 1], [-1, 0.5, 2 ** 53, Number.NaN]],
    ['maxBufferedBytes', [0, 1 << 30], [-1, 1.5]],
    ['partSize', [5 * 1024 * 1024, 5 * 1024 ** 3], [5 * 1024 * 1024 - 1, 5 * 1024 ** 3 + 1]],
    ['batchSize', [1, 1000], [0, 1001]],
    ['gzipLevel', [1, 9], [0, 10]],
    ['resumeAttempts', [0, 100], [-1, 101]],
    ['baseDelayMs', [0, 0.5, 2000], [-0.5, Number.NaN, Number.POSITIVE_INFINITY]],
    ['onMissing', ['throw', 'skip'], ['ignore', null, 1]],
    ['verify', [true, false], ['true', 1, null]],
    ['regex', [/x/, 'a.b'], ['[', 5]],
    ['shardCompression', ['gzip', 'zstd', null], ['lz4', 'bzip2']],
  ] as [string, unknown[], unknown[]][])('%s: accepts %o, refuses %o', (name, good, bad) => {
    for (const value of good)
      expect(
        caught(() => checkOptions('call', { [name]: value })),
        String(value),
      ).toBeUndefined()
    for (const value of bad) {
      const error = caught(() => checkOptions('call', { [name]: value }))
      expect(error, String(value)).toBeDefined()
      expect(error).toMatchObject({ option: name, call: 'call' })
      expect(error?.message).toContain(`call: ${name} must be ${describeRule(OPTION_RULES[name] as never)}`)
    }
  })

  it('checks nested options field by field, naming the path', () => {
    expect(caught(() => checkOptions('c', { limits: { maxRefDepth: -1 } }))).toMatchObject({ option: 'limits.maxRefDepth' })
    expect(caught(() => checkOptions('c', { shardSize: { maxBytes: 0 } }))).toMatchObject({ option: 'shardSize.maxBytes' })
    expect(caught(() => checkOptions('c', { partition: { count: 4 } }))).toMatchObject({ option: 'partition.index' })
    expect(caught(() => checkOptions('c', { partition: null }))).toMatchObject({ option: 'partition' })
    expect(caught(() => checkOptions('c', { limits: { maxRefDepth: 3, other: 'x' } }))).toBeUndefined()
  })

  it('says what it got, readably', () => {
    expect(caught(() => checkOptions('fetchBodies', { concurrency: Number.NaN }))?.message).toBe(
      'fetchBodies: concurrency must be an integer from 1 to 1024, got NaN',
    )
    expect(caught(() => checkOptions('take', { limit: '3' }))?.message).toBe('take: limit must be an integer ≥ 0, got "3"')
    expect(caught(() => checkOptions('x', { limit: 10n }))?.message).toContain('got 10n')
  })

  it('a bad pattern keeps the SyntaxError as its cause', () => {
    expect(caught(() => checkOptions('deletePrefix', { regex: '(' }))?.cause).toBeInstanceOf(SyntaxError)
  })

  it('checkOption checks one value by its option name, and insists the name has a rule', () => {
    expect(caught(() => checkOption('take', 'limit', -1))).toMatchObject({ option: 'limit', call: 'take' })
    expect(caught(() => checkOption('take', 'limit', undefined))).toBeUndefined()
    expect(() => checkOption('x', 'no-such-option', 1)).toThrow(/no rule/)
  })
})
