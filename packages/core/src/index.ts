/**
 * @s3exchange/core: the wire format, key helpers, typed errors, and the streaming operators of
 * s3exchange. Operators are plain functions that return async generators (sources) or functions
 * from one async iterable to another (stages), so a pipeline composes with `pipe` from it-pipe.
 */
export { type ByteSource, ObjectBody, type ObjectInfo } from './body.js'
export {
  DEFAULT_INTERNAL_MANIFEST_PATH,
  ENTRY_KINDS,
  type FileEntry,
  internalManifestPath,
  type JsonValue,
  type LineLocation,
  type ManifestEntry,
  type ManifestRefEntry,
  type Meta,
  objectKeyOf,
  parseEntry,
  type ShardEntry,
  serializeEntry,
  shardCompression,
  validateEntry,
} from './entries.js'
export {
  ConfigurationError,
  httpStatusOf,
  InvalidManifestError,
  isAbort,
  isNotFound,
  ManifestNotFoundError,
  MissingPlaceholderError,
  ObjectNotFoundError,
  S3ExchangeError,
  S3RequestError,
  ShardReadError,
} from './errors.js'
export { DEFAULT_MAX_LINE_BYTES, isBlankLine, type SplitLinesOptions, splitLines } from './jsonl.js'
export {
  type ArchiveFormat,
  inferArchiveFormat,
  inferId,
  isArchiveKey,
  isManifestKey,
  normalizeKey,
  resolveTemplate,
  splitVirtualKey,
  type TemplateVars,
  type VirtualKey,
  virtualKey,
} from './keys.js'
export { openEntryObject, openObject } from './objects.js'
export { type ExpandRefsOptions, expandRefs } from './operators/expand-refs.js'
export { type ExpandShardsOptions, expandShards, hasBody, type PipelineItem } from './operators/expand-shards.js'
export {
  DEFAULT_FETCH_CONCURRENCY,
  DEFAULT_MAX_BUFFERED_BYTES,
  type FetchBodiesOptions,
  fetchBodies,
} from './operators/fetch-bodies.js'
export { MANIFEST_KEY, type ManifestSource, parseManifest, type ReadManifestOptions, readManifest } from './operators/read-manifest.js'
export { take } from './operators/take.js'
export { type GetObjectBodyOptions, getObjectBody, headObject, mapS3Error, type S3Context, unquoteEtag } from './s3.js'
export {
  type EntryWithBody,
  listedMemberEntry,
  openArchiveMember,
  parseInternalManifest,
  readInternalManifest,
  readShardEntries,
  readShardMembers,
  type ScanArchiveOptions,
  type ScannedMember,
  type ShardReadOptions,
  scanArchive,
  streamedMemberEntry,
} from './shard-reader.js'
export {
  isRegularFile,
  type ReadTarOptions,
  readTarMembers,
  type SniffedCompression,
  sniffCompression,
  type TarMember,
} from './tar-reader.js'
