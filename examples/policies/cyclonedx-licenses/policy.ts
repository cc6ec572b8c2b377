// A CycloneDX license allow-list: every component's licenses (SPDX id, name or expression) must be in
// the `allowed` input; components without a license are violations unless `allow_unlicensed` is true.
// Violations are emitted as structured LICENSE_VIOLATION findings.
import { JSON, getArray, getString, run, getArgList, getArgStringDefault, getMaterialJSON, logInfo, outputJSON, outputResult, quote, skip } from "../../../sdk/assemblyscript/assembly";

/** The license identifiers a component declares. */
function licensesOf(component: JSON.Obj): string[] {
  const out = new Array<string>();
  const items = getArray(component, "licenses");
  for (let i = 0; i < items.length; i++) {
    if (!items[i].isObj) continue;
    const choice = <JSON.Obj>items[i];
    const expression = getString(choice, "expression");
    if (expression.length > 0) out.push(expression);
    const license = choice.getObj("license");
    if (license === null) continue;
    const id = getString(license, "id");
    out.push(id.length > 0 ? id : getString(license, "name"));
  }
  return out;
}

function finding(message: string, component: JSON.Obj, licenseId: string): string {
  return '{"message":' + quote(message) +
    ',"component_name":' + quote(getString(component, "name")) +
    ',"component_version":' + quote(getString(component, "version")) +
    ',"package_purl":' + quote(getString(component, "purl")) +
    ',"license_id":' + quote(licenseId) + "}";
}

export function Execute(): i32 {
  return run(() => {
    const doc = getMaterialJSON();
    if (doc === null || getString(doc, "bomFormat") != "CycloneDX") {
      outputResult(skip("not a CycloneDX SBOM"));
      return;
    }
    const allowed = getArgList("allowed");
    const allowUnlicensed = getArgStringDefault("allow_unlicensed", "false") == "true";
    const components = getArray(doc, "components");
    logInfo("Checking " + components.length.toString() + " components against " + allowed.length.toString() + " allowed licenses");
    const findings = new Array<string>();
    for (let i = 0; i < components.length; i++) {
      if (!components[i].isObj) continue;
      const c = <JSON.Obj>components[i];
      const licenses = licensesOf(c);
      if (licenses.length == 0 && !allowUnlicensed) {
        findings.push(finding("component '" + getString(c, "name") + "' declares no license", c, ""));
      }
      for (let j = 0; j < licenses.length; j++) {
        if (!allowed.includes(licenses[j])) {
          findings.push(finding("component '" + getString(c, "name") + "' uses license '" + licenses[j] + "', which is not allowed", c, licenses[j]));
        }
      }
    }
    outputJSON('{"skipped":false,"violations":[],"findings":[' + findings.join(",") + '],"skip_reason":""}');
  });
}
