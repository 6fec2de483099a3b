import { readFileSync, statSync } from 'node:fs';

/** The most a file `fc-async dev` reads for its configuration may hold: an s.yaml is a few KB. */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** Why a configuration file was not read, in words that follow its name. */
export class ConfigFileProblem extends Error {}

/**
 * Reads an s.yaml, a file it extends, its `.env` or a `${file()}` it names, as text. Refuses
 * what is not a regular file or is past {@link MAX_CONFIG_BYTES} before reading it: `/dev/zero`
 * or a FIFO would otherwise never end. Other errors (ENOENT, EACCES) are Node's, with their `code`.
 */
export function readConfigText(path: string): string {
  const stat = statSync(path);
  if (!stat.isFile()) throw new ConfigFileProblem('is not a regular file');
  if (stat.size > MAX_CONFIG_BYTES) {
    throw new ConfigFileProblem(`is ${stat.size} bytes, more than a configuration file's ${MAX_CONFIG_BYTES}`);
  }
  return readFileSync(path, 'utf8');
}
