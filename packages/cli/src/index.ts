/**
 * @s3exchange/cli: the `s3x` command. The executable is `dist/bin.js`; this module exports its
 * parts for tools that embed or extend it: `main` (argv → exit code), the command table, the
 * argument, size and `s3://` URI parsers, the AWS profile and store configuration, the output
 * helpers (errors as JSON among them), and the checks behind `s3x verify`.
 *
 * @example
 * ```ts
 * import { main } from '@s3exchange/cli'
 *
 * const code = await main(['verify', 'training/123/samples/manifest.jsonl', '--json'])
 * ```
 */
export {
  type FlagValues,
  GLOBAL_OPTIONS,
  parseFlags,
  parsePositiveInteger,
  parseSize,
  parseSizeFlag,
  type SplitCommand,
  splitCommand,
  UsageError,
} from './args.js'
export { type ArchiveCheck, type ArchiveExpectations, checkArchive, checkLooseObject, type Problem } from './checks.js'
export type { Command, CommandContext } from './command.js'
export { doctorReport } from './commands/doctor.js'
export { commands } from './commands/index.js'
export { entryLine } from './commands/manifest-ls.js'
export type { ManifestStats } from './commands/stat.js'
export type { VerifyReport } from './commands/verify.js'
export { type ConnectionFlags, environmentWith, type LayerOptions, type StoreSources, storeFromFlags } from './config.js'
export { commandHelp, toolHelp } from './help.js'
export { headListing, type ListedObject, type LongLineOptions, listObjects, longLine } from './listing.js'
export { joinKey, type LocalFile, type LocalFiles, listLocalFiles } from './local-files.js'
export { type MainOptions, main, version } from './main.js'
export { chooseBucket, type LocatedOperands, locateOperands, type OperandKind, type Operands } from './operands.js'
export { errorJson, formatBytes, formatError, Output, type OutputStream, oneLine, Progress, type ProgressOptions } from './output.js'
export { mapAhead, TaskPool } from './pool.js'
export { type AwsProfile, loadAwsProfile, ProfileNotFoundError } from './profile.js'
export { ConfirmationRefused, type ConfirmOptions, confirm } from './prompt.js'
export { InvalidS3UriError, isS3Uri, parseS3Uri, type S3Location } from './s3-uri.js'
export { type WalkedEntry, type WalkOptions, type WalkStats, walkManifest } from './walk.js'
export { sseCustomerKeyFromFlags, WRITE_FLAG_HELP, WRITE_FLAGS, writeOptionsFromFlags } from './write-flags.js'
