// The route table the published document describes: every optional part of the daemon present
// (inbox, media, consumers, the changes journal, a cluster...), so no route is left out. Nothing
// here serves a request: the dependencies are placeholders whose handlers are never called.
import { buildRoutes, type RouteDeps } from './routes.js';
import type { Route } from './server.js';

/** Every route the daemon can have. */
export function fullRouteTable(): Route[] {
  const placeholder = <T>(): T => ({}) as T;
  // Required<>: a dependency added to RouteDeps must be added here too, or this fails to compile.
  const deps: Required<RouteDeps> = {
    daemonInfo: placeholder(),
    accounts: placeholder(),
    gate: placeholder(),
    inbox: placeholder(),
    inboxMedia: placeholder(),
    media: placeholder(),
    stateDir: '',
    metrics: placeholder(),
    outboxChanges: placeholder(),
    consumers: placeholder(),
    alerts: placeholder(),
    bus: placeholder(),
    checkConfig: placeholder(),
    cluster: placeholder(),
  };
  return buildRoutes(deps);
}
