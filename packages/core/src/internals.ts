/**
 * `@s3exchange/core/internals`: the building blocks the operators are made of, for the other
 * packages of this repository (the store, `s3x`) and for whoever needs one piece on its own: the
 * multipart and head-last writers, the tar reader and header writer, seekable gzip, archive
 * indexes, the manifest writers, the rollover rule. They are documented and tested like the
 * public API, but may change between minor versions; prefer `@s3exchange/core` where it serves.
 *
 * @example
 * ```ts
 * import { readTarMembers } from '@s3exchange/core/internals'
 * import { getObjectBody } from '@s3exchange/core'
 *
 * const archive = await getObjectBody(ctx, 'ds/shards/shard-00000.tar')
 * for await (const member of readTarMembers(archive, { archiveKey: 'ds/shards/shard-00000.tar' })) console.log(member.name)
 * ```
 */

// archive/
export {
  type ArchiveHead,
  type ArchiveIndex,
  type ArchiveIndexOptions,
  isLocated,
  makeIndex,
  readArchiveHead,
} from './archive/archive-index.js'
export {
  BodyDeflater,
  crc32,
  crc32Combine,
  deflateHead,
  deflatePadding,
  gzipHead,
  gzipHeader,
  gzipTrailer,
  type Segment,
  SegmentDeflater,
} from './archive/gzip-stitch.js'
export { HeadLastWriter } from './archive/head-last-writer.js'
export { indexByPath, listedMemberEntry, parseInternalManifest, streamedMemberEntry } from './archive/internal-manifest.js'
export { openLocatedMember } from './archive/random-access.js'
export { type MemberMark, readShardMembersAfter } from './archive/resume-members.js'
export { type ScanArchiveOptions, type ScannedMember, scanArchive } from './archive/scan-archive.js'
export { type PreparedShardItem, prepareShardItem } from './archive/shard-items.js'
export { compressInto, StreamCompressor } from './archive/stream-compressor.js'
export {
  isRegularFile,
  memberBody,
  type ReadTarOptions,
  readTarMembers,
  type SniffedCompression,
  sniffCompression,
  type TarEntryStream,
  type TarMember,
  toShardReadError,
} from './archive/tar-reader.js'
export { paddedSize, TAR_END, type TarHeaderSpec, tarHeader, tarHeaderSize, tarPadding } from './archive/tar-writer.js'
export {
  compressFrame,
  createFrameCompressor,
  DEFAULT_ZSTD_LEVEL,
  FrameCompressor,
  type ZstdFunctions,
  zstdFor,
  zstdLookup,
} from './archive/zstd-codec.js'
export {
  PADDING_MAGIC,
  paddingFrame,
  SKIPPABLE_HEADER_BYTES,
  ZSTD_MAGIC,
  ZstdFrameError,
  ZstdFrameSplitter,
} from './archive/zstd-frames.js'
// format/
export { BATCHES, BatchedStream, type BatchIterator, type BatchSource, batchesOf, hasBatches } from './format/batches.js'
export {
  type CursorFrame,
  type CursorPosition,
  checkCursorFits,
  decodeCursor,
  type EpochIdentity,
  encodeCursor,
  isShuffledPosition,
  type OrderOptions,
  orderFingerprint,
  type PartitionSnapshot,
  type ShuffledCursorPosition,
} from './format/cursor.js'
export { ENTRY_KINDS } from './format/entries.js'
export { EntryStream, type ParsedLines, parseLines } from './format/entry-stream.js'
export { httpStatusOf, isAbort, isNotFound } from './format/errors.js'
export { emitEvent } from './format/events.js'
export { asyncIterableOf, iteratorOf } from './format/iterables.js'
export { DEFAULT_MAX_LINE_BYTES } from './format/jsonl.js'
export {
  archiveExtension,
  extensionCompression,
  memberPathProblem,
  runId,
  SHARD_INDEX_DIGITS,
  shardArchiveName,
  utcStamp,
} from './format/keys.js'
export { type LinesFrom, type PositionedLine, type PositionedLinesOptions, positionedLines } from './format/manifest-lines.js'
export {
  checkKey,
  checkOption,
  checkOptions,
  describeRule,
  MAX_CONNECTIONS_PER_OPTION,
  OPTION_RULES,
  type OptionRule,
} from './format/options.js'
export { progressCounter } from './format/progress.js'
export { type BatchSize, batches, closesBefore, isFull } from './format/rollover.js'
export { checkShuffle, sfc32 } from './format/shuffle-order.js'
// manifest/
export { isConflict, isSlowDown, MANIFEST_CONTENT_TYPE } from './manifest/commit.js'
export { ManifestObjectWriter } from './manifest/manifest-object.js'
export { type TailOptions, type TailState, tailManifest } from './manifest/manifest-tail.js'
export { ManifestPartsWriter } from './manifest/parts-writer.js'
export { IN_MEMORY_ROOT } from './operators/cursors.js'
// operators/
export {
  type DownloadIntoOptions,
  DownloadPlan,
  localPathOf,
  MAX_NAME_BYTES,
  safeLocalPath,
  type WriteFileOptions,
  writeFileAtomically,
} from './operators/download.js'
export { DEFAULT_MAX_BUFFERED_BYTES } from './operators/fetch-bodies.js'
export { groupKeys, planRangedReads } from './operators/fetch-keys.js'
export { PartitionAssigner } from './operators/partition.js'
export { cursorOf, type ItemPosition, positionOf, setPosition } from './operators/positions.js'
export { type PrefetchShardsOptions, prefetchShards, type ReadMembers } from './operators/prefetch-shards.js'
export { MANIFEST_KEY } from './operators/read-manifest.js'
export { type TraverseOptions, traverseManifest } from './operators/traverse.js'
// s3/
export { type BodySourceOptions, type ByteSource, type Expectation, expectationOf } from './s3/body.js'
export { checkContext } from './s3/context.js'
export { DEFAULT_MAX_UNSIZED_BYTES, hashing, type PreparedSource, type PrepareSourceOptions, prepareSource } from './s3/data-source.js'
export { type DeleteKeysOptions, type DeleteKeysResult, deleteKeys } from './s3/delete-keys.js'
export {
  DEFAULT_PART_SIZE,
  DEFAULT_QUEUE_SIZE,
  MIN_PART_SIZE,
  MultipartUpload,
  PartBuffer,
  putSingle,
} from './s3/multipart-upload.js'
export {
  collectSource,
  DEFAULT_RESUME_ATTEMPTS,
  type ObjectSource,
  objectBodyFrom,
  openObjectSource,
  ResumableSource,
} from './s3/object-source.js'
export { ObjectWriter, putBytes } from './s3/object-writer.js'
export { type OpenRange, OrderedRanges, type RangeSource } from './s3/ordered-ranges.js'
export {
  type ByteRange,
  MAX_RANGE_CONCURRENCY,
  MIN_RANGE_SIZE,
  planRanges,
  type RangedReads,
  rangedReadsOf,
  totalSizeOf,
  worthSplitting,
} from './s3/range-plan.js'
export { RangeSlots, rangeSlotsFor } from './s3/range-slots.js'
export {
  answeredEtag,
  mapS3Error,
  mapWriteError,
  quoteEtag,
  type RangeOptions,
  requestObject,
  timesSent,
  unquoteEtag,
} from './s3/requests.js'
export {
  DEFAULT_SINGLE_PUT_LIMIT,
  type IfMatchForm,
  type ServerKnowledge,
  serverKnowledge,
  singlePutFits,
} from './s3/server-knowledge.js'
export {
  CustomerKey,
  metadataHeaders,
  type ObjectWriteParams,
  objectWriteParams,
  pickWriteOptions,
  type SseCustomerParams,
  sseCustomerParams,
  taggingHeader,
  WRITE_OPTION_NAMES,
} from './s3/write-options.js'
