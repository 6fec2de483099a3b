/** Stands in for real work in the README's example: honours the signal like real work should. */
export async function transcode(job: { object: string; format: string }, { signal }: { signal: AbortSignal }) {
  signal.throwIfAborted();
  return { output: `${job.object}.${job.format}` };
}
