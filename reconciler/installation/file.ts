/**
 * Reading the installation file's bytes, bounded: a missing file, something
 * that is not a regular file (a FIFO would block the read for ever, a
 * device never ends) or a file over 1 MiB is refused with one line, before
 * anything is parsed. The file is opened without blocking and checked on the
 * descriptor it is read from, so what is checked is what is read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { BeaconError } from '../../common/index.js';

/** An installation file is a page of settings: anything larger is not one. */
export const MAX_INSTALLATION_BYTES = 1024 * 1024;

export type InstallationFileErrorCode = 'not_found' | 'not_a_file' | 'too_large' | 'unreadable';

/** The installation file cannot be read at all (its contents' problems are diagnostics, not this). */
export class InstallationFileError extends BeaconError {
  override readonly name = 'InstallationFileError';
  declare readonly code: InstallationFileErrorCode;
  constructor(code: InstallationFileErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function open(file: string): number {
  try {
    return openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new InstallationFileError('not_found', `${file}: no such file`, { cause: err });
    throw new InstallationFileError('unreadable', `${file}: cannot be read (${code ?? String(err)})`, { cause: err });
  }
}

const tooLarge = (file: string, size: string): InstallationFileError =>
  new InstallationFileError('too_large', `${file}: ${size} bytes; an installation file may be at most ${MAX_INSTALLATION_BYTES.toLocaleString('en-US')} bytes (1 MiB)`);

/** The file's bytes; an InstallationFileError when it is missing, not a regular file, or too large. */
export function readInstallationBytes(file: string): Uint8Array {
  const fd = open(file);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new InstallationFileError('not_a_file', `${file}: ${kindOf(st)}, not an installation file`);
    if (st.size > MAX_INSTALLATION_BYTES) throw tooLarge(file, st.size.toLocaleString('en-US'));
    // One byte more than allowed: a file that grew since fstat is still caught.
    const buffer = Buffer.alloc(MAX_INSTALLATION_BYTES + 1);
    let length = 0;
    while (length < buffer.length) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > MAX_INSTALLATION_BYTES) throw tooLarge(file, `over ${MAX_INSTALLATION_BYTES.toLocaleString('en-US')}`);
    return buffer.subarray(0, length);
  } finally {
    closeSync(fd);
  }
}
