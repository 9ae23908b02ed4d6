// Every BPF object that is open, so that a signal handler (or process exit) can close them all.

export interface Closable {
  close(): void;
}

const open = new Set<Closable>();

export function track(object: Closable): void {
  open.add(object);
}

export function untrack(object: Closable): void {
  open.delete(object);
}

export function openObjectCount(): number {
  return open.size;
}

/** Closes every open object; returns how many. A failing close does not stop the others. */
export function closeAllBpfObjects(onError?: (error: unknown) => void): number {
  let n = 0;
  for (const object of [...open]) {
    try {
      object.close();
      n++;
    } catch (error) {
      onError?.(error);
    } finally {
      open.delete(object);
    }
  }
  return n;
}
