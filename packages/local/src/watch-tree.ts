import { type Dirent, existsSync, type FSWatcher, readdirSync, realpathSync, statSync, watch } from 'node:fs';
import { basename, dirname, extname, join, relative, sep } from 'node:path';

/** A folder being watched; `close()` stops every watcher. */
export interface TreeWatch {
  close(): void;
}

/** Folders never watched, at any depth: installed packages and version control. */
const IGNORED_DIRS = new Set(['node_modules', '.git']);

/** Files editors write beside the one being edited (swap, backup, lock, save-then-rename). */
const EDITOR_TEMP = [/~$/, /\.sw[a-p]$/, /\.tmp$/, /^\.#/, /^4913$/, /___jb_(tmp|old)___$/];

/** Where the OS watches a whole tree itself; elsewhere (Linux) Node would add a watch per file. */
const NATIVE_RECURSIVE = process.platform === 'darwin' || process.platform === 'win32';

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Whether `path` is `dir` or inside it. */
const within = (dir: string, path: string) => path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);

/**
 * The files of a SQLite store (`--store sqlite:PATH`): the database, the one per function when there
 * are several (`tasks.db` → `tasks.<function>.db`), and their journals (`-wal`, `-shm`, `-journal`).
 */
function sqliteFiles(path: string): (file: string) => boolean {
  const ext = extname(path);
  const names = new RegExp(`^${literal(basename(path, ext))}(\\.[^/\\\\]+)?${literal(ext)}(-wal|-shm|-journal)?$`);
  const dir = dirname(path);
  return (file) => dirname(file) === dir && names.test(basename(file));
}

/**
 * `path` with the symbolic links of its part that exists resolved: the rest (a store file, or its
 * folder, not made yet) as written.
 */
function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realPath(parent), basename(path));
  }
}

/** `dir` (a real path) and those of its parents that are not there yet: the emulator makes them. */
function missingFolders(dir: string): string[] {
  const missing: string[] = [];
  for (let d = dir; !existsSync(d) && dirname(d) !== d; d = dirname(d)) missing.push(d);
  return missing;
}

/**
 * What `fc-async dev --watch` does not restart for, under `root`: `node_modules` and `.git`
 * folders, the emulator's own output (`outDir`, the SQLite files of `sqlitePath`, and the folders
 * of those not there yet, which the emulator makes at its start) and editor temporary files.
 * Build output (`dist`) is watched: `tsc --watch` may be what changes the code.
 *
 * Paths are compared as real paths: the store or `outDir` may be reached through a symbolic link
 * to the project (or the project through one), and the watcher reports paths under `root` as
 * given. Resolved once, here: call it before the emulator starts.
 *
 * @example
 * ```ts
 * const ignored = watchIgnore({ root: '/app', outDir: '/app/.fc-async', sqlitePath: '/app/tasks.db' });
 * ignored('/app/tasks.db-wal'); // true
 * ignored('/app/src/app.ts'); // false
 * ```
 */
export function watchIgnore(options: {
  root: string;
  outDir: string;
  sqlitePath?: string | undefined;
}): (path: string) => boolean {
  const root = realPath(options.root);
  const outDir = realPath(options.outDir);
  const storeDir = options.sqlitePath === undefined ? undefined : realPath(dirname(options.sqlitePath));
  const store =
    options.sqlitePath === undefined || storeDir === undefined
      ? () => false
      : sqliteFiles(join(storeDir, basename(options.sqlitePath)));
  const made = new Set(
    [...missingFolders(dirname(outDir)), ...(storeDir === undefined ? [] : missingFolders(storeDir))].filter(
      (dir) => dir !== root && within(root, dir),
    ),
  );
  return (path) => {
    const name = basename(path);
    if (EDITOR_TEMP.some((pattern) => pattern.test(name))) return true;
    const fromRoot = relative(options.root, path);
    const real = join(root, fromRoot);
    if (within(outDir, real) || store(real) || made.has(real)) return true;
    return fromRoot.split(sep).some((part) => IGNORED_DIRS.has(part));
  };
}

/**
 * The real folder of `entry` when it is a symbolic link, or reached through one, to a file outside
 * `root` (`app.mjs -> ../shared/app.mjs`): Node loads that file, and the modules beside it, from
 * there, so `--watch` watches it too. `undefined` when the file is under `root` (real paths
 * compared), or when `entry` is not there.
 *
 * @example
 * ```ts
 * linkedEntryFolder('/app/app.mjs', '/app'); // '/shared' with /app/app.mjs -> ../shared/app.mjs
 * ```
 */
export function linkedEntryFolder(entry: string, root: string): string | undefined {
  let folder: string;
  try {
    folder = dirname(realpathSync(entry));
  } catch {
    return undefined;
  }
  return within(realPath(root), folder) ? undefined : folder;
}

/**
 * Calls `onChange(path)` for each file or folder created, changed, renamed or removed under
 * `root`, but those `ignored` says to skip (nor anything inside an ignored folder). Throws when
 * `root` cannot be watched (missing, or the OS limit of watches reached).
 *
 * On Linux each folder gets a watch of its own, ignored ones skipped: Node's `recursive` option
 * there adds a watch per file, `node_modules` included, with no way to leave it out.
 *
 * @example
 * ```ts
 * const tree = watchTree('/app', (path) => path.includes('node_modules'), (path) => console.log(path));
 * tree.close();
 * ```
 */
export function watchTree(
  root: string,
  ignored: (path: string) => boolean,
  onChange: (path: string) => void,
): TreeWatch {
  if (NATIVE_RECURSIVE) {
    const watcher = watch(root, { recursive: true }, (_event, name) => {
      const path = name ? join(root, name.toString()) : root;
      if (!ignored(path)) onChange(path);
    });
    return { close: () => watcher.close() };
  }
  return new FolderWatches(root, ignored, onChange);
}

/**
 * One non-recursive watch per folder of the tree; folders created later get theirs. The tree's own
 * folder removed or moved away (a clean build: `rm -rf dist && tsc`), its parent is watched until
 * a folder of that name is there again, which is then watched as at the start.
 */
class FolderWatches implements TreeWatch {
  readonly #watchers = new Map<string, FSWatcher>();
  /** The parent's watch while the tree's folder is gone. */
  #parent: FSWatcher | undefined;

  constructor(
    readonly root: string,
    readonly ignored: (path: string) => boolean,
    readonly onChange: (path: string) => void,
  ) {
    this.#add(root);
  }

  close(): void {
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    this.#parent?.close();
    this.#parent = undefined;
  }

  #add(dir: string): void {
    if (this.#watchers.has(dir) || (dir !== this.root && this.ignored(dir))) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, (event, name) => this.#changed(dir, event, name?.toString()));
    } catch (error) {
      // A sub-folder may be gone already; the tree's own folder must be there.
      if (dir === this.root) throw error;
      return;
    }
    watcher.on('error', () => this.#drop(dir));
    this.#watchers.set(dir, watcher);
    let entries: Dirent[] = [];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    // Symbolic links are not followed: a link to a parent folder would never end.
    for (const entry of entries) if (entry.isDirectory()) this.#add(join(dir, entry.name));
  }

  #drop(dir: string): void {
    for (const [path, watcher] of this.#watchers) {
      if (path !== this.root && within(dir, path)) {
        watcher.close();
        this.#watchers.delete(path);
      }
    }
  }

  #changed(dir: string, event: string, name: string | undefined): void {
    // inotify names a watched folder that was removed or moved by its own name. It may be there
    // again already (`rm -rf dist && mkdir dist` before this event is handled): another folder,
    // which the dead watch never sees. A removed file of the folder's name inside it is taken for
    // that too: the tree is watched afresh, no change missed.
    if (dir === this.root && name === basename(dir) && !existsSync(join(dir, name))) {
      this.#lost();
      return;
    }
    const path = name ? join(dir, name) : dir;
    if (this.ignored(path)) return;
    if (event === 'rename' && path !== dir) {
      // Created or moved in (a folder brings what it holds), or removed / moved out. A watch held
      // for the path is of the folder that was there: removed and made again before this event
      // (`rm -rf dist && mkdir dist`), the folder there now is another, which that watch never sees.
      this.#drop(path);
      if (isFolder(path)) this.#add(path);
    }
    this.onChange(path);
  }

  /** The tree's folder is gone: its watches are dead; wait in the parent for it to come back. */
  #lost(): void {
    this.close();
    this.onChange(this.root);
    const back = () => {
      if (!this.#parent || !isFolder(this.root)) return;
      try {
        this.#add(this.root);
      } catch {
        return; // gone again: the parent's next event says when it is back
      }
      this.#parent.close();
      this.#parent = undefined;
      this.onChange(this.root);
    };
    try {
      this.#parent = watch(dirname(this.root), (_event, name) => {
        if (name?.toString() === basename(this.root)) back();
      });
    } catch {
      // The parent went too: nothing left to watch.
      return;
    }
    this.#parent.on('error', () => this.close());
    back(); // made again before the parent's watch began
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
