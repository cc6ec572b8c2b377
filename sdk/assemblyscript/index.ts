// The package entry for AssemblyScript (asc resolves a package import to its index.ts).
export * from "./assembly/index";
