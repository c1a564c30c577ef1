/**
 * `s3x rm`: deletes one key (`rm <key>`), every key under a prefix (`rm --prefix <p>`, optionally
 * only those `--regex R` matches anywhere in the key), or a dataset (`rm --manifest <m>`: every
 * loose object and shard archive it references, refs resolved, then `<m>`, its parts and every
 * manifest its refs reach, so that no manifest is left naming deleted objects; with
 * `--keep-referenced-manifests` only `<m>`, and what was kept is named). Keys and prefixes may be
 * `s3://bucket/key` URIs. Each first works out what would go and prints a summary; then it asks on
 * a terminal, proceeds with `--yes`, and anywhere else refuses (exit 1). `--dry-run` prints the
 * plan (every key, the parts included) and stops. An empty prefix is refused by the library's fences.
 *
 * @example
 * ```sh
 * s3x rm --prefix training/123/samples/ --regex '\.wav$' --dry-run
 * s3x rm --manifest s3://datasets/training/123/samples/manifest.jsonl --yes
 * ```
 */
import { DeleteRefusedError, type DeleteReport, ObjectNotFoundError, type S3ExchangeStore } from 's3exchange'
import { type FlagValues, UsageError } from '../args.js'
import type { Command } from '../command.js'
import type { Output } from '../output.js'
import { confirm } from '../prompt.js'

/** Keys shown in a summary before `…`. */
const SAMPLE = 10

export const rm: Command = {
  name: 'rm',
  usage: 'rm <key> | rm --prefix <p> [--regex R] | rm --manifest <m> [--keep-referenced-manifests]  [--yes] [--dry-run] [--json]',
  summary: 'delete a key, a prefix, or a manifest and everything it references',
  description: `Deletes, in one of three ways:
  rm <key>                    one object
  rm --prefix <p> [--regex R] every key under <p> (that the regular expression R matches)
  rm --manifest <m>           every loose object and shard archive <m> references (refs resolved),
                              then <m>, its parts and every manifest its refs reach (their objects
                              are gone, so they would name nothing); with
                              --keep-referenced-manifests, only <m> (what is kept is listed);
                              if any object cannot be deleted, the manifests are kept
Keys and prefixes may be S3 URIs (s3://bucket/key).
First prints what would be deleted. On a terminal it then asks for confirmation; with --yes it
proceeds without asking; elsewhere (a pipe, a script) it refuses and exits 1.
--dry-run prints every key that would be deleted (for --manifest: kind and key, the parts and
referenced manifests included), and deletes nothing.

Examples:
  s3x rm --prefix training/123/tmp/ --dry-run
  s3x rm --manifest s3://datasets/training/123/samples/manifest.jsonl --yes`,
  options: {
    prefix: { type: 'string' },
    regex: { type: 'string' },
    manifest: { type: 'string' },
    'keep-referenced-manifests': { type: 'boolean' },
    yes: { type: 'boolean', short: 'y' },
    'dry-run': { type: 'boolean' },
    json: { type: 'boolean' },
  },
  optionHelp: [
    ['--prefix <p>', 'delete every key under <p>'],
    ['--regex R', "with --prefix: only keys this regular expression matches (anywhere, as Python's re.search)"],
    ['--manifest <m>', 'delete what <m> references, then <m>, its parts and the manifests its refs reach'],
    ['--keep-referenced-manifests', 'with --manifest: delete <m> but keep its parts and the manifests its refs reach'],
    ['-y, --yes', 'do not ask for confirmation'],
    ['--dry-run', 'print what would be deleted; delete nothing'],
    ['--json', 'print the result as JSON'],
  ],
  args: { min: 0, max: 1 },
  operands: { args: [['<key>', 'key']], keyFlags: ['manifest'], prefixFlags: ['prefix'] },
  async run({ args, flags, store, output }) {
    const modes = [args.length > 0, flags.prefix !== undefined, flags.manifest !== undefined].filter(Boolean).length
    if (modes !== 1) throw new UsageError('give exactly one of <key>, --prefix <p> or --manifest <m>', 'rm')
    if (flags.regex !== undefined && flags.prefix === undefined) throw new UsageError('--regex needs --prefix', 'rm')
    if (flags['keep-referenced-manifests'] && flags.manifest === undefined) {
      throw new UsageError('--keep-referenced-manifests needs --manifest', 'rm')
    }
    if (typeof flags.prefix === 'string') return removePrefix(store(), flags.prefix, flags, output)
    if (typeof flags.manifest === 'string') return removeManifest(store(), flags.manifest, flags, output)
    return removeKey(store(), args[0] as string, flags, output)
  },
}

async function removeKey(store: S3ExchangeStore, key: string, flags: FlagValues, output: Output): Promise<number> {
  if (key === '') throw new DeleteRefusedError('the key is empty', { key })
  if (!(await store.exists(key))) throw new ObjectNotFoundError(key)
  if (flags['dry-run']) {
    if (flags.json) await output.json({ dryRun: true, keys: [key] })
    else await output.line(key)
    output.note('would delete 1 object (dry run: nothing deleted)')
    return 0
  }
  output.note(`to delete: ${key}`)
  if (!(await confirm(`Delete ${key}?`, { yes: flags.yes === true }))) return aborted(output)
  await store.deleteKey(key)
  if (flags.json) await output.json({ dryRun: false, deleted: [key] })
  else await output.line(`deleted ${key}`)
  return 0
}

async function removePrefix(store: S3ExchangeStore, prefix: string, flags: FlagValues, output: Output): Promise<number> {
  // The library refuses these too; refuse before listing the whole bucket.
  if (prefix.replace(/\/+/g, '') === '') throw new DeleteRefusedError('an empty prefix would delete the whole bucket', { key: prefix })
  let pattern: RegExp | undefined
  if (typeof flags.regex === 'string') {
    try {
      pattern = new RegExp(flags.regex)
    } catch (error) {
      throw new UsageError(`--regex: ${(error as Error).message}`, 'rm')
    }
  }
  const what = `under ${prefix}${pattern ? ` matching /${pattern.source}/` : ''}`
  const keys: string[] = []
  let count = 0
  for await (const key of store.listKeys(prefix)) {
    if (pattern && !pattern.test(key)) continue
    count++
    if (flags['dry-run'] && !flags.json) await output.line(key)
    else if (flags.json || keys.length < SAMPLE) keys.push(key)
  }
  if (flags['dry-run']) {
    if (flags.json) await output.json({ dryRun: true, prefix, regex: pattern?.source ?? null, count, keys })
    output.note(`would delete ${count} object(s) ${what} (dry run: nothing deleted)`)
    return 0
  }
  if (count === 0) {
    if (flags.json) await output.json({ dryRun: false, prefix, regex: pattern?.source ?? null, deleted: 0 })
    else await output.line(`nothing to delete ${what}`)
    return 0
  }
  output.note(`to delete: ${count} object(s) ${what}`)
  for (const key of keys.slice(0, SAMPLE)) output.note(`  ${key}`)
  if (count > SAMPLE) output.note(`  … and ${count - SAMPLE} more`)
  if (!(await confirm(`Delete ${count} object(s)?`, { yes: flags.yes === true }))) return aborted(output)
  const deleted = await store.deletePrefix(prefix, pattern ? { regex: pattern } : {})
  if (flags.json) await output.json({ dryRun: false, prefix, regex: pattern?.source ?? null, deleted })
  else await output.line(`deleted ${deleted} object(s) ${what}`)
  return 0
}

async function removeManifest(store: S3ExchangeStore, manifest: string, flags: FlagValues, output: Output): Promise<number> {
  const keep = flags['keep-referenced-manifests'] === true
  const everything = await store.deleteManifest(manifest, { referencedManifests: true, dryRun: true })
  // The manifests the walk reached besides the root: its parts and the manifests its refs name.
  const referenced = everything.keys.manifests.filter((key) => key !== manifest)
  const kept = keep ? referenced : []
  const plan = withoutKept(everything, kept)
  const counts = (report: DeleteReport) =>
    `${report.deletedObjectCount} loose object(s), ${report.deletedArchiveCount} shard archive(s) and ${report.deletedManifestCount} manifest(s)`
  const which = keep
    ? `${manifest} only; its ${kept.length} part(s) and referenced manifest(s) are kept (--keep-referenced-manifests)`
    : `${manifest} with its ${referenced.length} part(s) and referenced manifest(s)`
  const outside = () => {
    if (plan.outsideFence.length > 0) output.note(`  (${plan.outsideFence.length} key(s) outside the fence are left alone)`)
  }
  if (flags['dry-run']) {
    if (flags.json) await output.json({ ...plan, kept })
    else {
      for (const key of plan.keys.objects) await output.line(`object\t${key}`)
      for (const key of plan.keys.archives) await output.line(`archive\t${key}`)
      for (const key of plan.keys.manifests) await output.line(`manifest\t${key}`)
    }
    output.note(`would delete ${counts(plan)}: ${which} (dry run: nothing deleted)`)
    outside()
    return 0
  }
  output.note(`to delete: ${counts(plan)}: ${which}`)
  outside()
  if (!(await confirm(`Delete ${manifest} and what it references?`, { yes: flags.yes === true }))) return aborted(output)
  const report = await store.deleteManifest(manifest, { referencedManifests: !keep })
  if (flags.json) await output.json({ ...report, kept })
  else await output.line(`deleted ${counts(report)}`)
  for (const key of kept) output.note(`kept ${key}: it references deleted objects now`)
  const failures = Object.entries(report.errors)
  for (const [key, message] of failures) output.note(`s3x: could not delete ${key}: ${message}`)
  return failures.length > 0 ? 1 : 0
}

/** A dry run's report without the manifests --keep-referenced-manifests keeps. */
function withoutKept(plan: DeleteReport, kept: string[]): DeleteReport {
  if (kept.length === 0) return plan
  const manifests = plan.keys.manifests.filter((key) => !kept.includes(key))
  return { ...plan, deletedManifestCount: manifests.length, keys: { ...plan.keys, manifests } }
}

function aborted(output: Output): number {
  output.note('nothing deleted')
  return 1
}
