/**
 * Where a command's keys live. A command declares which of its arguments and flags name S3 keys
 * (`key`), prefixes (`prefix`) or local files or folders (`path`); `locateOperands` reads each key
 * and prefix operand as a plain key or an `s3://bucket/key` URI and hands the command plain keys,
 * and `chooseBucket` decides the one bucket the command works in:
 *
 * - plain keys are in the configured bucket (`--bucket`, `S3_BUCKET`);
 * - a URI names its own bucket, which is used as given, as `aws s3` does, even when another one
 *   is configured;
 * - one command works in one bucket (a manifest's keys name objects of its own bucket): URIs that
 *   name two buckets, or a plain key beside a URI naming another bucket than the configured one,
 *   are usage errors that name both arguments. With no bucket configured, plain keys are in the
 *   bucket the URIs name.
 *
 * A local path written as a URI (`s3x get s3://b/m.jsonl s3://b/out`), and a URI with no key where
 * a key is needed (`s3x cat s3://b`), are usage errors too.
 *
 * @example
 * ```ts
 * import { chooseBucket, locateOperands } from '@s3exchange/cli'
 *
 * const located = locateOperands({ args: [['<src>', 'key'], ['<dst>', 'key']] }, ['s3://data/m.jsonl', 'flat.jsonl'], {})
 * // located.args: ['m.jsonl', 'flat.jsonl'], located.bucket: 'data'
 * chooseBucket(located, undefined)   // 'data': flat.jsonl goes beside m.jsonl
 * chooseBucket(located, 'other')     // throws UsageError: <dst> 'flat.jsonl' is in 'other', <src> names 'data'
 * ```
 */
import { type FlagValues, UsageError } from './args.js'
import { InvalidS3UriError, isS3Uri, parseS3Uri } from './s3-uri.js'

/**
 * What an operand names: an S3 key (a URI must name one: `s3://bucket/` alone is refused), a
 * prefix (`s3://bucket` is the whole bucket), or a local file or folder.
 */
export type OperandKind = 'key' | 'prefix' | 'path'

/** A command's operands; see the module comment. */
export interface Operands {
  /** The positional arguments, in order, as `[name in the usage, kind]`; later ones are neither. */
  args?: readonly (readonly [string, OperandKind])[]
  /** Flags whose value is an S3 key, e.g. `['manifest']`. */
  keyFlags?: readonly string[]
  /** Flags whose value is an S3 prefix, e.g. `['prefix']`. */
  prefixFlags?: readonly string[]
}

/** One key operand as given. */
interface GivenKey {
  /** `<prefix>`, `--manifest`, ... */
  name: string
  /** The text on the command line. */
  text: string
}

/** The operands with every URI replaced by its key, and where the keys were said to be. */
export interface LocatedOperands {
  args: string[]
  flags: FlagValues
  /** The bucket the URIs name, when some do (they must agree). */
  bucket: string | undefined
  /** The first URI operand (for messages). */
  uri: GivenKey | undefined
  /** The operands given as plain keys. */
  plain: GivenKey[]
}

/** Reads the key and path operands of one command line; see the module comment. */
export function locateOperands(
  operands: Operands | undefined,
  args: readonly string[],
  flags: FlagValues,
  command?: string,
): LocatedOperands {
  const located: LocatedOperands = { args: [...args], flags: { ...flags }, bucket: undefined, uri: undefined, plain: [] }
  const locate = (name: string, text: string, kind: 'key' | 'prefix'): string => {
    const location = parseS3Uri(text, name, command)
    if (location === undefined) {
      located.plain.push({ name, text })
      return text
    }
    if (kind === 'key' && location.key === '') throw new InvalidS3UriError(text, name, 'it names a bucket but no key', command)
    if (located.uri !== undefined && located.bucket !== location.bucket) {
      throw new UsageError(
        `${located.uri.name} '${located.uri.text}' and ${name} '${text}' name two buckets; one command works in one bucket`,
        command,
      )
    }
    located.bucket = location.bucket
    located.uri ??= { name, text }
    return location.key
  }
  operands?.args?.forEach(([name, kind], index) => {
    const text = located.args[index]
    if (text === undefined) return
    if (kind !== 'path') located.args[index] = locate(name, text, kind)
    else if (isS3Uri(text)) throw new UsageError(`${name} is a local file or folder, not an S3 URI: '${text}'`, command)
  })
  const flagOperands = [
    ...(operands?.keyFlags ?? []).map((flag) => [flag, 'key'] as const),
    ...(operands?.prefixFlags ?? []).map((flag) => [flag, 'prefix'] as const),
  ]
  for (const [flag, kind] of flagOperands) {
    const text = located.flags[flag]
    if (typeof text === 'string') located.flags[flag] = locate(`--${flag}`, text, kind)
  }
  return located
}

/** The bucket a command works in, from its located operands and the configured bucket; see the module comment. */
export function chooseBucket(located: LocatedOperands, configured: string | undefined, command?: string): string | undefined {
  if (located.bucket === undefined || located.uri === undefined) return configured
  const stray = located.plain[0]
  if (stray !== undefined && configured !== undefined && configured !== located.bucket) {
    throw new UsageError(
      `${stray.name} '${stray.text}' is a key in the configured bucket '${configured}', but ${located.uri.name} '${located.uri.text}' is in '${located.bucket}'; one command works in one bucket: give both as s3:// URIs`,
      command,
    )
  }
  return located.bucket
}
