/**
 * The authentication and authorization plug-in (`authPlugin`): an ES module of the user's
 * that can check a database or an HTTP service. It exports any of three functions, each
 * sync or async:
 *
 *   authenticate({ clientId, username, password, remoteAddress })
 *     -> boolean | { allow: boolean, reason?: string }
 *   authorizePublish({ clientId, username, topic, qos, retain }) -> boolean
 *   authorizeSubscribe({ clientId, username, filter, qos }) -> boolean | 0 | 1 | 2 (granted QoS)
 *
 * Every call is bounded by authPluginTimeoutMs. A call that throws, answers something else,
 * or takes longer is a refusal (and a failure, counted and logged): a broken plug-in shuts
 * clients out rather than lets them in.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface AuthenticateRequest {
  clientId: string;
  /** The CONNECT's user name; undefined when it carried none. */
  username: string | undefined;
  /** The CONNECT's password bytes; undefined when it carried none. */
  password: Buffer | undefined;
  remoteAddress: string | undefined;
}

export interface PublishRequest {
  clientId: string;
  /** The user name the client was let in as; null for an anonymous client. */
  username: string | null;
  topic: string;
  qos: number;
  retain: boolean;
}

export interface SubscribeRequest {
  clientId: string;
  username: string | null;
  filter: string;
  /** The QoS the client asked for. */
  qos: number;
}

type Answer<T> = T | Promise<T>;
type AuthenticateFn = (request: AuthenticateRequest) => Answer<unknown>;
type PublishFn = (request: PublishRequest) => Answer<unknown>;
type SubscribeFn = (request: SubscribeRequest) => Answer<unknown>;

/** A plug-in that cannot be used: stops start-up with one line naming the key. */
export class AuthPluginError extends Error {
  override readonly name = 'AuthPluginError';
  readonly code = 'TERN_AUTH_PLUGIN';
}

/** What one call came to. `failed` names the error or the timeout when the call failed. */
export interface Verdict {
  allow: boolean;
  /** Why it was refused, in words for the log (the plug-in's reason, or the failure). */
  reason: string;
  failed: boolean;
}

/** A subscription's answer: the QoS granted, or 0x80 when refused. */
export interface SubscribeVerdict {
  granted: number;
  failed: boolean;
  reason: string;
}

const FUNCTIONS = ['authenticate', 'authorizePublish', 'authorizeSubscribe'] as const;
const SUBACK_FAILURE = 0x80;

export class AuthPlugin {
  readonly path: string;
  readonly authenticateFn: AuthenticateFn | null;
  readonly publishFn: PublishFn | null;
  readonly subscribeFn: SubscribeFn | null;
  /** authPluginTimeoutMs; a reload changes it. */
  timeoutMs: number;

  constructor(path: string, module: Record<string, unknown>, timeoutMs: number) {
    this.path = path;
    this.timeoutMs = timeoutMs;
    this.authenticateFn = (module.authenticate as AuthenticateFn | undefined) ?? null;
    this.publishFn = (module.authorizePublish as PublishFn | undefined) ?? null;
    this.subscribeFn = (module.authorizeSubscribe as SubscribeFn | undefined) ?? null;
  }

  async authenticate(request: AuthenticateRequest): Promise<Verdict> {
    const call = await this.call(this.authenticateFn as AuthenticateFn, request);
    if (!call.ok) return { allow: false, reason: call.reason, failed: true };
    const answer = call.value;
    if (answer === true || answer === false) return { allow: answer, reason: '', failed: false };
    if (typeof answer === 'object' && answer !== null && typeof (answer as { allow?: unknown }).allow === 'boolean') {
      const { allow, reason } = answer as { allow: boolean; reason?: unknown };
      return { allow, reason: typeof reason === 'string' ? reason : '', failed: false };
    }
    return { allow: false, reason: `unexpected answer ${describe(answer)}`, failed: true };
  }

  async authorizePublish(request: PublishRequest): Promise<Verdict> {
    const call = await this.call(this.publishFn as PublishFn, request);
    if (!call.ok) return { allow: false, reason: call.reason, failed: true };
    if (typeof call.value === 'boolean') return { allow: call.value, reason: '', failed: false };
    return { allow: false, reason: `unexpected answer ${describe(call.value)}`, failed: true };
  }

  async authorizeSubscribe(request: SubscribeRequest): Promise<SubscribeVerdict> {
    const call = await this.call(this.subscribeFn as SubscribeFn, request);
    if (!call.ok) return { granted: SUBACK_FAILURE, reason: call.reason, failed: true };
    const answer = call.value;
    if (answer === true) return { granted: request.qos, reason: '', failed: false };
    if (answer === false || answer === SUBACK_FAILURE) return { granted: SUBACK_FAILURE, reason: '', failed: false };
    // A QoS lower than asked for is a grant at that QoS [MQTT-3.9.3-1]; never a higher one.
    if (answer === 0 || answer === 1 || answer === 2) {
      return { granted: Math.min(answer, request.qos), reason: '', failed: false };
    }
    return { granted: SUBACK_FAILURE, reason: `unexpected answer ${describe(answer)}`, failed: true };
  }

  /** Calls `fn`, bounded by the timeout; never rejects. */
  private call<R>(
    fn: (request: R) => unknown,
    request: R,
  ): Promise<{ ok: true; value: unknown } | { ok: false; reason: string }> {
    const timeoutMs = this.timeoutMs;
    return new Promise((settle) => {
      const timer = setTimeout(() => settle({ ok: false, reason: `timed out after ${timeoutMs} ms` }), timeoutMs);
      // A hung call must not keep a stopping process alive.
      timer.unref();
      const done = (outcome: { ok: true; value: unknown } | { ok: false; reason: string }): void => {
        clearTimeout(timer);
        settle(outcome);
      };
      try {
        Promise.resolve(fn(request)).then(
          (value) => done({ ok: true, value }),
          (err: unknown) => done({ ok: false, reason: `threw: ${errorText(err)}` }),
        );
      } catch (err) {
        done({ ok: false, reason: `threw: ${errorText(err)}` });
      }
    });
  }
}

/**
 * Imports the module at `path` (relative to the working directory) and checks that it
 * exports at least one of the three functions, and nothing else under their names. A
 * CommonJS module's functions arrive on its default export, and are found there too.
 */
export async function loadAuthPlugin(path: string, timeoutMs: number): Promise<AuthPlugin> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as { code?: string };
    throw new AuthPluginError(`authPlugin ${path}: cannot load it (${e.code ?? firstLine(errorText(err))})`);
  }
  const fallback = module.default;
  const exports: Record<string, unknown> = {};
  for (const name of FUNCTIONS) {
    const own = module[name];
    const value =
      own !== undefined
        ? own
        : typeof fallback === 'object' && fallback !== null
          ? (fallback as Record<string, unknown>)[name]
          : undefined;
    if (value === undefined) continue;
    if (typeof value !== 'function') throw new AuthPluginError(`authPlugin ${path}: ${name} is not a function`);
    exports[name] = value;
  }
  if (Object.keys(exports).length === 0) {
    throw new AuthPluginError(`authPlugin ${path}: exports none of ${FUNCTIONS.join(', ')}`);
  }
  return new AuthPlugin(path, exports, timeoutMs);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(text: string): string {
  const end = text.indexOf('\n');
  return end < 0 ? text : text.slice(0, end);
}

function describe(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
