/**
 * `HeadLastWriter`: streams an object whose first bytes, its *head*, are known only at the end:
 * a shard's internal manifest, which must come first in the archive but lists the members written
 * after it. The body streams into parts 2, 3, … of a multipart upload as it comes, the first
 * 5 MiB (S3's smallest part) held back; `finish(head)` sends part 1 last, as the head followed by
 * those held-back bytes, and completes the upload. A body smaller than that is one PUT of head and
 * body. Memory stays at a few parts whatever the object size, and nothing touches the disk.
 *
 * @example
 * ```ts
 * import { HeadLastWriter } from '@s3exchange/core/internals'
 *
 * const writer = new HeadLastWriter(ctx, 'ds/shards/shard-00000.tar')
 * for (const chunk of members) await writer.add(chunk)
 * await writer.finish(manifestMember) // the object is manifestMember followed by every chunk
 * ```
 */
import { MIN_PART_SIZE, putSingle, type WrittenObject } from '../s3/multipart-upload.js'
import { PartWriter } from '../s3/object-writer.js'

/** Streams an object whose head is given at the end; see the module comment. */
export class HeadLastWriter extends PartWriter {
  /** The first bytes of the body, held back for part 1. */
  #held: Uint8Array | undefined
  #nextPart = 2

  /** Publishes the object: `head`, then every body byte. */
  finish(head: Uint8Array): Promise<WrittenObject> {
    return this.finishWith(async (written) => {
      const size = head.byteLength + written
      if (!this.multipart && this.#held === undefined) {
        return { key: this.key, etag: await putSingle(this.ctx, this.key, Buffer.concat([head, this.buffer.take()]), this.options), size }
      }
      if (this.buffer.size > 0) await this.emit(this.buffer.take())
      await this.upload.upload(1, Buffer.concat([head, this.#held ?? new Uint8Array(0)]))
      return { key: this.key, etag: await this.upload.complete(size), size }
    })
  }

  /**
   * What is held back for part 1 is only S3's minimum part size, so that part 1 (head + held-back
   * bytes) stays small when the head is large.
   */
  protected override nextCut(): number {
    return this.#held === undefined ? MIN_PART_SIZE : this.partSize
  }

  protected override async emit(part: Uint8Array): Promise<void> {
    if (this.#held === undefined) this.#held = part
    else await this.upload.upload(this.#nextPart++, part)
  }

  protected override release(): void {
    super.release()
    this.#held = undefined
  }
}
