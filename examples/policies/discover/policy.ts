// Chainloop's "discover" SDK example: a container image must not be referenced by an attestation that
// has policy violations. Without a discovery backend the evaluation is skipped, as in Chainloop.
import { JSON, run, discover, getMaterialJSON, logError, logInfo, outputResult, skip, success } from "../../../sdk/assemblyscript/assembly";

export function Execute(): i32 {
  return run(() => {
    let sha = "";
    const doc = getMaterialJSON();
    if (doc !== null) {
      const meta = doc.getObj("chainloop_metadata");
      if (meta !== null) {
        const digests = meta.getObj("digest");
        if (digests !== null) {
          const value = digests.getString("sha256");
          if (value !== null) sha = value.valueOf();
        }
      }
    }
    if (sha.length == 0) {
      outputResult(skip("no digest found in chainloop_metadata"));
      return;
    }
    const digest = "sha256:" + sha;
    logInfo("Discovering artifacts related to: " + digest);
    const found = discover(digest, "");
    if (found === null) {
      const why = "discover returned error (check if gRPC connection is configured)";
      logError("Discovery failed: " + why);
      outputResult(skip(why));
      return;
    }
    const result = success();
    logInfo("Found " + found.references.length.toString() + " references for artifact " + found.digest);
    for (let i = 0; i < found.references.length; i++) {
      const ref = found.references[i];
      if (ref.kind != "ATTESTATION") continue;
      logInfo("Checking attestation: " + ref.digest);
      if (ref.metadata.has("hasPolicyViolations") && ref.metadata.get("hasPolicyViolations") == "true") {
        const m = ref.metadata;
        const msg = "attestation with digest " + ref.digest + " contains policy violations [name: " +
          (m.has("name") ? m.get("name") : "") + ", project: " + (m.has("project") ? m.get("project") : "") +
          ", org: " + (m.has("organization") ? m.get("organization") : "") + "]";
        result.addViolation(msg);
        logError(msg);
      }
    }
    if (result.hasViolations()) logError("Validation failed: found attestations with policy violations");
    else logInfo("Validation passed: no related attestations have policy violations");
    outputResult(result);
  });
}
