import { ExternalKind, readName, readU32, rewriteSections, skipImportDescription, writeName, writeU32 } from './binary.js';
import { WASI_MODULE } from './host-surface.js';

/**
 * The host proxy: a tiny module, made at load for each policy module, that is what the Extism SDK
 * instantiates instead of the policy. It imports exactly the host functions the policy imports from
 * the SDK's kernel (`extism:host/env`) and from Chainloop's discover namespaces, re-exports each of them
 * under its position ("0", "1", …), and exports as `Execute` a function the worker provides.
 *
 * Why: the SDK's per-plugin set-up (its kernel, host-function binding, manifest handling) costs several
 * times a bare `new WebAssembly.Instance` of the policy. With the proxy, a worker makes one Extism
 * plugin per policy script and argument set — the host — and gives every evaluation a truly new
 * instance of the policy module, instantiated directly against the proxy's re-exported host functions
 * and a new WASI (src/worker/instances.ts). `Execute` on the proxy runs the current policy instance's
 * `Execute` inside the SDK's call, so input, output, errors, vars and logs behave exactly as if the
 * policy were the plugin.
 */
export const PROXY_EXECUTE_MODULE = 'policyd:guest';
export const PROXY_EXECUTE = 'Execute';
/**
 * Where the proxy imports the functions the daemon serves itself (var_set, HTTP, discover). Not under
 * `extism:host/env`: where JSPI exists (Node 24), the SDK swaps anything it finds there as
 * `http_request` for its own suspending fetch, which a synchronous policy call cannot use.
 */
export const DAEMON_HOST_MODULE = 'policyd:host';

enum Section {
  Type = 1,
  Import = 2,
  Export = 7,
}
/** func type () -> (): the proxy's Execute; the SDK ignores what Execute returns. */
const VOID_FUNCTION_TYPE = [0x60, 0x00, 0x00];

export interface HostProxy {
  module: Uint8Array;
  /** The policy's imports the proxy re-exports, in order: export "i" is `proxied[i]`. */
  proxied: { module: string; name: string }[];
}

/**
 * The proxy for a policy module: every function import that is not WASI (WASI is the worker's, given to
 * each instance directly) goes through the SDK; those named in `daemonServed` (by policy namespace and
 * name) are imported from DAEMON_HOST_MODULE under the same name.
 */
export function hostProxy(policy: Uint8Array, label: string, daemonServed: (module: string, name: string) => boolean): HostProxy {
  let types: Uint8Array = new Uint8Array([0]);
  const imports: Uint8Array[] = [];
  const proxied: HostProxy['proxied'] = [];
  rewriteSections(policy, label, (id, section) => {
    if (id === Section.Type) types = section;
    if (id === Section.Import) {
      let [count, p] = readU32(section, 0);
      while (count-- > 0) {
        const [module, afterModule] = readName(section, p);
        const [name, afterName] = readName(section, afterModule);
        const end = skipImportDescription(section, afterName);
        if (section[afterName] === ExternalKind.Function && module !== WASI_MODULE) {
          const from = daemonServed(module, name) ? DAEMON_HOST_MODULE : module;
          imports.push(new Uint8Array([...writeName(from), ...section.subarray(afterModule, end)]));
          proxied.push({ module, name });
        }
        p = end;
      }
    }
    return undefined;
  });

  const [typeCount, typesStart] = readU32(types, 0);
  const typeSection = [...writeU32(typeCount + 1), ...types.subarray(typesStart), ...VOID_FUNCTION_TYPE];
  const importSection = [...writeU32(imports.length + 1)];
  for (const entry of imports) importSection.push(...entry);
  importSection.push(...writeName(PROXY_EXECUTE_MODULE), ...writeName(PROXY_EXECUTE), ExternalKind.Function, ...writeU32(typeCount));
  const exportSection = [...writeU32(imports.length + 1)];
  for (let i = 0; i < imports.length; i++) exportSection.push(...writeName(String(i)), ExternalKind.Function, ...writeU32(i));
  exportSection.push(...writeName(PROXY_EXECUTE), ExternalKind.Function, ...writeU32(imports.length));

  const section = (id: Section, content: number[]) => [id, ...writeU32(content.length), ...content];
  const module = new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(Section.Type, typeSection),
    ...section(Section.Import, importSection),
    ...section(Section.Export, exportSection),
  ]);
  return { module, proxied };
}
