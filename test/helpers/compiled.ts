/**
 * One manifest compiled on its own, as the compiler would leave it: checked
 * against its kind's schema and normalized (a test that hands the runtime a
 * Model or a Tool hands it what the compiler makes, never a shape the
 * compiler would refuse). Throws when the manifest is not valid.
 */
import { compiledObject, normalizeManifest, type CompiledObject } from '../../compiler/index.js';

export function compiled(manifest: Record<string, unknown>, extra: { file?: string; uses?: string[] } = {}): CompiledObject {
  const { object, kind, problems } = normalizeManifest({ apiVersion: 'beacon.dev/v1alpha1', ...manifest });
  if (object === undefined || kind === undefined || problems.length > 0) throw new Error(`not a valid manifest: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`);
  const metadata = object.metadata as { name: string; tenant?: string };
  const id = metadata.tenant !== undefined ? `${kind}/${metadata.tenant}/${metadata.name}` : `${kind}/${metadata.name}`;
  return compiledObject(
    {
      id,
      kind,
      name: metadata.name,
      ...(metadata.tenant !== undefined ? { tenant: metadata.tenant } : {}),
      file: extra.file ?? `${kind.toLowerCase()}s/${metadata.name}.yaml`,
      line: 1,
      digest: 'sha256:test',
      effectiveDigest: 'sha256:test',
      uses: extra.uses ?? [],
      origin: { blob: '', document: 0 },
    },
    object,
  );
}
