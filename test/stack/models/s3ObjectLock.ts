/**
 * What S3 does over time to one backup object version in a versioned bucket with the stack's lifecycle
 * rules and an Object Lock default retention, as the S3 User Guide documents it. Whole days from the
 * object's creation; S3's rounding to the next midnight UTC moves every event by the same part of a day
 * and is left out.
 *
 * - Expiration on a versioning-enabled bucket: "If the current object version is not a delete marker,
 *   Amazon S3 adds a delete marker with a unique version ID. This makes the current version noncurrent"
 *   ("Expiring objects", https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-expire-general-considerations.html).
 * - A lock does not stop that, nor keep the version from the lifecycle's count: "Object lifecycle
 *   management configurations continue to function normally on protected objects, including placing
 *   delete markers. However, protected object versions remain safe from being deleted or overwritten by
 *   a lifecycle configuration" ("Managing delete markers and object lifecycles",
 *   https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html, 2023 copy).
 * - NoncurrentVersionExpiration removes the version for good NoncurrentDays after it became noncurrent
 *   ("Lifecycle configuration elements", https://docs.aws.amazon.com/AmazonS3/latest/userguide/intro-lifecycle-rules.html),
 *   unless it is still locked then (above).
 * - A default retention locks each new version for its days from the version's creation ("Default
 *   retention settings", https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-overview.html, 2023 copy).
 *   Whether a later lifecycle run removes it once the lock has ended is not documented: the model says
 *   only that the removal is refused on its day.
 */

export interface VersionLife {
  /** The day lifecycle expiry puts a delete marker on top: from then no listing of current objects (no restore) shows it. */
  hiddenOn: number;
  /** The day the lock ends; until then no one (COMPLIANCE) can delete the version. 0 without a lock. */
  lockedUntil: number;
  /** The day the noncurrent-version expiration removes the version, or undefined when S3 refuses it because the lock still holds. */
  removedOn?: number;
}

export function versionLife(rules: { expirationDays: number; noncurrentDays: number }, lockDays = 0): VersionLife {
  const hiddenOn = rules.expirationDays;
  const removal = hiddenOn + rules.noncurrentDays;
  return { hiddenOn, lockedUntil: lockDays, removedOn: lockDays > removal ? undefined : removal };
}
