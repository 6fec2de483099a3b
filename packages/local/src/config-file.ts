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

/**
 * A YAML parse error of the `yaml` library on one line: its first line (the problem, with line and
 * column) without the colon that introduced its code frame, and the offending line of that frame
 * quoted, so that a message naming the file stays one line.
 *
 * @example
 * ```ts
 * yamlProblem('Map keys must be unique at line 2, column 1:\n\na: 1\na: 2\n^\n');
 * // 'Map keys must be unique at line 2, column 1, in the line "a: 2"'
 * ```
 */
export function yamlProblem(message: string): string {
  const [first = '', ...frame] = message.split(/\r?\n/);
  const head = first.replace(/:\s*$/, '');
  const caret = frame.findIndex((line) => /^\s*\^+\s*$/.test(line));
  const line = caret > 0 ? (frame[caret - 1] as string) : '';
  if (line.trim() === '') return head;
  // JSON quoting escapes tabs and quotes; U+2028/2029 would still break the line in some terminals.
  const quoted = JSON.stringify(line)
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
  return `${head}, in the line ${quoted}`;
}
