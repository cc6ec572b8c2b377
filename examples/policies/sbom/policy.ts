// Chainloop's "sbom" SDK example: a CycloneDX SBOM needs at least one component, each with a name and
// a version; anything that is not CycloneDX is skipped.
import { JSON, getArray, getString, run, getMaterialJSONOrSkip, logError, logInfo, outputResult, skip, success } from "../../../sdk/assemblyscript/assembly";

export function Execute(): i32 {
  return run(() => {
    const doc = getMaterialJSONOrSkip();
    if (doc === null) return;
    const components = getArray(doc, "components");
    logInfo("Validating CycloneDX SBOM with " + components.length.toString() + " components");
    if (getString(doc, "bomFormat") != "CycloneDX") {
      outputResult(skip("not a CycloneDX SBOM"));
      return;
    }
    const result = success();
    if (components.length == 0) {
      result.addViolation("SBOM must contain at least one component");
      outputResult(result);
      return;
    }
    for (let i = 0; i < components.length; i++) {
      if (!components[i].isObj) continue;
      const c = <JSON.Obj>components[i];
      const name = getString(c, "name");
      if (name.length == 0) result.addViolation("component at index " + i.toString() + " missing name");
      if (getString(c, "version").length == 0) result.addViolation("component '" + name + "' missing version");
    }
    if (result.hasViolations()) logError("SBOM validation failed with " + result.violations.length.toString() + " violations");
    else logInfo("SBOM validation passed");
    outputResult(result);
  });
}
