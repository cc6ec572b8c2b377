// Chainloop policy SDK for AssemblyScript: the vocabulary of Chainloop's Go and JS WASM policy SDKs
// (getMaterialJSON, getArgs, success/fail/skip, outputResult, run, log*, httpGet, discover) on top of
// @extism/as-pdk, so policies can be written and built with npm alone.
//
// Build a policy with:
//   asc policy.ts --outFile policy.wasm --optimize --use abort=<path to this folder>/assembly/index/policyAbort
import { Host, Config, Memory } from "@extism/as-pdk";
import { length, log_info, log_debug, log_warn, log_error, http_request } from "@extism/as-pdk/lib/env";
import { JSON } from "assemblyscript-json/assembly";

export { JSON };

@external("extism:host/env", "log_trace")
declare function log_trace(offset: u64): void;
@external("extism:host/env", "http_status_code")
declare function http_status_code(): i32;
@external("env", "chainloop_discover")
declare function chainloop_discover(digest: u64, kind: u64): u64;

// ---------------------------------------------------------------- abort

/** AssemblyScript's abort (failed assertion, out-of-bounds…): logged, then a trap, like a TinyGo panic. */
export function policyAbort(message: string | null, file: string | null, line: u32, column: u32): void {
  const text = "abort: " + (message ? message : "") + " at " + (file ? file : "?") + ":" + line.toString() + ":" + column.toString();
  log_error(Memory.allocateString(text).offset);
  unreachable();
}

// ---------------------------------------------------------------- material

/** The raw material bytes (the evaluable JSON Chainloop prepares). */
export function getMaterialBytes(): Uint8Array {
  return Host.input();
}

export function getMaterialString(): string {
  return String.UTF8.decode(Host.input().buffer);
}

/** The material as a JSON object; null when it is not one. Invalid JSON traps (the host never sends it). */
export function getMaterialJSON(): JSON.Obj | null {
  const value = JSON.parse(Host.input());
  return value.isObj ? <JSON.Obj>value : null;
}

/**
 * The material as a JSON object; when it is not one, outputs the skip Chainloop's SDK examples give
 * on a decode error and returns null (`if (doc === null) return;`).
 */
export function getMaterialJSONOrSkip(): JSON.Obj | null {
  const doc = getMaterialJSON();
  if (doc === null) outputResult(skip("failed to unmarshal material: not a JSON object"));
  return doc;
}

// ---------------------------------------------------------------- JSON helpers

/** A string field, "" when it is missing or not a string (Go's zero value, as the Go SDK decodes). */
export function getString(obj: JSON.Obj, key: string): string {
  const v = obj.getString(key);
  return v === null ? "" : v.valueOf();
}

/** An array field, empty when it is missing or not an array. */
export function getArray(obj: JSON.Obj, key: string): JSON.Value[] {
  const v = obj.getArr(key);
  return v === null ? new Array<JSON.Value>() : v.valueOf();
}

// ---------------------------------------------------------------- args

function argsObject(): JSON.Obj | null {
  const raw = Config.get("args");
  if (raw === null) return null;
  const value = JSON.parse(raw);
  return value.isObj ? <JSON.Obj>value : null;
}

/** All values of an argument: a single value, or the list Chainloop makes of `a, b` / one per line. */
export function getArgList(key: string): string[] {
  const out = new Array<string>();
  const args = argsObject();
  if (args === null) return out;
  const value = args.get(key);
  if (value === null) return out;
  if (value.isString) {
    out.push((<JSON.Str>value).valueOf());
  } else if (value.isArr) {
    const items = (<JSON.Arr>value).valueOf();
    for (let i = 0; i < items.length; i++) {
      if (items[i].isString) out.push((<JSON.Str>items[i]).valueOf());
    }
  }
  return out;
}

/** Arguments as strings; a list renders as "[a b]", exactly as the Go SDK's GetArgs does. */
export function getArgs(): Map<string, string> {
  const out = new Map<string, string>();
  const args = argsObject();
  if (args === null) return out;
  const keys = args.keys;
  for (let i = 0; i < keys.length; i++) {
    const values = getArgList(keys[i]);
    out.set(keys[i], values.length == 1 && args.get(keys[i])!.isString ? values[0] : "[" + values.join(" ") + "]");
  }
  return out;
}

export function getArgString(key: string): string {
  const args = getArgs();
  return args.has(key) ? args.get(key) : "";
}

/** The argument, or `fallback` when it is missing or empty. */
export function getArgStringDefault(key: string, fallback: string): string {
  const value = getArgString(key);
  return value.length == 0 ? fallback : value;
}

// ---------------------------------------------------------------- result

export class Result {
  skipped: bool = false;
  violations: string[] = new Array<string>();
  skipReason: string = "";
  ignore: bool = false;

  addViolation(message: string): Result {
    this.violations.push(message);
    return this;
  }

  hasViolations(): bool {
    return this.violations.length > 0;
  }

  isSuccess(): bool {
    return !this.skipped && this.violations.length == 0;
  }
}

export function success(): Result {
  return new Result();
}

export function fail(message: string): Result {
  return new Result().addViolation(message);
}

export function skip(reason: string): Result {
  const r = new Result();
  r.skipped = true;
  r.skipReason = reason;
  return r;
}

/** A JSON string literal. */
export function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else if (c < 0x20) out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out + '"';
}

export function outputJSON(json: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(json)));
}

/** Writes the result in the shape Chainloop's engine reads. */
export function outputResult(r: Result): void {
  const items = new Array<string>();
  for (let i = 0; i < r.violations.length; i++) items.push(quote(r.violations[i]));
  outputJSON(
    '{"skipped":' + (r.skipped ? "true" : "false") +
      ',"violations":[' + items.join(",") + "]" +
      ',"skip_reason":' + quote(r.skipReason) +
      ',"ignore":' + (r.ignore ? "true" : "false") + "}",
  );
}

/** Runs the policy body; the return value is what `Execute` returns (the host ignores it, as Chainloop does). */
export function run(body: () => void): i32 {
  body();
  return 0;
}

// ---------------------------------------------------------------- logs

export function logTrace(message: string): void { log_trace(Memory.allocateString(message).offset); }
export function logDebug(message: string): void { log_debug(Memory.allocateString(message).offset); }
export function logInfo(message: string): void { log_info(Memory.allocateString(message).offset); }
export function logWarn(message: string): void { log_warn(Memory.allocateString(message).offset); }
export function logError(message: string): void { log_error(Memory.allocateString(message).offset); }

// ---------------------------------------------------------------- http

export class HttpResponse {
  constructor(public status: i32, public body: Uint8Array) {}

  text(): string {
    return String.UTF8.decode(this.body.buffer);
  }

  json(): JSON.Value {
    return JSON.parse(this.body);
  }
}

/** A GET through the host; a host outside the allow-list stops the policy (as in Chainloop). */
export function httpGet(url: string): HttpResponse {
  const request = Memory.allocateString('{"url":' + quote(url) + ',"method":"GET","headers":{}}');
  const offset = http_request(request.offset, 0);
  const status = http_status_code();
  const body = offset == 0 ? new Uint8Array(0) : new Memory(offset, length(offset)).toUint8Array();
  return new HttpResponse(status, body);
}

// ---------------------------------------------------------------- discover

export class DiscoverReference {
  digest: string = "";
  kind: string = "";
  metadata: Map<string, string> = new Map<string, string>();
}

export class DiscoverResult {
  digest: string = "";
  kind: string = "";
  references: DiscoverReference[] = new Array<DiscoverReference>();
}

/** The referrers of an artifact (Chainloop's discover builtin); null when discovery is unavailable. */
export function discover(digest: string, kind: string = ""): DiscoverResult | null {
  const d = Memory.allocateString(digest);
  const k: u64 = kind.length > 0 ? Memory.allocateString(kind).offset : 0;
  const offset = chainloop_discover(d.offset, k);
  if (offset == 0) return null;
  const parsed = JSON.parse(new Memory(offset, length(offset)).toString());
  if (!parsed.isObj) return null;
  const obj = <JSON.Obj>parsed;
  const result = new DiscoverResult();
  result.digest = getString(obj, "digest");
  result.kind = getString(obj, "kind");
  const items = getArray(obj, "references");
  for (let i = 0; i < items.length; i++) {
    if (!items[i].isObj) continue;
    const item = <JSON.Obj>items[i];
    const ref = new DiscoverReference();
    ref.digest = getString(item, "digest");
    ref.kind = getString(item, "kind");
    const meta = item.getObj("metadata");
    if (meta !== null) {
      for (let j = 0; j < meta.keys.length; j++) ref.metadata.set(meta.keys[j], getString(meta, meta.keys[j]));
    }
    result.references.push(ref);
  }
  return result;
}
