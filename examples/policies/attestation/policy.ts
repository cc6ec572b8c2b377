// Chainloop's "attestation" SDK example: an in-toto statement must have subjects, one of them the
// git.head commit with a 40-character hex sha1, and a predicateType; other documents are skipped.
import { JSON, getArray, getString, run, getMaterialJSONOrSkip, logDebug, logError, logInfo, outputResult, skip, success } from "../../../sdk/assemblyscript/assembly";

function isHex(s: string): bool {
  const lower = s.toLowerCase();
  for (let i = 0; i < lower.length; i++) {
    const c = lower.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

export function Execute(): i32 {
  return run(() => {
    const doc = getMaterialJSONOrSkip();
    if (doc === null) return;
    const subjects = getArray(doc, "subject");
    logInfo("Validating in-toto attestation with " + subjects.length.toString() + " subjects");
    const type = getString(doc, "_type");
    if (type != "https://in-toto.io/Statement/v0.1" && type != "https://in-toto.io/Statement/v1") {
      outputResult(skip("not an in-toto attestation"));
      return;
    }
    const result = success();
    if (subjects.length == 0) {
      result.addViolation("attestation must contain at least one subject");
      outputResult(result);
      return;
    }
    let hasGitCommit = false;
    for (let i = 0; i < subjects.length; i++) {
      if (!subjects[i].isObj) continue;
      const subject = <JSON.Obj>subjects[i];
      if (getString(subject, "name") != "git.head") continue;
      hasGitCommit = true;
      logDebug("Found git.head subject");
      const digest = subject.getObj("digest");
      const hasSha1 = digest !== null && digest.getString("sha1") !== null;
      const sha1 = hasSha1 ? getString(digest!, "sha1") : "";
      if (!hasSha1) result.addViolation("git.head subject missing sha1 digest");
      else if (sha1.length == 0) result.addViolation("git.head subject has empty sha1 digest");
      else if (sha1.length != 40) result.addViolation("git.head sha1 digest has invalid length: " + sha1.length.toString() + " (expected 40)");
      else if (!isHex(sha1)) result.addViolation("git.head sha1 digest contains invalid characters");
      else logDebug("Valid git commit SHA1: " + sha1);
    }
    if (!hasGitCommit) result.addViolation("attestation must reference a git commit (git.head)");
    if (getString(doc, "predicateType").length == 0) result.addViolation("attestation must have a predicateType");
    if (result.hasViolations()) logError("Attestation validation failed with " + result.violations.length.toString() + " violations");
    else logInfo("Attestation validation passed");
    outputResult(result);
  });
}
