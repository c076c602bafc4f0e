import { CharnnError } from '../errors.js';
import { FORMAT_VERSION } from './format.js';
import { quoteText } from '../util/visible-text.js';

/** Why a file could not be read as a checkpoint; lets callers and tests branch without regexes. */
export type CheckpointProblem =
  | 'not-checkpoint'
  | 'truncated'
  | 'corrupted'
  | 'unsupported-version'
  | 'malformed-header'
  | 'bad-layout'
  | 'shape-mismatch'
  | 'duplicate-name';

/** A file that is not a valid checkpoint. Always a CharnnError: the user chose the file. */
export class CheckpointFormatError extends CharnnError {
  constructor(
    readonly problem: CheckpointProblem,
    message: string,
    hint: string,
  ) {
    super(message, hint);
    this.name = 'CheckpointFormatError';
  }
}

const DAMAGED_HINT = 'restore it from a backup or train the model again';
const FOREIGN_HINT = 'the file was not written by a compatible charnn';

/**
 * Builds the error for each problem. `source` is the file path when there is one; messages
 * read "checkpoint model.charnn is truncated ..." with it and "checkpoint is truncated ..."
 * without.
 */
export class FormatErrors {
  private readonly subject: string;

  constructor(private readonly source?: string) {
    this.subject = source === undefined ? 'checkpoint' : `checkpoint ${source}`;
  }

  notCheckpoint(): CheckpointFormatError {
    return new CheckpointFormatError(
      'not-checkpoint',
      `${this.source ?? 'input'} is not a charnn checkpoint (it does not start with the CHARNN signature)`,
      'pass a file written by charnn train',
    );
  }

  truncated(expectedAtLeast: number, actual: number): CheckpointFormatError {
    const message =
      actual === 0
        ? `${this.subject} is empty`
        : `${this.subject} is truncated: expected at least ${expectedAtLeast} bytes, found ${actual}`;
    return new CheckpointFormatError(
      'truncated',
      message,
      `the file was cut short (interrupted copy or download?); ${DAMAGED_HINT}`,
    );
  }

  corrupted(stored: number, computed: number): CheckpointFormatError {
    return new CheckpointFormatError(
      'corrupted',
      `${this.subject} is corrupted: checksum mismatch (stored ${hex(stored)}, computed ${hex(computed)})`,
      `the file was damaged after it was written; ${DAMAGED_HINT}`,
    );
  }

  newerVersion(version: number): CheckpointFormatError {
    return new CheckpointFormatError(
      'unsupported-version',
      `${this.subject} uses format version ${version}, but this charnn reads only version ${FORMAT_VERSION} and older`,
      'upgrade charnn to read it',
    );
  }

  invalidVersion(version: number): CheckpointFormatError {
    return new CheckpointFormatError(
      'unsupported-version',
      `${this.subject} has an invalid format version ${version}`,
      FOREIGN_HINT,
    );
  }

  malformedHeader(detail: string): CheckpointFormatError {
    return new CheckpointFormatError('malformed-header', `${this.subject} has a malformed header: ${detail}`, FOREIGN_HINT);
  }

  outOfRange(name: string, start: number, end: number, dataLength: number): CheckpointFormatError {
    return new CheckpointFormatError(
      'bad-layout',
      `${this.subject}: tensor ${quote(name)} occupies bytes ${start}..${end} of the data section, ` +
        `which ends at ${dataLength} (it would run past the data into the checksum)`,
      FOREIGN_HINT,
    );
  }

  misaligned(name: string, offset: number): CheckpointFormatError {
    return new CheckpointFormatError(
      'bad-layout',
      `${this.subject}: tensor ${quote(name)} starts at offset ${offset}, which is not 8-byte aligned`,
      FOREIGN_HINT,
    );
  }

  overlap(first: string, second: string): CheckpointFormatError {
    return new CheckpointFormatError(
      'bad-layout',
      `${this.subject}: tensors ${quote(first)} and ${quote(second)} overlap in the data section`,
      FOREIGN_HINT,
    );
  }

  shapeMismatch(name: string, shape: number[], length: number): CheckpointFormatError {
    return new CheckpointFormatError(
      'shape-mismatch',
      `${this.subject}: tensor ${quote(name)} has shape ${formatShape(shape)} but length ${length}`,
      FOREIGN_HINT,
    );
  }

  duplicateName(name: string): CheckpointFormatError {
    return new CheckpointFormatError(
      'duplicate-name',
      `${this.subject}: tensor name ${quote(name)} appears more than once`,
      FOREIGN_HINT,
    );
  }
}

/** Names come from the file: escape them (messages stay one line) and cap their length. */
function quote(name: string): string {
  const quoted = quoteText(name);
  return quoted.length <= 64 ? quoted : `${quoted.slice(0, 60)}..."`;
}

function formatShape(shape: number[]): string {
  const shown = shape.slice(0, 8).join(', ');
  return `[${shape.length > 8 ? `${shown}, ...` : shown}]`;
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
