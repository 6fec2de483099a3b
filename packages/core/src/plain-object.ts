/**
 * Makes `init` a constructor of plain objects: `new` on it gives an object whose prototype is
 * `Object.prototype`, with the fields `init` sets in the order it sets them, as a literal would.
 * V8 ties each object literal to an allocation site it may decide to pretenure (every later object
 * of it then made in the old generation: the raw GET bench row's slow mode); objects made with
 * `new` have no such site. For objects made on every invocation.
 *
 * @internal
 */
export function plainConstructor<T, A extends unknown[]>(init: (this: T, ...args: A) => void): new (...args: A) => T {
  (init as unknown as { prototype: object }).prototype = Object.prototype;
  return init as unknown as new (
    ...args: A
  ) => T;
}
