/**
 * What `wasm-policyd init` writes: a policy that builds and passes its own tests as it is — a
 * CycloneDX check (every component has a version, at least `min_components` of them), its
 * policy.yaml, two sample SBOMs and a policy.test.yaml — in AssemblyScript or Go.
 */
import { fileURLToPath } from 'node:url';
import { ASSEMBLYSCRIPT_VERSION } from '../version.js';

export const LANGUAGES = ['assemblyscript', 'go'] as const;
export type Language = (typeof LANGUAGES)[number];

/** The SDKs of this installation (the AssemblyScript one as an npm package, the Go one as a module). */
export const SDK_DIRS: Record<Language, string> = {
  assemblyscript: fileURLToPath(new URL('../../../sdk/assemblyscript', import.meta.url)),
  go: fileURLToPath(new URL('../../../sdk/go', import.meta.url)),
};

const policyYaml = (name: string) => `apiVersion: workflowcontract.chainloop.dev/v1
kind: Policy
metadata:
  name: ${name}
  description: Every component of a CycloneDX SBOM has a version, and the SBOM lists at least min_components of them
spec:
  inputs:
    - name: min_components
      description: the fewest components the SBOM may list
      default: "1"
  policies:
    - kind: SBOM_CYCLONEDX_JSON
      ref: policy.wasm
`;

const sbom = (components: object[]) =>
  `${JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.5', version: 1, components }, null, 2)}\n`;

const TESTS = `# wasm-policyd test runs these cases (wasm-policyd test --help).
cases:
  - name: accepts an SBOM whose components all have versions
    material: materials/pass.json
    expect: { violations: [] }
  - name: flags a component without a version
    material: materials/fail.json
    expect: { violations: ["component 'mystery' has no version"] }
  - name: takes the fewest components from its argument
    material: materials/pass.json
    args: { min_components: "3" }
    expect: { violations: ["the SBOM lists 2 components, fewer than 3"] }
`;

const ASSEMBLYSCRIPT = `// A Chainloop policy in AssemblyScript: every component of a CycloneDX SBOM has a version, and there
// are at least min_components of them. Build: wasm-policyd build; test: wasm-policyd test.
import { JSON, getArgStringDefault, getArray, getMaterialJSONOrSkip, getString, outputResult, run, success } from "@wasm-policyd/assemblyscript-sdk";

export function Execute(): i32 {
  return run(() => {
    const sbom = getMaterialJSONOrSkip();
    if (sbom === null) return;
    const minComponents = I32.parseInt(getArgStringDefault("min_components", "1"));
    const components = getArray(sbom, "components");
    const result = success();
    if (components.length < minComponents) {
      result.addViolation("the SBOM lists " + components.length.toString() + " components, fewer than " + minComponents.toString());
    }
    for (let i = 0; i < components.length; i++) {
      if (!components[i].isObj) continue;
      const component = <JSON.Obj>components[i];
      if (getString(component, "version").length == 0) {
        result.addViolation("component '" + getString(component, "name") + "' has no version");
      }
    }
    outputResult(result);
  });
}
`;

const GO = `// A Chainloop policy in Go: every component of a CycloneDX SBOM has a version, and there are at
// least min_components of them. Build: wasm-policyd build; test: wasm-policyd test.
package main

import (
	"strconv"

	policy "github.com/wasm-policyd/wasm-policyd/sdk/go"
)

type sbom struct {
	Components []struct {
		Name    string \`json:"name"\`
		Version string \`json:"version"\`
	} \`json:"components"\`
}

//go:wasmexport Execute
func Execute() int32 {
	return policy.Run(func() {
		var doc sbom
		if err := policy.GetMaterialJSON(&doc); err != nil {
			policy.OutputResult(policy.Skip(err.Error()))
			return
		}
		minComponents, _ := strconv.Atoi(policy.GetArgStringDefault("min_components", "1"))
		result := policy.Success()
		if len(doc.Components) < minComponents {
			result.AddViolationf("the SBOM lists %d components, fewer than %d", len(doc.Components), minComponents)
		}
		for _, c := range doc.Components {
			if c.Version == "" {
				result.AddViolationf("component '%s' has no version", c.Name)
			}
		}
		policy.OutputResult(result)
	})
}

func main() {}
`;

const readme = (name: string, language: Language) => `# ${name}

A Chainloop-compatible policy in ${language === 'go' ? 'Go' : 'AssemblyScript'}, made by \`wasm-policyd init\`.

\`\`\`sh
${language === 'go' ? '' : 'npm install                 # the compiler and the SDK\n'}wasm-policyd build          # policy.wasm
wasm-policyd test           # the cases in policy.test.yaml
wasm-policyd eval -p policy.yaml --material materials/fail.json
wasm-policyd bench -p policy.yaml --material materials/pass.json
wasm-policyd push -p policy.yaml oci://registry.example.com/policies/${name}:0.1.0
\`\`\`
`;

/** The files of a new policy project, by relative path. */
export function scaffold(name: string, language: Language): Record<string, string> {
  const common = {
    'policy.yaml': policyYaml(name),
    'policy.test.yaml': TESTS,
    'materials/pass.json': sbom([
      { type: 'library', name: 'left-pad', version: '1.3.0' },
      { type: 'library', name: 'lodash', version: '4.17.21' },
    ]),
    'materials/fail.json': sbom([
      { type: 'library', name: 'left-pad', version: '1.3.0' },
      { type: 'library', name: 'mystery' },
    ]),
    'README.md': readme(name, language),
    '.gitignore': language === 'go' ? 'policy.wasm\n' : 'policy.wasm\nnode_modules/\n',
  };
  if (language === 'go') {
    return {
      ...common,
      'main.go': GO,
      'go.mod': `module example.com/policies/${name}\n\ngo 1.26\n\nrequire github.com/wasm-policyd/wasm-policyd/sdk/go v0.0.0\n\n// The SDK of the wasm-policyd that made this project.\nreplace github.com/wasm-policyd/wasm-policyd/sdk/go => ${SDK_DIRS.go}\n`,
    };
  }
  return {
    ...common,
    'policy.ts': ASSEMBLYSCRIPT,
    'package.json': `${JSON.stringify(
      {
        name,
        private: true,
        type: 'module',
        devDependencies: {
          assemblyscript: ASSEMBLYSCRIPT_VERSION,
          '@wasm-policyd/assemblyscript-sdk': `file:${SDK_DIRS.assemblyscript}`,
        },
      },
      null,
      2,
    )}\n`,
    // A file: dependency is then installed as a package (with its own dependencies), not linked.
    '.npmrc': 'install-links=true\n',
  };
}
