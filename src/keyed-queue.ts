// Work per key (an account) run one after another, in the order it was asked for, while different
// keys run side by side. A key's queue is forgotten once it is empty.

export class KeyedQueue {
  /** Per key, the tail of its queue; it never rejects. */
  readonly #tails = new Map<string, Promise<void>>();

  /**
   * Queues `step` behind the key's earlier steps; resolves or rejects with it. A step that fails
   * does not stop the ones behind it.
   */
  run<T>(key: string, step: () => Promise<T>): Promise<T> {
    const result = (this.#tails.get(key) ?? Promise.resolve()).then(step);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Resolves once the key's steps asked for so far have run. */
  idle(key: string): Promise<void> {
    return this.#tails.get(key) ?? Promise.resolve();
  }

  /** Resolves once every step asked for so far has run. */
  async allIdle(): Promise<void> {
    await Promise.all(this.#tails.values());
  }

  /** Resolves once no step is queued, including steps queued by the steps themselves. */
  async drained(): Promise<void> {
    while (this.#tails.size > 0) await this.allIdle();
  }
}
