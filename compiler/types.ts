/**
 * The compiler's data: per-file units (what can be cached by blob id), the
 * compiled objects, the execution-graph IR and the Bundle.
 */
import type {
  Agent,
  AgentSpec,
  AgentToolBinding,
  Annotations,
  Diagnostic,
  Evaluation,
  EvaluationSpec,
  Kind,
  Labels,
  Model,
  ObjectRef,
  Policy,
  Tenant,
  Tool,
  ToolSpec,
  Workflow,
} from '../schema/index.js';
import type { AdmissionPolicy, AuditEntry } from './admission.js';

/** A diagnostic found inside one file, before the file's path is attached (units are cached by content). */
export type LocalDiagnostic = Omit<Diagnostic, 'file'>;

/** A reference to a file from a manifest field, as written (relative to the manifest). */
export interface FileRef {
  /** JSON pointer of the field that names the file. */
  pointer: string;
  path: string;
  role: 'instructions' | 'dataset' | 'tool-file';
}

/** One BeaconOS document of a file, schema-checked and normalized (files not yet inlined). */
export interface DocUnit {
  index: number;
  /** Where the document starts in its file. */
  line: number;
  column: number;
  kind: Kind;
  name: string;
  /** Set for tenant-scoped kinds. */
  tenant?: string;
  /** Passed schema validation; invalid documents keep their identity but are not compiled further. */
  valid: boolean;
  /** The normalized object (defaults applied, shorthands expanded) when valid. */
  object?: Record<string, unknown>;
  /** Its digest, when it references no files (otherwise it depends on their content and is computed when linking). */
  digest?: string;
  fileRefs: FileRef[];
}

/** What the compiler learns from one file alone. Serializable: cached by blob id. */
export interface FileUnit {
  docs: DocUnit[];
  diagnostics: LocalDiagnostic[];
}

/** A file referenced by a manifest, as the bundle carries it. */
export interface FileContent {
  path: string;
  digest: string;
  size: number;
}

/**
 * What a compiled object of each kind holds: the kind's manifest type,
 * generated from its JSON Schema (schema/types.gen.ts), as normalizing and
 * linking leave it — an Agent's tools always `{name, approval}` and its
 * evaluations a list, a consensus workflow's voters always `{agent,
 * replicas}`, a Tool's files `{path, digest}` with their digests, an
 * Agent's prompt file inlined as `instructions` and an Evaluation's dataset
 * file as `cases` (the references dropped: ADR 0012), every object's labels
 * and annotations present.
 */
export interface ObjectOfKind {
  Tenant: Normalized<Tenant>;
  Model: Normalized<Model>;
  Tool: Normalized<Omit<Tool, 'spec'> & { spec: Omit<ToolSpec, 'files'> & { files: ShippedFile[] } }>;
  Agent: Normalized<
    Omit<Agent, 'spec'> & {
      spec: Omit<AgentSpec, 'tools' | 'evaluations' | 'instructions' | 'instructionsFile'> & { instructions: string; tools: Required<AgentToolBinding>[]; evaluations: ObjectRef[] };
    }
  >;
  Workflow: Normalized<Workflow>;
  Policy: Normalized<Policy>;
  Evaluation: Normalized<Omit<Evaluation, 'spec'> & { spec: Omit<EvaluationSpec, 'cases' | 'dataset'> & { cases: NonNullable<EvaluationSpec['cases']> } }>;
}

/** A Tool's file as compiled: its path (relative to the manifest) and the digest of its content. */
export interface ShippedFile {
  path: string;
  digest: string;
}

/** Metadata with its labels and annotations present (normalizing defaults them to `{}`). */
type Normalized<T extends { metadata: object }> = Omit<T, 'metadata'> & { metadata: T['metadata'] & { labels: Labels; annotations: Annotations } };

export interface CompiledBase {
  /** `Kind/tenant/name` or `Kind/name`. */
  id: string;
  name: string;
  tenant?: string;
  file: string;
  line: number;
  digest: string;
  effectiveDigest: string;
  /** Ids of the objects this one uses (its effective digest covers theirs), sorted. */
  uses: string[];
  /** Where the object comes from: the Git blob of its file, its document index, the blobs of the files it inlines. */
  origin: { blob: string; document: number; files?: Record<string, string> };
}

/** A compiled object: a union discriminated by `kind`, so `o.kind === 'Agent'` types `o.object` as an Agent. Its `object` is shared with the compile cache: read-only. */
export type CompiledObject = { [K in Kind]: CompiledBase & { kind: K; object: ObjectOfKind[K] } }[Kind];

/** A compiled object of kind `K`. */
export type CompiledObjectOf<K extends Kind> = Extract<CompiledObject, { kind: K }>;

/** A predicate for `filter` and `find`: compiled objects of one kind. */
export function ofKind<K extends Kind>(kind: K): (o: CompiledObject) => o is CompiledObjectOf<K> {
  return (o): o is CompiledObjectOf<K> => o.kind === kind;
}

/**
 * A compiled object from its identity and its normalized object. The one
 * place the compiler's untyped data becomes typed: every `object` handed
 * here passed its kind's JSON Schema (ajv, compiler/validate.ts) and was
 * normalized (compiler/unit.ts) and inlined (linking), which is what
 * `ObjectOfKind` describes — or is `{}` for an object a snapshot carries no
 * content for (a plan reads content only where digests differ).
 */
export function compiledObject(base: CompiledBase & { kind: Kind }, object: Record<string, unknown>): CompiledObject {
  return asCompiled({ ...base, object });
}

/** The same for an object already built (its `object` may be a getter that makes it when first read: it is not copied). */
export function asCompiled(o: CompiledBase & { kind: Kind; readonly object: Record<string, unknown> }): CompiledObject {
  // The schema validated what the types describe; TypeScript cannot see that.
  return o as CompiledObject;
}

/** A compiled commit without its objects' content: enough to plan against it (objects are rebuilt from the cache when needed). */
export interface Snapshot {
  bundleDigest: string;
  source: Bundle['source'];
  objects: Omit<CompiledObject, 'object'>[];
  diagnostics: Diagnostic[];
  invalid: string[];
}

export type NodeType = 'agent' | 'approval' | 'reduce' | 'fork';

export interface ApprovalSpec {
  approvers: string[];
  quorum: number;
  timeoutSeconds: number;
  onTimeout: 'reject' | 'approve';
}

/** A node of the execution graph. */
export interface GraphNode {
  id: string;
  type: NodeType;
  /** The pattern role of the node: step, coordinator, route, default, branch, gather, planner, worker, voter, tally, generator, critic, member, board, node. */
  role: string;
  /** Agent id (`Agent/tenant/name`) for agent nodes. */
  agent?: string;
  /** Consensus voters: how many replicas answer. */
  replicas?: number;
  approval?: ApprovalSpec;
  /** For reduce nodes: how inputs combine. `first` takes whichever single upstream ran; `vote` tallies; `board` keeps the blackboard. */
  reduce?: 'concat' | 'merge' | 'first' | 'vote' | 'board';
  /** CEL over `workflow.input` and `outputs.<id>` replacing the upstream output as this node's input. */
  input?: string;
  /** How often the node may run in one execution; bounds the cycles it is on. */
  maxTraversals?: number;
  /** JSON pointer of the manifest field the node comes from (for diagnostics and tooling). */
  source: string;
}

export interface GraphEdge {
  from: string;
  to: string;
  /** CEL over the from-node's `output`; absent = always. */
  when?: string;
  /** Taken only when no other edge of `from` was taken (the coordinator's default). */
  otherwise?: boolean;
  /** `data`: the to-node consumes the from-node's output; `control`: ordering only (the to-node reads something else). */
  flow: 'data' | 'control';
  source: string;
}

/**
 * The execution-graph IR every pattern compiles to. Edge semantics: when a node
 * finishes, every outgoing edge whose `when` holds is followed, in declared
 * order, except when `params.routing` is `first-match` (the coordinator): then
 * only the first edge whose `when` holds. Edges marked `otherwise` are taken
 * only when no sibling was. A node with several incoming edges runs when any
 * of them fires, except reduce nodes, which wait for every upstream node that
 * was started. See docs/adr/0001-one-execution-graph-ir.md.
 */
export interface ExecutionGraph {
  workflow: string;
  pattern: string;
  entry: string;
  output: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
  /** Pattern parameters the executor needs beyond the topology. */
  params: Record<string, unknown>;
  limits: { timeoutSeconds?: number; tokensPerRun?: number };
}

export interface Bundle {
  apiVersion: 'beacon.dev/bundle/v1';
  compiler: string;
  source: { kind: 'dir' | 'git'; commit?: string; tree?: string; path: string };
  objects: CompiledObject[];
  graphs: ExecutionGraph[];
  /**
   * Tool files shipped into sandboxes, by path: content-addressed (digest), with the Git blob id
   * when compiled from a commit. Their bytes stay in Git; prompts and datasets are inlined in objects.
   */
  files: (FileContent & { blob?: string })[];
  /** sha256 over the canonical JSON of everything above, each object standing in by its digests and each graph by its workflow's effective digest. */
  digest: string;
}

export interface CompileStats {
  files: number;
  manifests: number;
  documents: number;
  cachedUnits: number;
  parsedUnits: number;
  /** Admission: policy evaluations run, and objects whose verdicts came from the cache. */
  admission?: { evaluated: number; cached: number };
  ms: Record<string, number>;
}

export interface CompileResult {
  bundle: Bundle;
  diagnostics: Diagnostic[];
  /** True when no diagnostic is an error. */
  ok: boolean;
  /** Ids of objects whose documents exist but do not compile (schema errors): not in the bundle, yet not gone. */
  invalid: string[];
  /** The commit's Policies whose expressions compiled (admission and runtime), ready to evaluate. */
  policies: AdmissionPolicy[];
  /** Verdicts of policies with `action: audit`, by object then policy. */
  audit: AuditEntry[];
  stats: CompileStats;
}
