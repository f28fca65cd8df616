import type { Handler, Middleware } from '../types.ts';

/** `compose([a, b, c], h)` = `a(b(c(h)))`: the first middleware is the outermost. */
export function compose(middleware: readonly Middleware[], handler: Handler): Handler {
  let next = handler;
  for (let i = middleware.length - 1; i >= 0; i--) next = middleware[i]!(next);
  return next;
}
