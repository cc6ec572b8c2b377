// Chainloop's "sbom" SDK example: a CycloneDX SBOM needs at least one component, each with a name and
// a version; anything that is not CycloneDX is skipped.
import { JSON, run, getMaterialJSON, logError, logInfo, outputResult, skip, success } from "../../../sdk/assemblyscript/assembly";

function str(obj: JSON.Obj, key: string): string {
  const v = obj.getString(key);
  return v === null ? "" : v.valueOf();
}

export function Execute(): i32 {
  return run(() => {
    const doc = getMaterialJSON();
    if (doc === null) {
      outputResult(skip("failed to unmarshal material: not a JSON object"));
      return;
    }
    const list = doc.getArr("components");
    const components = list === null ? new Array<JSON.Value>() : list.valueOf();
    logInfo("Validating CycloneDX SBOM with " + components.length.toString() + " components");
    if (str(doc, "bomFormat") != "CycloneDX") {
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
      const name = str(c, "name");
      if (name.length == 0) result.addViolation("component at index " + i.toString() + " missing name");
      if (str(c, "version").length == 0) result.addViolation("component '" + name + "' missing version");
    }
    if (result.hasViolations()) logError("SBOM validation failed with " + result.violations.length.toString() + " violations");
    else logInfo("SBOM validation passed");
    outputResult(result);
  });
}
