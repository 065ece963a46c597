import type { EventEmitter } from 'node:events';

/** Resolves with the arguments of the next `event` from `emitter`. */
export function once<T extends unknown[] = unknown[]>(emitter: EventEmitter, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (...args: unknown[]) => resolve(args as T)));
}

/**
 * Collects `count` emissions of `event` and resolves with their first arguments, in order.
 */
export function collect<T>(
  emitter: EventEmitter,
  event: string,
  count: number,
  pick: (...args: unknown[]) => T,
): Promise<T[]> {
  return new Promise((resolve) => {
    const out: T[] = [];
    const on = (...args: unknown[]): void => {
      out.push(pick(...args));
      if (out.length === count) {
        emitter.off(event, on);
        resolve(out);
      }
    };
    emitter.on(event, on);
  });
}
